"""Pure measurements (no Lightning): surprisal, PPP (ΔLL), attention entropy, head scores."""

from typing import TYPE_CHECKING

from phasewatch._lazy import lazy_exports

if TYPE_CHECKING:
    from phasewatch.measures.attention import HeadSummary, summarize
    from phasewatch.measures.baselines import add_baseline_columns, log_frequency, word_length
    from phasewatch.measures.delta_loglik import PPPResult, assign_folds, delta_loglik
    from phasewatch.measures.delta_loglik_mixed import MixedPPPResult, delta_loglik_mixed
    from phasewatch.measures.entropy import attention_entropy
    from phasewatch.measures.head_scores import all_head_scores, head_scores, repeated_token_probe
    from phasewatch.measures.metrics import AttentionEntropy, HeadScore, SyntacticAttentionScore
    from phasewatch.measures.ppp_corpora import CorporaPPP
    from phasewatch.measures.surprisal import word_surprisal
    from phasewatch.measures.syntactic import SyntacticResult, syntactic_scores
    from phasewatch.measures.tokenization import ByteTokenizer

# imported on first use (PEP 562): `import phasewatch.measures.<module>` loads only that module
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "phasewatch.measures.attention": ["HeadSummary", "summarize"],
        "phasewatch.measures.baselines": ["add_baseline_columns", "log_frequency", "word_length"],
        "phasewatch.measures.delta_loglik": ["PPPResult", "assign_folds", "delta_loglik"],
        "phasewatch.measures.delta_loglik_mixed": ["MixedPPPResult", "delta_loglik_mixed"],
        "phasewatch.measures.entropy": ["attention_entropy"],
        "phasewatch.measures.head_scores": [
            "all_head_scores",
            "head_scores",
            "repeated_token_probe",
        ],
        "phasewatch.measures.metrics": ["AttentionEntropy", "HeadScore", "SyntacticAttentionScore"],
        "phasewatch.measures.ppp_corpora": ["CorporaPPP"],
        "phasewatch.measures.surprisal": ["word_surprisal"],
        "phasewatch.measures.syntactic": ["SyntacticResult", "syntactic_scores"],
        "phasewatch.measures.tokenization": ["ByteTokenizer"],
    },
)

__all__ = [
    "AttentionEntropy",
    "ByteTokenizer",
    "CorporaPPP",
    "HeadScore",
    "HeadSummary",
    "MixedPPPResult",
    "PPPResult",
    "SyntacticAttentionScore",
    "SyntacticResult",
    "add_baseline_columns",
    "all_head_scores",
    "assign_folds",
    "attention_entropy",
    "delta_loglik",
    "delta_loglik_mixed",
    "head_scores",
    "log_frequency",
    "repeated_token_probe",
    "summarize",
    "syntactic_scores",
    "word_length",
    "word_surprisal",
]

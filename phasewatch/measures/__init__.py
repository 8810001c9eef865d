"""Pure measurements (no Lightning): surprisal, PPP (ΔLL), attention entropy, head scores."""

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

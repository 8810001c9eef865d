"""One measurement of a model at one moment: the fixed probes and the scalars they yield.

The callbacks (online) and :mod:`phasewatch.analyze` (offline, over checkpoints) both measure
through these two classes, so the numbers they report are computed the very same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from phasewatch import keys
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.head_kinds import HEAD_KINDS, score_keys
from phasewatch.measures.attention import summarize
from phasewatch.measures.baselines import add_baseline_columns
from phasewatch.measures.delta_loglik import PPPResult, delta_loglik
from phasewatch.measures.delta_loglik_mixed import MixedPPPResult, delta_loglik_mixed
from phasewatch.measures.entropy import attention_entropy
from phasewatch.measures.head_scores import all_head_scores
from phasewatch.measures.surprisal import word_surprisal
from phasewatch.measures.syntactic import syntactic_scores
from phasewatch.measures.token_cache import tokenizer_fingerprint
from phasewatch.measures.tokenization import as_text_tokenizer, encode_with_offsets
from phasewatch.models import ProbeModel

#: Scalar keys of one PPP evaluation, stable: users monitor them with EarlyStopping etc.
PPP_KEYS = (
    keys.PPP_DELTA_LL,
    keys.PPP_DELTA_LL_SE,
    keys.PPP_SURPRISAL_COEF,
    keys.PPP_SURPRISAL_MEAN,
    keys.PPP_N_WORDS,
)
#: Added with ``control_tokens="both"``: ΔLL over the baseline with tokens per word, and its SE.
PPP_TOKCTRL_KEYS = (keys.PPP_DELTA_LL_TOKCTRL, keys.PPP_DELTA_LL_TOKCTRL_SE)
#: Added with ``mixed_effects=True``: in-sample mixed-effects ΔLL (nats/observation), the same
#: gain per word (nats/word) and its likelihood-ratio p-value.
PPP_MIXED_KEYS = (
    keys.PPP_DELTA_LL_MIXED,
    keys.PPP_DELTA_LL_MIXED_PER_WORD,
    keys.PPP_DELTA_LL_MIXED_P,
)
#: The values ``control_tokens`` may take.
CONTROL_TOKENS = (False, True, "both")
#: Head-score kind → its logged maximum over heads, from :data:`phasewatch.head_kinds.HEAD_KINDS`.
SCORE_KEYS = score_keys()
ENTROPY_KEY = keys.ATTN_ENTROPY_MEAN


class PPPMeasure:
    """PPP of a model on a reading-time corpus; the corpus and its baselines are prepared once.

    ``spillover``: previous words in the regression (default: the corpus's ``default_spillover``;
    4, self-paced reading's, for a bare frame). ``control_tokens``: ``False`` (baseline length +
    log frequency), ``True`` (tokens per word added to that baseline; still logged as
    ``ppp/delta_ll``) or ``"both"`` (one surprisal pass, two regressions: ``ppp/delta_ll``
    without and ``ppp/delta_ll_tokctrl`` with tokens per word). ``mixed_effects``: also fit
    :func:`~phasewatch.measures.delta_loglik_mixed.delta_loglik_mixed` on the corpus's per-reader
    data (``ReadingTimeCorpus.readers``) with the surprisal of the same pass, the same spillover and
    the baseline of ``ppp/delta_ll`` (off by default: ~16 s per evaluation at Natural Stories'
    size, docs/ppp.md).

    ``measure(probe, tokenizer)`` returns the scalars of :data:`PPP_KEYS` (ΔLL and SE in nats/word,
    surprisal coefficient in ms/bit, mean surprisal in bits, words used), plus
    :data:`PPP_TOKCTRL_KEYS` with ``"both"``, and the :class:`PPPResult` of each ΔLL series by key
    (with ``per_word`` ΔLL_i, for paired comparisons between evaluations). With
    ``mixed_effects=True`` the scalars also hold :data:`PPP_MIXED_KEYS` and :attr:`last_mixed` the
    :class:`~phasewatch.measures.delta_loglik_mixed.MixedPPPResult` of the last call.

    Raises ``ValueError`` for a bad ``control_tokens``, or ``mixed_effects=True`` on a corpus
    without per-reader data.
    """

    def __init__(
        self,
        corpus: ReadingTimeCorpus | pd.DataFrame,
        *,
        spillover: int | None = None,
        folds: int = 10,
        control_tokens: bool | str = False,
        whitespace_correction: bool = False,
        batch_size: int = 8,
        mixed_effects: bool = False,
    ) -> None:
        if control_tokens not in CONTROL_TOKENS:
            raise ValueError(
                f"`control_tokens` can be False, True or 'both', got {control_tokens!r}"
            )
        if not isinstance(mixed_effects, bool):
            raise ValueError(f"`mixed_effects` must be True or False, got {mixed_effects!r}")
        #: per-reader rows for the mixed-effects ΔLL (None when it is off)
        self.readers = _readers_for_mixed(corpus) if mixed_effects else None
        self.mixed_effects = mixed_effects
        #: the mixed-effects fit of the last ``measure`` call (``mixed_effects=True``)
        self.last_mixed: MixedPPPResult | None = None
        frame = corpus.frame if isinstance(corpus, ReadingTimeCorpus) else corpus
        language = corpus.language if isinstance(corpus, ReadingTimeCorpus) else "en"
        self.frame = add_baseline_columns(frame, lang=language)  # a corpus's log_freq: as is
        if spillover is None:  # the corpus's own (4 for self-paced reading, 2 for eye tracking)
            spillover = corpus.default_spillover if isinstance(corpus, ReadingTimeCorpus) else 4
        self.spillover, self.folds = int(spillover), int(folds)
        self.control_tokens = control_tokens
        plain, tokctrl = ("length", "log_freq"), ("length", "log_freq", "n_tokens")
        self.baselines = {keys.PPP_DELTA_LL: tokctrl if control_tokens is True else plain}
        if control_tokens == "both":
            self.baselines[keys.PPP_DELTA_LL_TOKCTRL] = tokctrl
        self.whitespace_correction = bool(whitespace_correction)
        self.batch_size = int(batch_size)

    @property
    def baseline(self) -> tuple[str, ...]:
        """Baseline predictors of ``ppp/delta_ll``."""
        return self.baselines[keys.PPP_DELTA_LL]

    def measure(
        self, probe: ProbeModel, tokenizer: Any
    ) -> tuple[dict[str, float], dict[str, PPPResult]]:
        surprisal, n_tokens = word_surprisal(
            probe,
            tokenizer,
            self.frame,
            context_length=probe.max_length,
            batch_size=self.batch_size,
            whitespace_correction=self.whitespace_correction,
            return_token_counts=True,
        )
        frame = self.frame.assign(surprisal=surprisal, n_tokens=n_tokens)
        results = {
            key: delta_loglik(
                frame,
                baseline=baseline,
                spillover=self.spillover,
                folds=self.folds,
                return_per_word=True,
            )
            for key, baseline in self.baselines.items()
        }
        main = results[keys.PPP_DELTA_LL]
        scalars = dict(
            zip(
                PPP_KEYS,
                (main.mean, main.se, main.coef[0], surprisal.mean(), main.n),
                strict=True,
            )
        )
        if keys.PPP_DELTA_LL_TOKCTRL in results:
            tokctrl = results[keys.PPP_DELTA_LL_TOKCTRL]
            scalars.update(zip(PPP_TOKCTRL_KEYS, (tokctrl.mean, tokctrl.se), strict=True))
        if self.mixed_effects:
            mixed = delta_loglik_mixed(
                self.readers, frame, baseline=self.baseline, spillover=self.spillover
            )
            self.last_mixed = mixed
            scalars.update(
                zip(
                    PPP_MIXED_KEYS,
                    (mixed.delta_ll, mixed.delta_ll_nats_per_word, mixed.p_value),
                    strict=True,
                )
            )
        return {k: float(v) for k, v in scalars.items()}, results


def _readers_for_mixed(corpus: ReadingTimeCorpus | pd.DataFrame) -> pd.DataFrame:
    """The corpus's per-reader rows, or a ValueError naming the fix."""
    readers = corpus.readers if isinstance(corpus, ReadingTimeCorpus) else None
    if readers is None:
        name = repr(corpus.name) if isinstance(corpus, ReadingTimeCorpus) else "given as a frame"
        raise ValueError(
            f"mixed_effects=True needs per-reader reading times (one row per reader x word), but "
            f"corpus {name} has none (ReadingTimeCorpus.readers is None; e.g. the bundled Natural "
            "Stories ships per-word means only). Load per-reader data, e.g. "
            "phasewatch.corpora.load_tsv(path, reader='<reader column>'), or set "
            "mixed_effects=False"
        )
    return readers


#: Random tokens per repeat of the head-score probe when the model's context allows it (the
#: published code's ``seq_len=50``, Aoyama & Wilcox 2025); shorter contexts get ``max_length // 2``.
DEFAULT_SEQ_LEN = 50
#: The parts of one head measurement; each can fail alone (``keep_going=True``).
HEAD_PARTS = ("repeated_token", "entropy", "syntactic")


class HeadMeasure:
    """Head-specialization scores and attention entropy of a model, per layer and head.

    Induction, previous-token and duplicate-token scores come from one forward pass over a fixed
    probe of ``probe_batch`` random sequences of ``seq_len`` tokens repeated twice (seeded;
    default ``seq_len``: :data:`DEFAULT_SEQ_LEN` = 50, or ``max_length // 2`` tokens for a model
    whose context is shorter than 100). Attention entropy (nats) is measured on natural text, the
    first ``entropy_tokens`` tokens (at most the model's ``max_length``) of the first
    ``entropy_stories`` corpus stories; the syntactic score on the first ``syntactic_stories``
    stories against ``dependencies``, in windows of ``syntactic_max_tokens`` tokens (default: the
    model's ``max_length``). Entropy and syntactic need a tokenizer and a corpus and are skipped
    without them; ``entropy_stories=0`` or ``syntactic_stories=0`` turns a part off.

    ``measure(probe, tokenizer)`` returns the scalars — each kind's maximum over heads (the keys
    of :data:`phasewatch.head_kinds.HEAD_KINDS`), ``heads/sas`` with the syntactic score, and
    :data:`ENTROPY_KEY` (nats) — and the per-head tensors [layers, heads] by measure name. A
    head with non-finite attention (NaN weights) makes each maximum and mean it enters NaN, never
    a value over the other heads (:func:`phasewatch.measures.attention.summarize`). With
    ``keep_going=True`` a part that fails (:data:`HEAD_PARTS`) is left out and recorded in
    :attr:`failures` (part → the exception it raised) while the others are returned; the call
    raises only when every part that ran failed.
    """

    def __init__(
        self,
        *,
        seq_len: int | None = None,
        probe_batch: int = 32,
        seed: int = 0,
        corpus: ReadingTimeCorpus | None = None,
        dependencies: pd.DataFrame | None = None,
        entropy_stories: int = 4,
        entropy_tokens: int = 128,
        syntactic_stories: int = 2,
        syntactic_max_tokens: int | None = None,
    ) -> None:
        self.seq_len = None if seq_len is None else int(seq_len)
        self.probe_batch, self.seed = int(probe_batch), int(seed)
        self.corpus, self.dependencies = corpus, dependencies
        self.entropy_stories, self.entropy_tokens = int(entropy_stories), int(entropy_tokens)
        self.syntactic_stories = int(syntactic_stories)
        self.syntactic_max_tokens = syntactic_max_tokens
        self.failures: dict[str, Exception] = {}
        self._entropy_ids: torch.Tensor | None = None
        self._entropy_key: tuple | None = None  # (tokenizer fingerprint, max_length) of the ids

    def probe_seq_len(self, max_length: int | None) -> int:
        """Random tokens per repeat: ``seq_len``, else 50 capped at ``max_length // 2``."""
        if self.seq_len is not None:
            return self.seq_len
        if max_length is None:
            return DEFAULT_SEQ_LEN
        return min(DEFAULT_SEQ_LEN, max_length // 2)

    def entropy_probe(self, tokenizer: Any, max_length: int | None) -> torch.Tensor:
        """Token ids [stories, T]: BOS, then the first tokens of each of the first stories.

        Kept for the next measurement while the tokenizer's content (its fingerprint) and
        ``max_length`` stay the same; a tokenizer without a fingerprint is encoded every time.
        """
        fingerprint = tokenizer_fingerprint(tokenizer)
        key = None if fingerprint is None else (fingerprint, max_length)
        if self._entropy_ids is None or key is None or key != self._entropy_key:
            texts = list(self.corpus.texts.values())[: self.entropy_stories]
            if not texts:
                raise ValueError(
                    f"the entropy probe has no story: entropy_stories={self.entropy_stories} and "
                    f"the corpus has {len(self.corpus.texts)}; set entropy_stories >= 1, or 0 to "
                    "skip entropy"
                )
            length = (
                self.entropy_tokens if max_length is None else min(self.entropy_tokens, max_length)
            )
            bos = as_text_tokenizer(tokenizer).bos_token_id  # the rule word surprisal uses
            rows = []
            for text in texts:
                ids, _ = encode_with_offsets(tokenizer, text)
                rows.append((([bos] if bos is not None else []) + list(ids))[:length])
            width = min(len(r) for r in rows)
            self._entropy_ids = torch.tensor([r[:width] for r in rows], dtype=torch.long)
            self._entropy_key = key
        return self._entropy_ids

    def measure(
        self, probe: ProbeModel, tokenizer: Any = None, *, keep_going: bool = False
    ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        self.failures = {}
        per_head: dict[str, torch.Tensor] = {}
        model_level: dict[str, float] = {}  # scores of the whole model, not a max over heads
        for part, run in self._parts(probe, tokenizer):
            try:
                run(per_head, model_level)
            except Exception as error:
                if not keep_going:
                    raise
                self.failures[part] = error
        if self.failures and not per_head:
            raise RuntimeError(
                "every part of the head measurement failed: "
                + "; ".join(f"{p}: {type(e).__name__}: {e}" for p, e in self.failures.items())
            ) from next(iter(self.failures.values()))
        per_head = {k: v.detach().float().cpu() for k, v in per_head.items()}
        scalars = {
            kind.key: float(summarize(per_head[name]).max)
            for name, kind in HEAD_KINDS.items()
            if name in per_head
        }
        scalars.update(model_level)
        if "entropy" in per_head:
            scalars[ENTROPY_KEY] = float(per_head["entropy"].mean())
        return scalars, per_head

    def _parts(self, probe: ProbeModel, tokenizer: Any) -> list[tuple[str, Any]]:
        """The parts that apply, in :data:`HEAD_PARTS` order, each a ``(name, run)`` pair."""

        def repeated_token(per_head: dict, _: dict) -> None:
            per_head.update(
                all_head_scores(
                    probe,
                    seq_len=self.probe_seq_len(probe.max_length),
                    batch_size=self.probe_batch,
                    seed=self.seed,
                )
            )

        def entropy(per_head: dict, _: dict) -> None:
            ids = self.entropy_probe(tokenizer, probe.max_length)
            per_head["entropy"] = attention_entropy(probe, ids)

        def syntactic(per_head: dict, model_level: dict) -> None:
            result = syntactic_scores(
                probe,
                tokenizer,
                self.corpus,
                self.dependencies,
                max_stories=self.syntactic_stories,
                max_tokens=self.syntactic_max_tokens,
            )
            per_head["syntactic"] = result.per_head
            model_level[keys.HEADS_SAS] = float(result.sas)

        parts: list[tuple[str, Any]] = [("repeated_token", repeated_token)]
        text = tokenizer is not None and self.corpus is not None
        if text and self.entropy_stories > 0:
            parts.append(("entropy", entropy))
        if text and self.dependencies is not None and self.syntactic_stories > 0:
            parts.append(("syntactic", syntactic))
        return parts

"""PPP over several reading-time corpora: each corpus's ΔLL and their mean.

For ``K`` corpora with held-out ``ΔLL_k ± SE_k`` (nats/word) over ``n_k`` words each:

    ΔLL = (1/K) Σ_k ΔLL_k,      SE = √(Σ_k SE_k²) / K,      n = Σ_k n_k,

the unweighted mean over corpora (each corpus counts once, whatever its size) and its standard
error when the corpora are independent samples (other texts, other readers), so that their
variances add. Aoyama & Wilcox (2025) report ΔLL per corpus (their ``by_head_analysis.R`` groups by
corpus; no aggregate over corpora): the per-corpus keys are theirs, the mean is phasewatch's one
series to monitor (docs/ppp.md, "PPP over several corpora", measures it against a word-weighted
mean). The same rule combines the paired per-word differences of :mod:`phasewatch.measures.paired`
into the mean series' decline and rise. With one corpus nothing is averaged: the keys and numbers
are those of :class:`~phasewatch.measures.snapshot.PPPMeasure`.

The optional mixed-effects ΔLL (``mixed_effects=True``) is logged per corpus only, with no mean:
it is in-sample and per observation, so its size depends on each corpus's readers and words and
an unweighted mean over corpora would mix quantities of different scales.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phasewatch import keys
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.delta_loglik import PPPResult, check_spillover
from phasewatch.measures.snapshot import PPP_KEYS, PPP_MIXED_KEYS, PPP_TOKCTRL_KEYS, PPPMeasure
from phasewatch.models import ProbeModel

__all__ = [
    "MEAN_KEYS",
    "CorporaMean",
    "CorporaPPP",
    "check_corpus_key_name",
    "check_optional_spillover",
    "mean_over_corpora",
    "scalar_keys",
    "series_keys",
]

#: Keys of the mean over corpora (several corpora): ΔLL and SE (nats/word), words in all.
MEAN_KEYS = (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE, keys.PPP_N_WORDS)


def mean_over_corpora(means: Sequence[float], ses: Sequence[float]) -> tuple[float, float]:
    """``(mean, SE)`` of ``K`` independent per-corpus estimates: ``(1/K) Σ m_k``, ``√(Σ se_k²)/K``.

    Units are those of the inputs (nats/word for ΔLL). Raises ``ValueError`` for no estimates or
    lengths that differ.
    """
    if len(means) == 0 or len(means) != len(ses):
        raise ValueError(
            f"a mean over corpora needs one SE per mean and at least one corpus, got "
            f"{len(means)} means and {len(ses)} SEs"
        )
    k = len(means)
    return math.fsum(means) / k, math.sqrt(math.fsum(s * s for s in ses)) / k


@dataclass(frozen=True)
class CorporaMean:
    """One ΔLL series averaged over corpora: ``mean`` ± ``se`` (nats/word) over ``n`` words in all;
    ``parts``: corpus name → that corpus's :class:`PPPResult` (with ``per_word``)."""

    mean: float
    se: float
    n: int
    parts: dict[str, PPPResult] = field(repr=False)

    @classmethod
    def of(cls, parts: dict[str, PPPResult]) -> CorporaMean:
        mean, se = mean_over_corpora(
            [p.mean for p in parts.values()], [p.se for p in parts.values()]
        )
        return cls(mean, se, sum(int(p.n) for p in parts.values()), dict(parts))

    def __repr__(self) -> str:
        each = ", ".join(f"{name} {p.mean:.4f} ± {p.se:.4f}" for name, p in self.parts.items())
        return (
            f"CorporaMean(ΔLL = {self.mean:.4f} ± {self.se:.4f} nats/word, mean over "
            f"{len(self.parts)} corpora ({each}), {self.n} words)"
        )


def check_corpus_key_name(name: Any) -> str:
    """``name`` if it can stand in a key (``ppp/<name>/delta_ll``); else a ValueError."""
    if not keys.is_key_part(name):
        raise ValueError(
            f"with several corpora each corpus name becomes part of its keys "
            f"(ppp/<name>/delta_ll) and must be letters, digits, '_' or '-', got {name!r}; "
            "rename the corpus, e.g. dataclasses.replace(corpus, name='dundee')"
        )
    return name


def check_optional_spillover(spillover: Any) -> int | None:
    """``spillover`` if it is None or an int >= 0; else a ValueError naming the values allowed."""
    if spillover is None:
        return None
    try:
        return check_spillover(spillover)
    except ValueError:
        raise ValueError(
            f"`spillover` must be None (each corpus's default: 4 self-paced reading, 2 eye "
            f"tracking) or an int >= 0 (previous words besides the current one; 4 = current + 4 "
            f"previous), got {spillover!r}"
        ) from None


def _base_series(control_tokens: bool | str) -> tuple[str, ...]:
    both = control_tokens == "both"
    return (keys.PPP_DELTA_LL, *((keys.PPP_DELTA_LL_TOKCTRL,) if both else ()))


def series_keys(names: Sequence[str], control_tokens: bool | str) -> tuple[str, ...]:
    """ΔLL series of a PPP measurement on the corpora ``names``: with several, the mean's
    (``ppp/delta_ll``…) and then each corpus's (``ppp/<name>/delta_ll``…)."""
    base = _base_series(control_tokens)
    if len(names) <= 1:
        return base
    return (*base, *(keys.with_prefix(s, n) for n in names for s in base))


def scalar_keys(
    names: Sequence[str], control_tokens: bool | str, mixed_effects: bool = False
) -> tuple[str, ...]:
    """Scalar keys of a PPP measurement on the corpora ``names`` (see :class:`CorporaPPP`)."""
    own = (
        *PPP_KEYS,
        *(PPP_TOKCTRL_KEYS if control_tokens == "both" else ()),
        *(PPP_MIXED_KEYS if mixed_effects else ()),
    )
    if len(names) <= 1:
        return own
    mean = (*MEAN_KEYS, *(PPP_TOKCTRL_KEYS if control_tokens == "both" else ()))
    return (*mean, *(keys.with_prefix(k, n) for n in names for k in own))


class CorporaPPP:
    """PPP of a model on one or several reading-time corpora, each with its own spillover.

    As input: ``corpora``, a non-empty sequence of :class:`ReadingTimeCorpus` with distinct names;
    ``spillover``: previous words in each regression (None, the default: each corpus's
    ``default_spillover``, 4 for self-paced reading, 2 for eye tracking; an int: the same for
    all; a mapping corpus name → int, the default for a name it lacks); ``folds``,
    ``control_tokens``, ``whitespace_correction``, ``batch_size``, ``mixed_effects``: as for
    :class:`PPPMeasure`, applied to every corpus (``mixed_effects=True`` needs per-reader data in
    every corpus).

    As output, ``measure(probe, tokenizer) -> (scalars, results)``:

    - one corpus: exactly :meth:`PPPMeasure.measure` (``ppp/delta_ll`` …, unprefixed);
    - several: each corpus's scalars under ``ppp/<corpus>/…`` (:func:`phasewatch.keys.with_prefix`)
      and the mean over corpora as :data:`MEAN_KEYS` (``ppp/delta_ll`` ± ``ppp/delta_ll_se``,
      nats/word; ``ppp/n_words`` in all), plus ``ppp/delta_ll_tokctrl`` ± SE with
      ``control_tokens="both"``. ``results`` maps each per-corpus series to its
      :class:`PPPResult` and each mean series to a :class:`CorporaMean`. The mixed-effects keys
      (:data:`~phasewatch.measures.snapshot.PPP_MIXED_KEYS`) come per corpus only, no mean.

    Raises:
        ValueError: no corpus, a corpus name twice or (several corpora) not usable in a key, a
            ``spillover`` that is not an int >= 0, a bad ``control_tokens``, ``mixed_effects=True``
            with a corpus that has no per-reader data.
        TypeError: an item of ``corpora`` that is not a ReadingTimeCorpus.
    """

    def __init__(
        self,
        corpora: Sequence[ReadingTimeCorpus],
        *,
        spillover: int | Mapping[str, int] | None = None,
        folds: int = 10,
        control_tokens: bool | str = False,
        whitespace_correction: bool = False,
        batch_size: int = 8,
        mixed_effects: bool = False,
    ) -> None:
        if isinstance(corpora, (ReadingTimeCorpus, str)) or not isinstance(corpora, Sequence):
            raise TypeError(
                f"`corpora` must be a list of ReadingTimeCorpus, got {type(corpora).__name__}; "
                "for one corpus pass [corpus]"
            )
        if not corpora:
            raise ValueError("`corpora` is empty: pass at least one ReadingTimeCorpus")
        for corpus in corpora:
            if not isinstance(corpus, ReadingTimeCorpus):
                raise TypeError(
                    f"every item of `corpora` must be a ReadingTimeCorpus (load one with "
                    f"phasewatch.corpora.load(name)), got {type(corpus).__name__}"
                )
        names = [c.name for c in corpora]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"`corpora` names {twice} more than once; each corpus gets its own keys "
                "(ppp/<name>/delta_ll): give each a distinct name"
            )
        if len(corpora) > 1:
            for name in names:
                check_corpus_key_name(name)
        if isinstance(spillover, Mapping):
            spillovers = dict(spillover)
            unknown = sorted(set(spillovers) - set(names))
            if unknown:
                raise ValueError(
                    f"`spillover` names corpora {unknown} that are not in `corpora` {names}"
                )
        else:
            spillovers = dict.fromkeys(names, spillover)
        for value in spillovers.values():
            check_optional_spillover(value)
        self.measures = {
            corpus.name: PPPMeasure(
                corpus,
                spillover=spillovers.get(corpus.name),
                folds=folds,
                control_tokens=control_tokens,
                whitespace_correction=whitespace_correction,
                batch_size=batch_size,
                mixed_effects=mixed_effects,
            )
            for corpus in corpora
        }
        self.control_tokens = control_tokens
        self.mixed_effects = mixed_effects

    @property
    def names(self) -> tuple[str, ...]:
        """Corpus names, in the order given."""
        return tuple(self.measures)

    @property
    def spillovers(self) -> dict[str, int]:
        """Corpus name → previous words in its regression."""
        return {name: m.spillover for name, m in self.measures.items()}

    @property
    def several(self) -> bool:
        return len(self.measures) > 1

    @property
    def _base_series(self) -> tuple[str, ...]:
        return _base_series(self.control_tokens)

    @property
    def series(self) -> tuple[str, ...]:
        """ΔLL series keys in ``results``: the mean's, then each corpus's (several corpora)."""
        return series_keys(self.names, self.control_tokens)

    @property
    def scalar_keys(self) -> tuple[str, ...]:
        """Every scalar key ``measure`` returns."""
        return scalar_keys(self.names, self.control_tokens, self.mixed_effects)

    def measure(
        self, probe: ProbeModel, tokenizer: Any
    ) -> tuple[dict[str, float], dict[str, PPPResult | CorporaMean]]:
        if not self.several:
            return next(iter(self.measures.values())).measure(probe, tokenizer)
        scalars: dict[str, float] = {}
        results: dict[str, PPPResult | CorporaMean] = {}
        parts: dict[str, dict[str, PPPResult]] = {s: {} for s in self._base_series}
        for name, measure in self.measures.items():
            own_scalars, own_results = measure.measure(probe, tokenizer)
            scalars.update({keys.with_prefix(k, name): v for k, v in own_scalars.items()})
            for series, result in own_results.items():
                results[keys.with_prefix(series, name)] = result
                parts[series][name] = result
        means = {series: CorporaMean.of(p) for series, p in parts.items()}
        main = means[keys.PPP_DELTA_LL]
        mean_scalars = dict(zip(MEAN_KEYS, (main.mean, main.se, float(main.n)), strict=True))
        if keys.PPP_DELTA_LL_TOKCTRL in means:
            tokctrl = means[keys.PPP_DELTA_LL_TOKCTRL]
            mean_scalars.update(zip(PPP_TOKCTRL_KEYS, (tokctrl.mean, tokctrl.se), strict=True))
        return {**mean_scalars, **scalars}, {**means, **results}

"""Paired comparison of two PPP evaluations, word by word.

Fold ids are fixed per word (:func:`phasewatch.measures.delta_loglik.assign_folds`), so the held-out
``ΔLL_i`` of word ``i`` at two checkpoints come from the same cross-validation split and differ only
by the model's surprisal. Their difference is compared word by word (a paired test):

    d_i = ΔLL_i(a) − ΔLL_i(b),   mean = (1/n) Σ d_i,   SE = SD(d_i) / √n,   z = mean / SE,

over the ``n`` words both evaluations used (nats/word). Because the two evaluations share most of
their word-to-word variation, the paired SE is far smaller than either evaluation's own SE, and a
decline that an unpaired 1-SE rule cannot see becomes testable (and a fluctuation that looks like a
decline is not called one).

Over several corpora (:mod:`phasewatch.measures.ppp_corpora`) the mean series is tested too: its
best is the evaluation with the highest mean over corpora, and its decline (rise) is the mean over
corpora of each corpus's paired difference against that evaluation, ``SE = √(Σ_k SE_k²) / K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from phasewatch import keys
from phasewatch.detect.events import PairedDifference
from phasewatch.measures.ppp_corpora import CorporaMean, mean_over_corpora

__all__ = [
    "BestMeanSoFar",
    "BestSoFar",
    "PairedDifference",
    "PairedPeakTest",
    "PeakComparison",
    "mean_paired_difference",
    "paired_difference",
]


def paired_difference(a: pd.Series, b: pd.Series) -> PairedDifference:
    """Paired difference of per-word ΔLL ``a − b`` (nats/word) over the words both contain.

    As input: two Series of ``ΔLL_i`` (nats) indexed by word (e.g. :attr:`PPPResult.per_word`).
    As output: :class:`PairedDifference` with the mean, its SE ``SD(d)/√n`` and ``n``.
    Raises ``ValueError`` when fewer than 2 words are shared.
    """
    d = (a - b).dropna()
    if len(d) < 2:
        raise ValueError(
            f"a paired comparison needs at least 2 words in both evaluations, got {len(d)}; "
            "the two per-word ΔLL series must share their index (word rows of the same corpus)"
        )
    values = d.to_numpy(dtype=np.float64)
    return PairedDifference(
        float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values))), len(values)
    )


def mean_paired_difference(differences: list[PairedDifference]) -> PairedDifference:
    """Mean over corpora of paired differences (nats/word): ``(1/K) Σ mean_k ± √(Σ se_k²)/K``,
    ``n`` = words in all."""
    mean, se = mean_over_corpora([d.mean for d in differences], [d.se for d in differences])
    return PairedDifference(mean, se, sum(d.n or 0 for d in differences))


@dataclass(frozen=True)
class PeakComparison:
    """Where one evaluation stands against the best so far and the first evaluation (paired).

    ``decline``: ``ΔLL(best) − ΔLL(now)`` (≥ 0 unless this evaluation is the new best, when it is
    exactly 0 ± 0); ``rise``: ``ΔLL(best) − ΔLL(first)``, the rise before the best (0 ± 0 while the
    first evaluation is the best). ``best_step``: step of the best evaluation; ``is_new_best``.
    """

    decline: PairedDifference
    rise: PairedDifference
    best_step: int
    is_new_best: bool


class BestSoFar:
    """Keep the per-word ΔLL of the first and of the best evaluation so far; compare each new one.

    The best is the evaluation with the highest mean ΔLL. Plain data: ``state_dict`` /
    ``load_state_dict`` round-trip it (per-word values as lists, a few hundred kB for a corpus of
    10,000 words).
    """

    def __init__(self) -> None:
        self.first: pd.Series | None = None
        self.best: pd.Series | None = None
        self.best_mean = -math.inf
        self.best_step: int | None = None

    def update(self, step: int, per_word: pd.Series) -> PeakComparison:
        """Compare ``per_word`` (ΔLL_i, nats) with the best so far, then keep it if it is better."""
        per_word = per_word.astype(np.float64)
        mean = float(per_word.mean())
        if self.first is None:
            self.first = per_word
        is_new_best = mean > self.best_mean
        if is_new_best:
            self.best, self.best_mean, self.best_step = per_word, mean, int(step)
        decline = paired_difference(self.best, per_word)
        rise = paired_difference(self.best, self.first)
        return PeakComparison(decline, rise, int(self.best_step), is_new_best)

    def state_dict(self) -> dict:
        return {
            "first": _plain(self.first),
            "best": _plain(self.best),
            "best_mean": self.best_mean,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.first, self.best = _series(state["first"]), _series(state["best"])
        self.best_mean = float(state["best_mean"])
        self.best_step = state["best_step"]


def _plain(s: pd.Series | None) -> dict | None:
    if s is None:
        return None
    return {"index": s.index.tolist(), "values": s.to_numpy().tolist()}


def _series(d: dict | None) -> pd.Series | None:
    if d is None:
        return None
    return pd.Series(d["values"], index=d["index"], dtype=np.float64)


class BestMeanSoFar:
    """:class:`BestSoFar` for a mean over corpora: keeps every corpus's per-word ΔLL of the first
    evaluation and of the one with the highest mean over corpora; ``update`` compares each corpus
    with its own words and averages the paired differences (:func:`mean_paired_difference`).
    """

    def __init__(self) -> None:
        self.first: dict[str, pd.Series] | None = None
        self.best: dict[str, pd.Series] | None = None
        self.best_mean = -math.inf
        self.best_step: int | None = None

    def update(self, step: int, per_word: dict[str, pd.Series]) -> PeakComparison:
        """Compare each corpus's ``per_word`` (ΔLL_i, nats) with the best evaluation so far."""
        per_word = {name: s.astype(np.float64) for name, s in per_word.items()}
        if self.first is not None and set(per_word) != set(self.first):
            raise ValueError(
                f"the mean over corpora changed corpora: {sorted(self.first)} before, "
                f"{sorted(per_word)} now; a paired test compares the same corpora"
            )
        mean = math.fsum(float(s.mean()) for s in per_word.values()) / len(per_word)
        if self.first is None:
            self.first = per_word
        is_new_best = mean > self.best_mean
        if is_new_best:
            self.best, self.best_mean, self.best_step = per_word, mean, int(step)
        names = list(per_word)
        decline = mean_paired_difference(
            [paired_difference(self.best[n], per_word[n]) for n in names]
        )
        rise = mean_paired_difference(
            [paired_difference(self.best[n], self.first[n]) for n in names]
        )
        return PeakComparison(decline, rise, int(self.best_step), is_new_best)

    def state_dict(self) -> dict:
        def plain(d: dict | None) -> dict | None:
            return None if d is None else {name: _plain(s) for name, s in d.items()}

        return {
            "corpora": None if self.first is None else list(self.first),
            "first": plain(self.first),
            "best": plain(self.best),
            "best_mean": self.best_mean,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: dict) -> None:
        def series(d: dict | None) -> dict | None:
            return None if d is None else {name: _series(s) for name, s in d.items()}

        self.first, self.best = series(state["first"]), series(state["best"])
        self.best_mean = float(state["best_mean"])
        self.best_step = state["best_step"]


class PairedPeakTest:
    """:class:`BestSoFar` for each ΔLL series of a PPP measurement; the scalars it yields.

    ``update(step, results)`` takes :meth:`PPPMeasure.measure`'s or :meth:`CorporaPPP.measure`'s
    results (series key → :class:`PPPResult` with ``per_word``, or a :class:`CorporaMean` for a
    mean over corpora) and returns the paired scalars of :func:`phasewatch.keys.paired_keys`
    (decline since the best and rise before it, ± SE, nats/word; ``ppp/<corpus>/…`` for a
    corpus's series) and, per series, the same numbers with the best's step. Used by
    :class:`~phasewatch.callbacks.PPPMonitor` online and by :func:`phasewatch.analyze` offline.
    """

    def __init__(self) -> None:
        self.trackers: dict[str, BestSoFar] = {}

    def update(self, step: int, results: dict) -> tuple[dict[str, float], dict[str, dict]]:
        scalars, paired = {}, {}
        for series, result in results.items():
            if isinstance(result, CorporaMean):
                parts = {name: part.per_word for name, part in result.parts.items()}
                tracker = self.trackers.setdefault(series, BestMeanSoFar())
                comparison = tracker.update(step, parts)
            else:
                tracker = self.trackers.setdefault(series, BestSoFar())
                comparison = tracker.update(step, result.per_word)
            numbers = (
                comparison.decline.mean,
                comparison.decline.se,
                comparison.rise.mean,
                comparison.rise.se,
            )
            scalars.update(zip(keys.paired_keys(series), numbers, strict=True))
            paired[series] = dict(
                zip(("decline", "decline_se", "rise", "rise_se"), numbers, strict=True),
                best_step=comparison.best_step,
            )
        return scalars, paired

    def state_dict(self) -> dict:
        return {series: tracker.state_dict() for series, tracker in self.trackers.items()}

    def load_state_dict(self, state: dict) -> None:
        for series, tracker_state in state.items():
            kind = BestMeanSoFar if "corpora" in tracker_state else BestSoFar
            self.trackers.setdefault(series, kind()).load_state_dict(tracker_state)

"""Keep every PPP evaluation's per-word ΔLL (nats/word) so two runs can be compared word by word."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import pandas as pd

from phasewatch.callbacks import PPPMonitor
from phasewatch.measures.delta_loglik import PPPResult
from phasewatch.measures.paired import PairedPeakTest

#: File of a run's kept per-word ΔLL, beside its history.
PER_WORD_FILE = "per_word_delta_ll.csv.gz"


class _KeepingPairedTest(PairedPeakTest):
    """The monitor's paired peak test, which sees every evaluation's results with its step."""

    def __init__(self, kept: dict[str, dict[int, pd.Series]]) -> None:
        super().__init__()
        self.kept = kept

    def update(self, step: int, results: dict) -> tuple[dict[str, float], dict[str, dict]]:
        for series, result in results.items():
            if isinstance(result, PPPResult) and result.per_word is not None:
                self.kept[series][int(step)] = result.per_word.astype("float64")
        return super().update(step, results)


def keep_per_word(monitor: PPPMonitor) -> dict[str, dict[int, pd.Series]]:
    """Make ``monitor`` keep each evaluation's ``ΔLL_i``; returns the dict it fills.

    ``kept[series][step]`` is the Series of held-out ``ΔLL_i`` (nats, indexed by the corpus's
    word rows) of the ΔLL series ``series`` (e.g. ``ppp/delta_ll``, ``ppp/delta_ll_tokctrl``)
    measured at optimizer step ``step``. Fold ids are fixed per word, so two runs' values at the
    same step differ only by the models (:func:`phasewatch.measures.paired.paired_difference`).
    Memory: 8 bytes per word per series per evaluation (~0.1 MB for Natural Stories). The monitor
    stays a plain :class:`PPPMonitor` (its history and report read as usual); call this before
    training, on a monitor that has not measured yet.
    """
    if not isinstance(monitor, PPPMonitor):
        raise TypeError(f"`monitor` must be a PPPMonitor, got {type(monitor).__name__}")
    if monitor._paired.trackers:
        raise ValueError("`monitor` has measured already; keep its per-word ΔLL before training")
    kept: dict[str, dict[int, pd.Series]] = defaultdict(dict)
    monitor._paired = _KeepingPairedTest(kept)
    return kept


def save_per_word(per_word: dict[str, dict[int, pd.Series]], path: str | Path) -> Path:
    """Write ``per_word`` as a long CSV (series, step, word, delta_ll_nats), gzip-compressed."""
    rows = [
        pd.DataFrame({"series": series, "step": step, "word": s.index, "delta_ll_nats": s.values})
        for series, steps in per_word.items()
        for step, s in steps.items()
    ]
    table = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=["series", "step", "word", "delta_ll_nats"])
    )
    path = Path(path)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        table.to_csv(f, index=False, float_format="%.17g")
    return path


def load_per_word(path: str | Path) -> dict[str, dict[int, pd.Series]]:
    """Read a file written by :func:`save_per_word` back into ``{series: {step: Series}}``."""
    table = pd.read_csv(path)
    kept: dict[str, dict[int, pd.Series]] = defaultdict(dict)
    for (series, step), group in table.groupby(["series", "step"], sort=True):
        kept[series][int(step)] = pd.Series(
            group["delta_ll_nats"].to_numpy("float64"), index=group["word"].to_numpy(), name=series
        )
    return dict(kept)

"""Reading a run's phasewatch history (``phasewatch_history.jsonl``) back into tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from phasewatch.detect import PeakEvent, TransitionEvent

HISTORY_FILE = "phasewatch_history.jsonl"
#: ``PeakEvent.kind`` values: a peak record of an older history carries one of them as its kind.
_PEAK_KINDS = ("new_best", "confirmed")


@dataclass
class RunHistory:
    """Everything phasewatch recorded in one run.

    ``series`` maps a metric key to a DataFrame (step, tokens, value), one row per step (the last
    record wins when a resumed run measured a step twice); ``heads`` is a list of
    ``(step, tokens, {measure: [L, H] array})``; ``transitions`` and ``peaks`` are the events.
    """

    path: Path
    series: dict[str, pd.DataFrame] = field(default_factory=dict)
    heads: list[tuple[int, int, dict[str, np.ndarray]]] = field(default_factory=list)
    transitions: list[TransitionEvent] = field(default_factory=list)
    peaks: list[PeakEvent] = field(default_factory=list)
    configs: list[dict] = field(default_factory=list)

    @property
    def axis(self) -> str:
        """``"tokens"`` when every measurement recorded its tokens, else ``"step"`` (a checkpoint
        series analysed offline may not know its tokens): the column curves are drawn against."""
        known = all(frame["tokens"].notna().all() for frame in self.series.values())
        return "tokens" if known else "step"

    def get(self, key: str) -> pd.DataFrame | None:
        frame = self.series.get(key)
        return None if frame is None or frame.empty else frame

    def heads_near(self, step: int) -> tuple[int, int, dict[str, np.ndarray]] | None:
        """The per-head record measured closest to ``step``."""
        if not self.heads:
            return None
        return min(self.heads, key=lambda record: abs(record[0] - step))


def find_history(run_dir: str | Path) -> Path:
    """The history file in ``run_dir`` or below it (the newest, if several)."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    found = sorted(run_dir.rglob(HISTORY_FILE), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no {HISTORY_FILE} in {run_dir} or below it; phasewatch's callbacks write it into "
            "the logger's directory (e.g. lightning_logs/version_0) of a run that used them"
        )
    return found[-1]


def load_history(run_dir: str | Path) -> RunHistory:
    """Read the run's history file into a :class:`RunHistory`."""
    path = find_history(run_dir)
    rows: list[tuple[str, int, int, float]] = []
    history = RunHistory(path=path)
    heads: dict[int, tuple[int, int, dict]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}:{number} is not JSON ({error}); the file is damaged"
                ) from None
            kind = record.pop("kind", None)
            if kind == "measurement":
                for key, value in record["values"].items():
                    rows.append((key, record["step"], record["tokens"], value))
            elif kind == "heads":
                arrays = {k: np.asarray(v, dtype=float) for k, v in record["per_head"].items()}
                heads[record["step"]] = (record["step"], record["tokens"], arrays)
            elif kind == "transition":
                history.transitions.append(TransitionEvent.from_dict(record))
            elif kind == "peak":
                history.peaks.append(PeakEvent.from_dict(record["event"]))
            elif kind in _PEAK_KINDS and "metric" in record:
                # written before 0.2 as {"kind": "peak", **event}: the event's kind replaced "peak"
                history.peaks.append(PeakEvent.from_dict({"kind": kind, **record}))
            elif kind == "config":
                history.configs.append(record)
    table = pd.DataFrame(rows, columns=["key", "step", "tokens", "value"])
    for key, group in table.groupby("key", sort=False):
        group = group.drop_duplicates("step", keep="last").sort_values("step")
        history.series[key] = group[["step", "tokens", "value"]].reset_index(drop=True)
    history.heads = [heads[s] for s in sorted(heads)]
    history.transitions = _unique(history.transitions, lambda e: (e.metric, e.step))
    history.peaks = _unique(history.peaks, lambda e: (e.kind, e.metric, e.step))
    return history


def _unique(events, key):
    seen, kept = set(), []
    for event in events:
        if key(event) not in seen:
            seen.add(key(event))
            kept.append(event)
    return kept

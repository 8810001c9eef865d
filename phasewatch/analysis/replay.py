"""The sequential part of an offline analysis, and what it writes for ``phasewatch report``.

The paired peak test, the transition detectors and the peak tracker depend on every earlier
checkpoint, so they run here over all measured checkpoints in step order (also after a resume).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from phasewatch import keys
from phasewatch.analysis.cache import MeasuredCheckpoint
from phasewatch.analysis.table import tidy_table, wide_table
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.detect import DEFAULT_WATCH, PeakTracker, TransitionDetector, TransitionEvent
from phasewatch.measures.delta_loglik import spillover_meaning
from phasewatch.measures.paired import PairedPeakTest
from phasewatch.report.history import HISTORY_FILE


@dataclass
class Analysis:
    """The result of :func:`analyze_checkpoints`.

    ``tidy``: one row per checkpoint × metric (checkpoint, step, tokens, metric, value; see
    :mod:`phasewatch.analysis.table`), the table written to ``phasewatch_analysis.csv``;
    ``table``: the same numbers, one row per checkpoint (sorted by step); the detected
    transitions; the step of the highest PPP; where the history, table and report went;
    ``ablated``: the heads ablated while measuring (e.g. ``"L1H0 (zero)"``), else ``None``.
    """

    table: pd.DataFrame
    transitions: list[TransitionEvent] = field(default_factory=list)
    ppp_peak_step: int | None = None
    history_path: Path | None = None
    tidy: pd.DataFrame | None = None
    table_paths: list[Path] = field(default_factory=list)
    measured: int = 0
    ablated: str | None = None

    def __str__(self) -> str:
        lines = [f"{len(self.table)} checkpoints analysed ({self.measured} measured now)"]
        if self.ablated is not None:
            lines.append(f"ablated heads: {self.ablated} (in every measurement below)")
        lines += [f"transition: {e}" for e in self.transitions] or ["transition: none detected"]
        if self.ppp_peak_step is not None:
            lines.append(f"highest PPP at step {self.ppp_peak_step}")
        if self.history_path is not None:
            lines.append(f"history: {self.history_path}")
        lines += [f"table: {p}" for p in self.table_paths]
        return "\n".join(lines)


def replay(series: list[MeasuredCheckpoint], watch: dict[str, dict] | None) -> Analysis:
    """The paired peak test, the detectors and the peak tracker over ``series`` in step order."""
    watch = {k: v for k, v in (DEFAULT_WATCH if watch is None else watch).items() if k != keys.LOSS}
    detectors = {key: TransitionDetector(key, **params) for key, params in watch.items()}
    peak = PeakTracker(keys.PPP_DELTA_LL)
    paired_test = PairedPeakTest()
    # detectors need one axis: tokens when every checkpoint knows them, else steps
    on_tokens = all(m.tokens is not None for m in series)
    rows = []
    for m in series:
        scalars = dict(m.scalars)
        if m.results:
            scalars.update(paired_test.update(m.step, m.results)[0])
        rows.append((m.name, m.step, m.tokens, scalars))
        tokens = m.tokens if on_tokens else None
        for key, detector in detectors.items():
            if key in scalars:
                detector.update(m.step, scalars[key], tokens=tokens)
        if keys.PPP_DELTA_LL in scalars:
            decline, decline_se, rise, rise_se = (
                scalars[k] for k in keys.PAIRED_KEYS[keys.PPP_DELTA_LL]
            )
            peak.update(
                m.step,
                scalars[keys.PPP_DELTA_LL],
                tokens=tokens,
                decline=decline,
                decline_se=decline_se,
                rise=rise,
                rise_se=rise_se,
            )
    tidy = tidy_table(rows)
    transitions = [e for d in detectors.values() for e in d.events]
    return Analysis(wide_table(tidy), transitions, peak.best_step, tidy=tidy)


def write_history(
    out_dir: str | Path, analysis: Analysis, series: list[MeasuredCheckpoint], config: dict
) -> Path:
    """``phasewatch_history.jsonl`` for ``phasewatch report`` (unknown tokens: null; the report
    then draws against steps)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = [config]
    values = {
        name: group.set_index("metric")["value"].to_dict()
        for name, group in analysis.tidy.groupby("checkpoint", sort=False)
    }
    for m in series:
        tokens = m.tokens
        records.append(
            {"kind": "measurement", "step": m.step, "tokens": tokens, "values": values[m.name]}
        )
        per_head = {k: v.tolist() for k, v in m.per_head.items()}
        records.append({"kind": "heads", "step": m.step, "tokens": tokens, "per_head": per_head})
    records += [{"kind": "transition", **e.to_dict()} for e in analysis.transitions]
    path = out / HISTORY_FILE
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path


def ppp_config(
    corpora: list[ReadingTimeCorpus],
    spillovers: dict[str, int],
    folds: int,
    control_tokens: bool | str,
    baseline: Sequence[str],
    *,
    mixed_effects: bool = False,
) -> dict[str, Any]:
    """The history's PPP config record, as :meth:`PPPMonitor.describe` writes it."""
    if len(corpora) > 1:
        named = {
            "corpus": " + ".join(c.name for c in corpora),
            "corpora": [c.name for c in corpora],
            "spillover": dict(spillovers),
            "spillover_meaning": {n: spillover_meaning(s) for n, s in spillovers.items()},
            "aggregate": "ppp/delta_ll = mean over corpora of ppp/<corpus>/delta_ll; "
            "SE = sqrt(sum of SE_k^2) / K (corpora independent)",
        }
    else:
        spillover = spillovers.get(corpora[0].name, corpora[0].default_spillover)
        named = {
            "corpus": corpora[0].name,
            "spillover": spillover,
            "spillover_meaning": spillover_meaning(spillover),
        }
    return {
        "kind": "config",
        "monitor": "PPPMonitor",
        **named,
        "folds": folds,
        "baseline": list(baseline),
        "control_tokens": control_tokens,
        "mixed_effects": mixed_effects,
    }

"""What a resumed analysis keeps of each measured checkpoint, beside the table.

The paired peak test and the detectors depend on every earlier checkpoint in step order, so a
resumed analysis measures only the new checkpoints and replays that sequential part over all of
them. For the replay each checkpoint keeps, in ``phasewatch_analysis_cache/<hash>.json``: its step,
tokens, measured scalars, per-head scores and per-word ΔLL (nats) of each ΔLL series (for a mean
over corpora: its mean, SE, words and which corpus series it averages). JSON keeps every float
exactly. ``settings.json`` records the settings the cached numbers were measured with.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from phasewatch.measures.ppp_corpora import CorporaMean

CACHE_DIR = "phasewatch_analysis_cache"
SETTINGS_FILE = "settings.json"


def _plain_series(s: pd.Series) -> dict[str, list]:
    return {"index": s.index.tolist(), "values": s.to_numpy(np.float64).tolist()}


def _series(d: dict[str, list]) -> pd.Series:
    return pd.Series(d["values"], index=d["index"], dtype=np.float64)


@dataclass(frozen=True)
class Leaf:
    """What the paired test reads of one corpus's ΔLL series: its per-word ΔLL_i (nats)."""

    per_word: pd.Series


def plain_results(results: dict[str, Any]) -> dict[str, Any]:
    """A PPP measurement's results (series → PPPResult or CorporaMean) as JSON-ready data."""
    plain: dict[str, Any] = {}
    for series, result in results.items():
        if isinstance(result, CorporaMean):
            leaf_of = {id(r): k for k, r in results.items() if not isinstance(r, CorporaMean)}
            plain[series] = {
                "mean": result.mean,
                "se": result.se,
                "n": result.n,
                "parts": {name: leaf_of[id(part)] for name, part in result.parts.items()},
            }
        else:
            plain[series] = {"per_word": _plain_series(result.per_word)}
    return plain


def results_from_plain(plain: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`plain_results`, as the paired peak test reads it."""
    leaves = {k: Leaf(_series(v["per_word"])) for k, v in plain.items() if "per_word" in v}
    results: dict[str, Any] = {}
    for series, value in plain.items():
        if "per_word" in value:
            results[series] = leaves[series]
        else:
            parts = {name: leaves[leaf] for name, leaf in value["parts"].items()}
            results[series] = CorporaMean(value["mean"], value["se"], value["n"], parts)
    return results


class MeasuredCheckpoint:
    """One checkpoint's measurement: scalars, per-head tensors, PPP results by series."""

    def __init__(
        self,
        name: str,
        step: int,
        tokens: int | None,
        scalars: dict[str, float],
        per_head: dict[str, torch.Tensor],
        results: dict[str, Any],
    ) -> None:
        self.name, self.step, self.tokens = name, int(step), tokens
        self.scalars, self.per_head, self.results = scalars, per_head, results

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.name,
            "step": self.step,
            "tokens": self.tokens,
            "scalars": self.scalars,
            "per_head": {k: v.tolist() for k, v in self.per_head.items()},
            "results": plain_results(self.results),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasuredCheckpoint:
        return cls(
            d["checkpoint"],
            d["step"],
            d["tokens"],
            d["scalars"],
            {k: torch.tensor(v) for k, v in d["per_head"].items()},
            results_from_plain(d["results"]),
        )


class AnalysisCache:
    """The per-checkpoint measurements of one analysis folder (``out_dir``)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.folder = Path(out_dir) / CACHE_DIR

    def _file(self, name: str) -> Path:
        return self.folder / f"{hashlib.sha1(name.encode()).hexdigest()[:16]}.json"

    def clear(self) -> None:
        """Forget every cached measurement (``resume=False``)."""
        if self.folder.exists():
            shutil.rmtree(self.folder)

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Record ``settings``, or refuse when the cached numbers were measured with others."""
        path = self.folder / SETTINGS_FILE
        plain = json.loads(json.dumps(settings))
        if path.exists():
            saved = json.loads(path.read_text())
            if saved != plain:
                changed = sorted(k for k in {*saved, *plain} if saved.get(k) != plain.get(k))
                differences = ", ".join(
                    f"{k}: {saved.get(k)!r} then, {plain.get(k)!r} now" for k in changed
                )
                raise ValueError(
                    f"the analysis in {self.folder.parent} was measured with other settings "
                    f"({differences}"
                    "); its checkpoints cannot join this series. Pass resume=False (--no-resume) "
                    "to measure afresh, or another out_dir (--out)"
                )
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plain, indent=1))

    def get(self, name: str) -> MeasuredCheckpoint | None:
        path = self._file(name)
        return MeasuredCheckpoint.from_dict(json.loads(path.read_text())) if path.exists() else None

    def put(self, measured: MeasuredCheckpoint) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self._file(measured.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(measured.to_dict()))
        tmp.replace(self._file(measured.name))  # a crash mid-write leaves no half entry

    def names(self) -> list[str]:
        """Checkpoints measured in this folder so far."""
        if not self.folder.exists():
            return []
        return [
            json.loads(p.read_text())["checkpoint"]
            for p in sorted(self.folder.glob("*.json"))
            if p.name != SETTINGS_FILE
        ]

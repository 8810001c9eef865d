"""Online tracker of a metric's peak (best value so far), with smoothing and patience."""

from __future__ import annotations

import math
from collections.abc import Iterable

from phasewatch.detect.events import PeakEvent

_MODES = ("max", "min")


class PeakTracker:
    """Track the best (optionally smoothed) value of a metric and confirm its peak.

    Each evaluation is smoothed as the mean of the last ``smoothing`` raw values. A smoothed value
    better than the best by at least ``min_delta`` is a new best; ``patience`` evaluations without
    one confirm the peak (once; a later new best re-opens it).

    Args:
        metric: name of the series, copied into events (e.g. ``"ppp/delta_ll"``).
        mode: ``"max"`` (PPP, ΔLL in nats/word) or ``"min"``.
        min_delta: smallest improvement that counts, in the metric's units (default 0).
        patience: evaluations without improvement that confirm the peak (default 5).
        smoothing: trailing window of the moving average, in evaluations (default 1: raw values).
    """

    def __init__(
        self,
        metric: str,
        *,
        mode: str = "max",
        min_delta: float = 0.0,
        patience: int = 5,
        smoothing: int = 1,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"`mode` can be {' or '.join(_MODES)}, got {mode!r}")
        if min_delta < 0:
            raise ValueError(f"`min_delta` must be >= 0 (metric units), got {min_delta}")
        if patience < 1:
            raise ValueError(f"`patience` must be >= 1 evaluation, got {patience}")
        if smoothing < 1:
            raise ValueError(f"`smoothing` must be >= 1 evaluation, got {smoothing}")
        self.metric = metric
        self.mode = mode
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.smoothing = int(smoothing)
        self.reset()

    def reset(self) -> None:
        self._recent: list[float] = []
        self.best: float | None = None
        self.best_raw: float | None = None
        self.best_step: int | None = None
        self.best_tokens: int | None = None
        self.wait = 0
        self.confirmed = False

    def _improves(self, smoothed: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return smoothed > self.best + self.min_delta
        return smoothed < self.best - self.min_delta

    def update(self, step: int, value: float, *, tokens: int | None = None) -> list[PeakEvent]:
        """Feed one evaluation; returns the events it caused (new best, peak confirmed)."""
        value = float(value)
        if not math.isfinite(value):
            return []
        self._recent = ([*self._recent, value])[-self.smoothing :]
        smoothed = sum(self._recent) / len(self._recent)
        if self._improves(smoothed):
            self.best, self.best_raw = smoothed, value
            self.best_step, self.best_tokens = int(step), tokens
            self.wait, self.confirmed = 0, False
            return [PeakEvent("new_best", self.metric, int(step), value, smoothed, tokens)]
        self.wait += 1
        if self.wait >= self.patience and not self.confirmed:
            self.confirmed = True
            return [
                PeakEvent(
                    "confirmed",
                    self.metric,
                    self.best_step,
                    self.best_raw,
                    self.best,
                    self.best_tokens,
                    self.wait,
                )
            ]
        return []

    def state_dict(self) -> dict:
        return {
            "recent": list(self._recent),
            "best": self.best,
            "best_raw": self.best_raw,
            "best_step": self.best_step,
            "best_tokens": self.best_tokens,
            "wait": self.wait,
            "confirmed": self.confirmed,
        }

    def load_state_dict(self, state: dict) -> None:
        self._recent = list(state["recent"])
        self.best, self.best_raw = state["best"], state["best_raw"]
        self.best_step, self.best_tokens = state["best_step"], state["best_tokens"]
        self.wait, self.confirmed = int(state["wait"]), bool(state["confirmed"])

    def __repr__(self) -> str:
        return (
            f"PeakTracker({self.metric!r}, mode={self.mode!r}, best={self.best} at step "
            f"{self.best_step}, wait={self.wait}/{self.patience}, confirmed={self.confirmed})"
        )


def find_peak(
    steps: Iterable[int], values: Iterable[float], *, metric: str = "metric", **params
) -> tuple[PeakTracker, list[PeakEvent]]:
    """Apply :class:`PeakTracker` to a whole history offline; returns the tracker and events."""
    tracker = PeakTracker(metric, **params)
    events: list[PeakEvent] = []
    for step, value in zip(steps, values, strict=True):
        events.extend(tracker.update(step, value))
    return tracker, events

"""Online tracker of a metric's peak: the best so far, patience, a paired test of the decline."""

from __future__ import annotations

import math
from collections.abc import Iterable

from phasewatch.detect.events import PeakEvent, z_score

_MODES = ("max", "min")
_STATE_VERSION = 2
#: Threshold of the paired peak tests, in standard errors (one-sided p ≈ 0.023 per test).
DEFAULT_MIN_Z = 2.0


class PeakTracker:
    """Track the best (optionally smoothed) value of a metric and confirm its peak.

    Each evaluation is smoothed as the mean of the last ``smoothing`` raw values. A smoothed value
    better than the best by at least ``min_delta`` is a new best. The peak is confirmed (once; a
    later new best re-opens it) when all of these hold:

    1. ``patience`` evaluations have passed without a new best;
    2. training went on long enough: ``step >= min_steps`` and ``tokens >= min_tokens``;
    3. the series rose before its best (``require_rise``): the best is not the first evaluation
       and, when the caller passes the paired rise ``rise ± rise_se`` (best − first, word by word),
       ``rise / rise_se >= min_z``; without it, the best beats the first value by ``min_delta``;
    4. the decline since the best is significant: when the caller passes the paired decline
       ``decline ± decline_se`` (best − now, word by word; see
       :mod:`phasewatch.measures.paired`), ``decline / decline_se >= min_z``. Without a paired
       decline (a metric with no per-word values), patience alone decides, and the event says so.

    Args:
        metric: name of the series, copied into events (e.g. ``"ppp/delta_ll"``).
        mode: ``"max"`` (PPP, ΔLL in nats/word) or ``"min"``.
        min_delta: smallest improvement that counts, in the metric's units (default 0).
        patience: evaluations without improvement before a peak can be confirmed (default 5).
        smoothing: trailing window of the moving average, in evaluations (default 1: raw values).
        min_z: the paired tests' threshold, in standard errors (default 2.0: one-sided p ≈ 0.023
            per test; evaluations are many and correlated, so this is a screen, not a p-value).
        min_steps, min_tokens: no peak is confirmed before this much training (default 0 here;
            :class:`~phasewatch.callbacks.PeakMonitor` sets 1,000 steps).
        require_rise: a peak needs a rise before it (default True): the untrained model's value is
            not a peak.
    """

    def __init__(
        self,
        metric: str,
        *,
        mode: str = "max",
        min_delta: float = 0.0,
        patience: int = 5,
        smoothing: int = 1,
        min_z: float = DEFAULT_MIN_Z,
        min_steps: int = 0,
        min_tokens: int = 0,
        require_rise: bool = True,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"`mode` can be {' or '.join(_MODES)}, got {mode!r}")
        if min_delta < 0:
            raise ValueError(f"`min_delta` must be >= 0 (metric units), got {min_delta}")
        if patience < 1:
            raise ValueError(f"`patience` must be >= 1 evaluation, got {patience}")
        if smoothing < 1:
            raise ValueError(f"`smoothing` must be >= 1 evaluation, got {smoothing}")
        if not min_z > 0:
            raise ValueError(f"`min_z` must be > 0 standard errors, got {min_z}")
        if min_steps < 0 or min_tokens < 0:
            raise ValueError(
                f"`min_steps` and `min_tokens` must be >= 0, got {min_steps} and {min_tokens}"
            )
        self.metric = metric
        self.mode = mode
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.smoothing = int(smoothing)
        self.min_z = float(min_z)
        self.min_steps = int(min_steps)
        self.min_tokens = int(min_tokens)
        self.require_rise = bool(require_rise)
        self.reset()

    def reset(self) -> None:
        self._recent: list[float] = []
        self.first: float | None = None
        self.first_step: int | None = None
        self.best: float | None = None
        self.best_raw: float | None = None
        self.best_step: int | None = None
        self.best_tokens: int | None = None
        self.wait = 0
        self.confirmed = False
        #: Why the last evaluation did not confirm a peak (None once confirmed or while improving).
        self.waiting_for: str | None = None

    @property
    def _sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    def _improves(self, smoothed: float) -> bool:
        if self.best is None:
            return True
        return self._sign * (smoothed - self.best) > self.min_delta

    def update(
        self,
        step: int,
        value: float,
        *,
        tokens: int | None = None,
        decline: float | None = None,
        decline_se: float | None = None,
        rise: float | None = None,
        rise_se: float | None = None,
    ) -> list[PeakEvent]:
        """Feed one evaluation; returns the events it caused (new best, peak confirmed).

        ``decline`` ± ``decline_se``: paired ``best − now``; ``rise`` ± ``rise_se``: paired
        ``best − first``, in the metric's units, oriented so that positive means "worse now" and
        "rose before the best" in either ``mode``.
        """
        value = float(value)
        if not math.isfinite(value):
            return []
        if self.first is None:
            self.first, self.first_step = value, int(step)
        self._recent = ([*self._recent, value])[-self.smoothing :]
        smoothed = sum(self._recent) / len(self._recent)
        if self._improves(smoothed):
            self.best, self.best_raw = smoothed, value
            self.best_step, self.best_tokens = int(step), tokens
            self.wait, self.confirmed, self.waiting_for = 0, False, "a decline after the best"
            return [PeakEvent("new_best", self.metric, int(step), value, smoothed, tokens)]
        self.wait += 1
        if self.confirmed:
            return []
        self.waiting_for = self._blocking_reason(step, tokens, decline, decline_se, rise, rise_se)
        if self.waiting_for is not None:
            return []
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
                decline=decline,
                decline_se=decline_se,
                rise=rise,
                rise_se=rise_se,
                min_z=self.min_z,
                confirmed_step=int(step),
            )
        ]

    def _blocking_reason(self, step, tokens, decline, decline_se, rise, rise_se) -> str | None:
        """None when the peak may be confirmed now, else what is still missing, in words."""
        if self.wait < self.patience:
            return f"patience ({self.wait}/{self.patience} evaluations since the best)"
        if step < self.min_steps or (tokens is not None and tokens < self.min_tokens):
            return f"more training (min_steps={self.min_steps}, min_tokens={self.min_tokens:,})"
        if self.require_rise and not self._rose(rise, rise_se):
            return "a rise before the best (the best is the first value, or not above it)"
        if decline is not None and z_score(decline, decline_se) < self.min_z:
            return (
                f"a significant decline (paired {decline:.4g} ± {decline_se:.2g}, "
                f"z = {z_score(decline, decline_se):.2f} < {self.min_z})"
            )
        return None

    def _rose(self, rise: float | None, rise_se: float | None) -> bool:
        if self.best_step == self.first_step:
            return False
        if rise is not None:
            return z_score(rise, rise_se) >= self.min_z
        return self._sign * (self.best - self.first) > self.min_delta

    def state_dict(self) -> dict:
        return {
            "format_version": _STATE_VERSION,
            "recent": list(self._recent),
            "first": self.first,
            "first_step": self.first_step,
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
        # format 1 (phasewatch 0.1) kept no first value: the earliest known point is the best's
        self.first = state.get("first", self.best_raw)
        self.first_step = state.get("first_step", self.best_step)

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

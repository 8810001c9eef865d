"""Online detector of abrupt, sustained changes in a metric series (phase transitions).

The rule, applied once per evaluation of the series:

1. Baseline. The last ``window`` accepted values predict the next one: their median
   (``detrend=False``) or, with ``detrend=True``, the median of each value carried forward along the
   window's median step-to-step difference. The series' own noise is
   ``sigma = 1.4826 * MAD(first differences) / sqrt(2)`` over the window.
2. Candidate. A value whose deviation from the prediction, in the watched ``direction``, is at least
   ``threshold = max(min_change, noise_factor * sigma)`` opens a candidate.
3. Confirmation (hysteresis). The candidate becomes a :class:`TransitionEvent` once ``confirm``
   consecutive values (the first included) stay at least ``hysteresis * threshold`` past the
   prediction. A value that falls back cancels it: a single spike never alerts.
4. Re-arming. After an event the baseline restarts from the confirming values, so a later, separate
   transition can be detected, but the same one is reported once.

The detector keeps only plain numbers; ``state_dict``/``load_state_dict`` round-trip it exactly, and
:func:`detect_transitions` applies the very same rule to a whole history offline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from statistics import median

from phasewatch.detect.events import TransitionEvent

_MAD_TO_SD = 1.4826
_DIRECTIONS = ("rise", "drop")


class TransitionDetector:
    """Detect an abrupt, sustained rise (or drop) of one metric, online.

    Args:
        metric: name of the watched series, copied into events (e.g. ``"heads/induction_max"``).
        direction: ``"rise"`` or ``"drop"``.
        min_change: smallest change that counts, in the metric's units (default 0.1: a head score
            moving by a tenth of the attention mass).
        noise_factor: the change must also exceed this many noise SDs of the series (default 4).
        window: evaluations in the baseline (default 4); no candidate before it is full.
        confirm: consecutive evaluations past the hysteresis level needed to fire (default 2).
        hysteresis: fraction of the threshold that confirming evaluations must keep (default 0.5).
        detrend: predict from the window's local trend instead of its level (for series that drift,
            such as a falling loss). Default False.
        start_step: evaluations before this step only fill the baseline; no candidate opens
            (default 0). Use it to skip a loss's initial descent from ln(vocabulary size).
    """

    def __init__(
        self,
        metric: str,
        *,
        direction: str = "rise",
        min_change: float = 0.1,
        noise_factor: float = 4.0,
        window: int = 4,
        confirm: int = 2,
        hysteresis: float = 0.5,
        detrend: bool = False,
        start_step: int = 0,
    ) -> None:
        if direction not in _DIRECTIONS:
            raise ValueError(f"`direction` can be {' or '.join(_DIRECTIONS)}, got {direction!r}")
        if not min_change > 0:
            raise ValueError(f"`min_change` must be > 0 (metric units), got {min_change}")
        if noise_factor < 0:
            raise ValueError(f"`noise_factor` must be >= 0, got {noise_factor}")
        if window < 2:
            raise ValueError(f"`window` must be >= 2 evaluations, got {window}")
        if confirm < 1:
            raise ValueError(f"`confirm` must be >= 1 evaluation, got {confirm}")
        if start_step < 0:
            raise ValueError(f"`start_step` must be >= 0, got {start_step}")
        if not 0 <= hysteresis <= 1:
            raise ValueError(f"`hysteresis` must be in [0, 1], got {hysteresis}")
        self.metric = metric
        self.direction = direction
        self.min_change = float(min_change)
        self.noise_factor = float(noise_factor)
        self.window = int(window)
        self.confirm = int(confirm)
        self.hysteresis = float(hysteresis)
        self.detrend = bool(detrend)
        self.start_step = int(start_step)
        self.reset()

    def reset(self) -> None:
        self._baseline: list[float] = []
        self._candidate: dict | None = None
        self.events: list[TransitionEvent] = []

    @property
    def _sign(self) -> float:
        return 1.0 if self.direction == "rise" else -1.0

    def _predict(self) -> tuple[float, float]:
        """Predicted next value and the noise SD, from the baseline window."""
        values = self._baseline
        diffs = [b - a for a, b in itertools.pairwise(values)]
        step = median(diffs) if self.detrend else 0.0
        n = len(values)
        predicted = median(v + step * (n - i) for i, v in enumerate(values))
        mad = median(abs(d - step) for d in diffs)
        return predicted, _MAD_TO_SD * mad / math.sqrt(2.0)

    def update(
        self,
        step: int,
        value: float,
        *,
        tokens: int | None = None,
        heads: Sequence[tuple[int, int]] = (),
    ) -> TransitionEvent | None:
        """Feed one evaluation; returns the event when a transition is confirmed, else None.

        Non-finite values are ignored (a failed measurement must not look like a transition).
        """
        value = float(value)
        if not math.isfinite(value):
            return None
        if self._candidate is not None:
            return self._continue_candidate(step, value)
        if len(self._baseline) >= self.window and step >= self.start_step:
            predicted, sigma = self._predict()
            threshold = max(self.min_change, self.noise_factor * sigma)
            if self._sign * (value - predicted) >= threshold:
                self._candidate = {
                    "step": int(step),
                    "tokens": None if tokens is None else int(tokens),
                    "before": predicted,
                    "threshold": threshold,
                    "values": [value],
                    "heads": [list(h) for h in heads],
                }
                return self._fire(step) if self.confirm <= 1 else None
        self._baseline = ([*self._baseline, value])[-self.window :]
        return None

    def _continue_candidate(self, step: int, value: float) -> TransitionEvent | None:
        cand = self._candidate
        keep = cand["before"] + self._sign * self.hysteresis * cand["threshold"]
        if self._sign * (value - keep) >= 0:
            cand["values"].append(value)
            if len(cand["values"]) >= self.confirm:
                return self._fire(step)
            return None
        # Fell back: the candidate was a spike. Its values never enter the baseline.
        self._candidate = None
        self._baseline = ([*self._baseline, value])[-self.window :]
        return None

    def _fire(self, step: int) -> TransitionEvent:
        cand = self._candidate
        event = TransitionEvent(
            step=cand["step"],
            metric=self.metric,
            before=cand["before"],
            after=sum(cand["values"]) / len(cand["values"]),
            threshold=cand["threshold"],
            direction=self.direction,
            tokens=cand["tokens"],
            confirmed_step=int(step),
            heads=tuple(tuple(h) for h in cand["heads"]),
        )
        self.events.append(event)
        self._baseline = cand["values"][-self.window :]
        self._candidate = None
        return event

    @property
    def pending(self) -> bool:
        """True while a candidate waits for confirmation."""
        return self._candidate is not None

    def state_dict(self) -> dict:
        return {
            "baseline": list(self._baseline),
            "candidate": None if self._candidate is None else dict(self._candidate),
            "events": [e.to_dict() for e in self.events],
        }

    def load_state_dict(self, state: dict) -> None:
        self._baseline = [float(v) for v in state["baseline"]]
        self._candidate = None if state["candidate"] is None else dict(state["candidate"])
        self.events = [TransitionEvent.from_dict(e) for e in state["events"]]

    def __repr__(self) -> str:
        return (
            f"TransitionDetector({self.metric!r}, direction={self.direction!r}, "
            f"min_change={self.min_change}, noise_factor={self.noise_factor}, "
            f"window={self.window}, confirm={self.confirm}, events={len(self.events)})"
        )


def detect_transitions(
    steps: Iterable[int],
    values: Iterable[float],
    *,
    metric: str = "metric",
    tokens: Iterable[int | None] | None = None,
    **params,
) -> list[TransitionEvent]:
    """Apply :class:`TransitionDetector` to a whole history, offline; same rule, same events."""
    steps, values = list(steps), list(values)
    if len(steps) != len(values):
        raise ValueError(f"`steps` and `values` differ in length: {len(steps)} vs {len(values)}")
    tokens = [None] * len(steps) if tokens is None else list(tokens)
    detector = TransitionDetector(metric, **params)
    for step, value, tok in zip(steps, values, tokens, strict=True):
        detector.update(step, value, tokens=tok)
    return list(detector.events)

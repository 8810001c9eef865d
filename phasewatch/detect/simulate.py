"""Simulated series with a known answer, to check a detector setting on a measuring cadence.

A logistic rise in steps, ``low + height / (1 + exp(-(step - centre) / width))`` plus Gaussian
noise, measured at given steps with a constant number of tokens per step. The detection counts as
right when exactly one event fires and it lies *inside the rise*: from the last evaluation before
the 10 % point to the first evaluation after the 90 % point (a rise narrower than the cadence is a
step, found at the first evaluation after it). Noise-only and single-spike series must give none.

``tests/test_detect_matrix.py`` asserts the matrix; ``benchmarks/detector_matrix.py`` prints it
for docs/transition.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from phasewatch.detect.events import TransitionEvent
from phasewatch.detect.transition import detect_transitions

#: Logistic offset of the 10 % and 90 % points, in widths: ln(9).
_Q90 = math.log(9.0)


class Schedule(Protocol):
    """Anything that says whether a step is measured (e.g. ``MeasureSchedule``)."""

    def due(self, step: int) -> bool: ...


def measured_steps(cadence: int | Schedule, end: float) -> list[int]:
    """Steps from 0 to ``end`` measured every ``cadence`` steps, or where a schedule is due."""
    if isinstance(cadence, int):
        return list(range(0, int(end) + 1, cadence))
    return [s for s in range(int(end) + 1) if cadence.due(s)]


@dataclass(frozen=True)
class Rise:
    """A logistic rise: ``low`` to ``low + height`` (metric units), centre and width in steps."""

    centre: float
    width: float
    height: float = 0.875
    low: float = 0.014

    def values(self, steps: Sequence[int]) -> np.ndarray:
        x = (np.asarray(steps, dtype=float) - self.centre) / self.width
        return self.low + self.height / (1.0 + np.exp(-np.clip(x, -60, 60)))

    @property
    def steps_10_90(self) -> tuple[float, float]:
        """Steps of the 10 % and 90 % points."""
        return self.centre - _Q90 * self.width, self.centre + _Q90 * self.width

    def window(self, steps: Sequence[int]) -> tuple[int, int]:
        """Steps of the last evaluation before the 10 % point and the first after the 90 %."""
        s10, s90 = self.steps_10_90
        before = [s for s in steps if s < s10]
        after = [s for s in steps if s > s90]
        return (before[-1] if before else steps[0]), (after[0] if after else steps[-1])


def abrupt_centre(width: float, steps: Sequence[int], min_evaluations: int, phase: float) -> float:
    """A centre at which the rise is abrupt in tokens and starts after ``min_evaluations``.

    At least ``12 * width`` (10-90 % within a factor 1.45 in tokens) and with the 10 % point after
    evaluation ``min_evaluations``; then moved by ``phase`` (0-1) of the local gap between
    evaluations, so the rise falls anywhere relative to the cadence.
    """
    centre = max(12.0 * width, steps[min_evaluations] + _Q90 * width)
    i = int(np.searchsorted(steps, centre))
    gap = steps[min(i + 1, len(steps) - 1)] - steps[min(i, len(steps) - 2)]
    return centre + phase * gap


@dataclass(frozen=True)
class CellResult:
    """One cell of the matrix: seeds in which the rise was found once inside it, and the rest."""

    right: int
    seeds: int
    missed: int
    extra: int
    outside: int
    mean_delay: float  # confirmation tokens / 90 %-point tokens, averaged over right seeds


def run_cell(
    cadence: int | Schedule,
    width: float,
    height: float,
    noise: float,
    seeds: int = 20,
    tokens_per_step: int = 3200,
    min_evaluations: int = 6,
    detect: Callable[..., list[TransitionEvent]] = detect_transitions,
    **params,
) -> CellResult:
    """Simulate ``seeds`` rises of a width/height with noise SD ``noise`` and score the events.

    ``cadence``: measured every so many steps, or on a schedule. The series runs to six times the
    rise's centre, so a second event on the plateau would be seen.
    """
    right = missed = extra = outside = 0
    delays = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        probe = measured_steps(cadence, 15 * width + 10_000)
        rise = Rise(abrupt_centre(width, probe, min_evaluations, rng.uniform()), width, height)
        steps = measured_steps(cadence, 6 * rise.centre)
        values = rise.values(steps) + rng.normal(0.0, noise, len(steps))
        tokens = [s * tokens_per_step for s in steps]
        events = detect(steps, values, tokens=tokens, metric="sim", **params)
        lo, hi = rise.window(steps)
        if not events:
            missed += 1
        elif len(events) > 1:
            extra += 1
        elif not lo <= events[0].step <= hi:
            outside += 1
        else:
            right += 1
            confirmed = events[0].confirmed_step or events[0].step
            delays.append(confirmed / rise.steps_10_90[1])
    mean_delay = float(np.mean(delays)) if delays else math.nan
    return CellResult(right, seeds, missed, extra, outside, mean_delay)


def false_alarms(
    steps: Sequence[int],
    noise: float,
    seeds: int = 20,
    spike: float | None = None,
    low: float = 0.014,
    tokens_per_step: int = 3200,
    detect: Callable[..., list[TransitionEvent]] = detect_transitions,
    **params,
) -> int:
    """Events over ``seeds`` flat series (``low`` plus noise), with one ``spike`` at mid-series."""
    count = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        values = low + rng.normal(0.0, noise, len(steps))
        if spike is not None:
            values[rng.integers(len(steps) // 4, 3 * len(steps) // 4)] += spike
        tokens = [s * tokens_per_step for s in steps]
        count += len(detect(list(steps), values, tokens=tokens, metric="sim", **params))
    return count

"""The reference a transition is measured against: a span of the log-token axis, not a count.

Pure functions over a history of evaluations ``(step, position, value)`` kept in order of
position (tokens seen, or steps when tokens are unknown). For the evaluation at position ``t`` the
reference is every earlier evaluation at positions in ``[t / span**2, t / span]``: one factor
``span`` back on the log axis, with a gap of a factor ``span`` between it and ``t``, so a rise
that is abrupt on a log-token scale (10-90 % within less than a factor ``span``) cannot drag its
own reference up, however often it is measured. A sparse cadence that puts fewer than ``min_points``
evaluations in that span takes the latest ``min_points`` at or below ``t / span`` instead.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from statistics import median

#: The noise is estimated from the evaluations since the reference span began, and from at least
#: this many (when there are).
NOISE_MIN_POINTS = 32
#: No candidate opens before the noise rests on this many differences (six evaluations).
NOISE_MIN_DIFFS = 5
#: At most this many evaluations (or consecutive pairs) enter one estimate: a dense cadence is
#: sampled evenly, which keeps an update O(1) however often the series is measured.
MAX_POINTS = 64
#: Scale from the mean absolute difference of two evaluations to one evaluation's normal SD:
#: E|d| = sigma * sqrt(2) * sqrt(2 / pi).
_MEAN_ABS_DIFF_TO_SD = math.sqrt(math.pi) / 2.0

Point = Sequence  # (step, position, value)


def _position(point: Point) -> float:
    return point[1]


def reference_bounds(
    points: Sequence[Point], position: float, span: float, min_points: int
) -> tuple[int, int] | None:
    """Index range ``[lo, hi)`` of the reference of an evaluation at ``position``, or None.

    None while fewer than ``min_points`` evaluations lie at or below ``position / span``.
    """
    hi = bisect_right(points, position / span, key=_position)
    lo = bisect_left(points, position / span**2, key=_position)
    if hi - lo < min_points:
        lo = hi - min_points
    return None if lo < 0 else (lo, hi)


def _evenly(lo: int, hi: int, limit: int = MAX_POINTS) -> range:
    """At most ``limit`` indices in ``[lo, hi)``, evenly strided, the last one kept."""
    stride = max(1, -(-(hi - lo) // limit))
    return range(hi - 1 - stride * ((hi - 1 - lo) // stride), hi, stride)


def reference_level(
    points: Sequence[Point], lo: int, hi: int, position: float, detrend: bool
) -> float:
    """The level the reference ``points[lo:hi]`` predicts at ``position``, in the metric's units.

    The median of the reference values; with ``detrend``, the median of each value carried to
    ``position`` along the reference's own slope on the log-position axis (the slope between the
    medians of its earlier and later halves). Positions <= 0 (step 0) carry no slope.
    """
    sample = [points[i] for i in _evenly(lo, hi)]
    if not detrend or position <= 0:
        return median(p[2] for p in sample)
    logged = [(math.log(p[1]), p[2]) for p in sample if p[1] > 0]
    if len(logged) < 2:
        return median(p[2] for p in sample)
    half = len(logged) // 2
    early, late = logged[:half], logged[half:]
    dx = median(x for x, _ in late) - median(x for x, _ in early)
    slope = (median(v for _, v in late) - median(v for _, v in early)) / dx if dx > 0 else 0.0
    x_now = math.log(position)
    return median(v + slope * (x_now - x) for x, v in logged)


def noise_sd(points: Sequence[Point], lo: int, hi: int, drift: bool) -> tuple[float, int]:
    """Noise SD of one evaluation from ``points[lo:hi]``, metric units, and the differences used.

    ``sqrt(pi) / 2 * mean|d - c|`` over the differences ``d`` of consecutive evaluations, with
    ``c = 0``, or ``c = median(d)`` when the series may ``drift`` (a falling loss). Differences of
    *consecutive* evaluations measure the evaluation noise whatever the cadence. The mean, not a
    median, on purpose: it is the more efficient estimate (a median of a few differences that
    happen to agree passes a noisy series for a quiet one), and what it does not resist - a spike -
    raises the threshold for a while rather than lowering it.
    """
    diffs = [points[i + 1][2] - points[i][2] for i in _evenly(lo, hi - 1)]
    if len(diffs) < 2:
        return 0.0, len(diffs)
    centre = median(diffs) if drift else 0.0
    mean_abs = sum(abs(d - centre) for d in diffs) / len(diffs)
    return _MEAN_ABS_DIFF_TO_SD * mean_abs, len(diffs)

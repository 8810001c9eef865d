"""When to measure: log-spaced steps (dense early), every N steps, or an explicit list; and an
overhead budget that skips scheduled measurements to keep their share of wall time bounded."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

from phasewatch.callbacks._args import bool_arg, int_arg, steps_arg


class MeasureSchedule:
    """Decide whether optimizer step ``step`` is a measurement step.

    Transitions happen early in training, so the default is log-spaced: step 0 (the untrained
    model, the reference), then the steps ``ceil(10 ** (k / per_decade))`` from ``grid_start`` on
    until consecutive grid steps are ``every_n_steps`` apart, then the multiples of
    ``every_n_steps`` from at least half an interval after the grid's last step.

    The grid starts a decade below ``every_n_steps`` (step 10 by default), not at step 1: in the
    runs measured (docs/callbacks.md) nothing measurable changed in the first 10–30 steps, and
    measuring there cost 7 of the first 19 measurements.

    Args:
        every_n_steps: the regular interval once the log grid has thinned out, or the only one when
            ``log_spaced=False``. Default 100.
        log_spaced: use the dense-early log grid (default True).
        per_decade: log-grid points per factor of ten in steps (default 10).
        steps: an explicit list of steps; when given, only these are measured.
        grid_start: the log grid's first step after step 0; default ``every_n_steps // 10`` (at
            least 1), i.e. 10 for the default interval. ``grid_start=1`` gives the grid of
            earlier releases (1, 2, 3, 4, 6, 7, 8, 10, ...).

    Raises:
        TypeError: an argument of the wrong type (``every_n_steps='100'`` or ``2.5``).
        ValueError: a number out of range (``every_n_steps=0``, a negative step).

    Example:
        >>> s = MeasureSchedule(every_n_steps=50, per_decade=4, grid_start=1)
        >>> [t for t in range(200) if s.due(t)]
        [0, 1, 2, 4, 6, 10, 18, 32, 57, 100, 150]
        >>> [t for t in range(500) if MeasureSchedule().due(t)]
        [0, 10, 13, 16, 20, 26, 32, 40, 51, 64, 80, 100, 126, 159, 200, 252, 317, 399]
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        *,
        log_spaced: bool = True,
        per_decade: int = 10,
        steps: Sequence[int] | None = None,
        grid_start: int | None = None,
    ) -> None:
        self.every_n_steps = int_arg("every_n_steps", every_n_steps, 1, "optimizer steps")
        self.log_spaced = bool_arg("log_spaced", log_spaced)
        self.per_decade = int_arg("per_decade", per_decade, 1, "grid points per factor 10")
        self.steps = steps_arg("steps", steps)
        if grid_start is None:
            grid_start = max(1, self.every_n_steps // 10)
        self.grid_start = int_arg("grid_start", grid_start, 1, "optimizer steps")
        self._grid = self._log_grid() if self.log_spaced else set()
        self._grid_end = max(self._grid, default=0)

    def _log_grid(self) -> set[int]:
        grid, k, previous = {0}, 0, 0
        while True:
            step = math.ceil(10 ** (k / self.per_decade))
            k += 1
            if step == previous:
                continue
            if step < self.grid_start:
                continue
            if step - previous >= self.every_n_steps:
                return grid
            grid.add(step)
            previous = step

    def due(self, step: int) -> bool:
        """True when ``step`` (the number of optimizer steps taken) should be measured."""
        if self.steps is not None:
            return step in self.steps
        if self.log_spaced and step <= self._grid_end:
            return step in self._grid
        if self.log_spaced and step < self._grid_end + self.every_n_steps // 2:
            return False  # no multiple of N right after the grid's last step
        return step % self.every_n_steps == 0

    def __repr__(self) -> str:
        if self.steps is not None:
            return f"MeasureSchedule(steps={self.steps})"
        return (
            f"MeasureSchedule(every_n_steps={self.every_n_steps}, log_spaced={self.log_spaced}, "
            f"per_decade={self.per_decade}, grid_start={self.grid_start})"
        )


def overhead_arg(value: Any) -> float | None:
    """``max_overhead``: None (no budget) or a fraction in (0, 1) of training wall time."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            "`max_overhead` must be a fraction of training wall time in (0, 1) (e.g. 0.05 for "
            f"5 %) or None for no budget, got {value!r} of type {type(value).__name__}"
        )
    fraction = float(value)
    if not (0.0 < fraction < 1.0):
        hint = f"; for {fraction:g} % pass {fraction / 100:g}" if 1.0 <= fraction < 100 else ""
        raise ValueError(
            "`max_overhead` must be a fraction of training wall time in (0, 1) (e.g. 0.05 for "
            f"5 %) or None for no budget, got {value!r}{hint}"
        )
    return fraction


class OverheadBudget:
    """Keep measurement time within ``fraction`` of training wall time by skipping measurements.

    The clock runs from the first training step (:meth:`start`, at ``on_train_start``; one-time
    loading in ``setup``/``on_fit_start`` is not counted) until :meth:`stop`. Elapsed wall time
    includes the measurements. A scheduled measurement is taken when

        measured + expected <= fraction × elapsed        (seconds)

    where ``measured`` is the time spent measuring so far and ``expected`` the last measurement's
    time (0 before the first, so the first scheduled measurement is always taken); else it is
    skipped. Since elapsed then grows by the measurement too, the share stays within ``fraction``
    as long as a measurement costs what the last one did.

    Args:
        fraction: the budget, a fraction of training wall time in (0, 1) (0.05 = 5 %).
        clock: seconds from a monotonic clock (default :func:`time.perf_counter`).

    Example:
        >>> t = [0.0]
        >>> b = OverheadBudget(0.1, clock=lambda: t[0])
        >>> b.start(); b.allows(), b.spent(1.0)      # first: taken (cost unknown)
        (True, None)
        >>> t[0] = 5.0; b.allows()                   # 1 + 1 > 0.1 × 5: skipped
        False
        >>> t[0] = 20.0; b.allows()                  # 1 + 1 <= 0.1 × 20: taken
        True
    """

    def __init__(self, fraction: float, *, clock: Callable[[], float] | None = None) -> None:
        self.fraction = overhead_arg(fraction)
        if self.fraction is None:
            raise TypeError("OverheadBudget needs a fraction in (0, 1), got None")
        #: Seconds from a monotonic clock; also times the measurements.
        self.clock: Callable[[], float] = clock if clock is not None else time.perf_counter
        self.scheduled = 0  # scheduled measurements seen
        self.skipped = 0  # of which skipped to stay within the budget
        self.measured_s = 0.0  # seconds spent measuring
        self.last_cost_s: float | None = None  # the last measurement's seconds
        self._elapsed_before = 0.0  # seconds of training before this start (resume, 2nd fit)
        self._origin: float | None = None

    def start(self) -> None:
        """Start (or continue) the training clock; no-op when it runs already."""
        if self._origin is None:
            self._origin = self.clock() - self._elapsed_before

    def stop(self) -> None:
        """Stop the training clock (end of training); :meth:`start` continues it."""
        self._elapsed_before = self.elapsed()
        self._origin = None

    def elapsed(self) -> float:
        """Seconds of training wall time counted so far (measurements included)."""
        if self._origin is None:
            return self._elapsed_before
        return self.clock() - self._origin

    def wants(self) -> bool:
        """Whether the next scheduled measurement fits the budget (counts nothing)."""
        expected = self.last_cost_s or 0.0
        return self.measured_s + expected <= self.fraction * self.elapsed()

    def count(self, taken: bool) -> None:
        """Count one scheduled measurement, taken or skipped (as rank zero decided)."""
        self.scheduled += 1
        self.skipped += not taken

    def allows(self) -> bool:
        """:meth:`wants`, counted: True to take the scheduled measurement, False to skip it."""
        taken = self.wants()
        self.count(taken)
        return taken

    def spent(self, seconds: float) -> None:
        """Add one measurement's ``seconds`` (its time on rank zero, figures included)."""
        self.measured_s += seconds
        self.last_cost_s = seconds

    def share(self) -> float:
        """Measurement time ÷ training wall time so far (0 before any time has passed)."""
        elapsed = self.elapsed()
        return self.measured_s / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        """The log line: skipped N of M scheduled measurements to stay within the budget (and,
        when the share ended above it, why the rule can overshoot)."""
        over = (
            "; above the budget: the first scheduled measurement is always taken, and each is "
            "expected to cost what the last one did"
            if self.share() > self.fraction
            else ""
        )
        return (
            f"skipped {self.skipped} of {self.scheduled} scheduled measurements to stay within "
            f"{100 * self.fraction:g} % of training wall time (measuring took "
            f"{self.measured_s:.2f} s of {self.elapsed():.2f} s, {100 * self.share():.1f} %{over})"
        )

    def state_dict(self) -> dict:
        return {
            "scheduled": self.scheduled,
            "skipped": self.skipped,
            "measured_s": self.measured_s,
            "last_cost_s": self.last_cost_s,
            "elapsed_s": self.elapsed(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.scheduled = int(state.get("scheduled", 0))
        self.skipped = int(state.get("skipped", 0))
        self.measured_s = float(state.get("measured_s", 0.0))
        cost = state.get("last_cost_s")
        self.last_cost_s = None if cost is None else float(cost)
        self._elapsed_before = float(state.get("elapsed_s", 0.0))
        self._origin = None

"""When to measure: log-spaced steps (dense early), every N steps, or an explicit list."""

from __future__ import annotations

import math
from collections.abc import Sequence

from phasewatch.callbacks._args import bool_arg, int_arg, steps_arg


class MeasureSchedule:
    """Decide whether optimizer step ``step`` is a measurement step.

    Transitions happen early in training, so the default is log-spaced: step 0 and the steps
    ``ceil(10 ** (k / per_decade))`` for k = 0, 1, ... until consecutive grid steps are
    ``every_n_steps`` apart, then the multiples of ``every_n_steps`` from at least half an interval
    after the grid's last step.

    Args:
        every_n_steps: the regular interval once the log grid has thinned out, or the only one when
            ``log_spaced=False``. Default 100.
        log_spaced: use the dense-early log grid (default True).
        per_decade: log-grid points per factor of ten in steps (default 10).
        steps: an explicit list of steps; when given, only these are measured.

    Raises:
        TypeError: an argument of the wrong type (``every_n_steps='100'`` or ``2.5``).
        ValueError: a number out of range (``every_n_steps=0``, a negative step).

    Example:
        >>> s = MeasureSchedule(every_n_steps=50, per_decade=4)
        >>> [t for t in range(200) if s.due(t)]
        [0, 1, 2, 4, 6, 10, 18, 32, 57, 100, 150]
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        *,
        log_spaced: bool = True,
        per_decade: int = 10,
        steps: Sequence[int] | None = None,
    ) -> None:
        self.every_n_steps = int_arg("every_n_steps", every_n_steps, 1, "optimizer steps")
        self.log_spaced = bool_arg("log_spaced", log_spaced)
        self.per_decade = int_arg("per_decade", per_decade, 1, "grid points per factor 10")
        self.steps = steps_arg("steps", steps)
        self._grid = self._log_grid() if self.log_spaced else set()
        self._grid_end = max(self._grid, default=0)

    def _log_grid(self) -> set[int]:
        grid, k, previous = {0}, 0, 0
        while True:
            step = math.ceil(10 ** (k / self.per_decade))
            k += 1
            if step == previous:
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
            f"per_decade={self.per_decade})"
        )

"""The detector matrix (issue 8): the same rise gives one event inside it at any cadence.

Logistic rises in steps (widths 10-300, so a width-10 rise is a step for a 250-step cadence) of
0.1 or 0.875 with noise SD up to a tenth of the rise, centred where 10-90 % spans less than a factor
1.5 in tokens and after at least 6 evaluations, measured every 10 ... 500 steps or on the default
log-spaced schedule (``MeasureSchedule()``), 3,200 tokens per step; 20 seeds per cell. The table
in docs/transition.md is ``benchmarks/detector_matrix.py``'s output of the same cells.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from phasewatch.callbacks.schedule import MeasureSchedule
from phasewatch.detect.simulate import Rise, abrupt_centre, false_alarms, measured_steps, run_cell

CADENCES = {"10": 10, "25": 25, "50": 50, "100": 100, "250": 250, "500": 500}
CADENCES["default"] = MeasureSchedule()
WIDTHS = (10, 30, 100, 300)
# (total rise, noise SD): the smallest rise at its largest noise, the demo's rise quiet and noisy.
SETTINGS = ((0.1, 0.01), (0.875, 0.003), (0.875, 0.0875))


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"rise{s[0]}-sd{s[1]}")
@pytest.mark.parametrize("cadence", CADENCES, ids=lambda c: f"every{c}")
@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"width{w}")
def test_every_abrupt_rise_is_found_once_inside_it(width, cadence, setting):
    height, noise = setting
    result = run_cell(CADENCES[cadence], width, height, noise)
    assert result.right >= 19, result
    assert result.extra == 0, result  # never two events for one rise


@pytest.mark.parametrize("noise", (0.003, 0.01, 0.0875))
@pytest.mark.parametrize("cadence", CADENCES, ids=lambda c: f"every{c}")
def test_noise_alone_raises_no_event(cadence, noise):
    steps = measured_steps(CADENCES[cadence], 200 * (cadence_step(cadence)))
    assert false_alarms(steps, noise) == 0


@pytest.mark.parametrize("noise", (0.003, 0.0875))
@pytest.mark.parametrize("cadence", CADENCES, ids=lambda c: f"every{c}")
def test_a_single_spike_raises_no_event(cadence, noise):
    steps = measured_steps(CADENCES[cadence], 200 * (cadence_step(cadence)))
    assert false_alarms(steps, noise, spike=0.9) == 0
    assert false_alarms(steps, noise, spike=0.9, direction="drop") == 0
    assert false_alarms(steps, noise, spike=-0.9, direction="drop") == 0


def cadence_step(cadence: str) -> int:
    return 100 if cadence == "default" else CADENCES[cadence]


@pytest.mark.parametrize("cadence", CADENCES, ids=lambda c: f"every{c}")
@pytest.mark.parametrize("width", WIDTHS)
def test_the_simulated_rises_are_what_the_matrix_promises(width, cadence):
    # Checked on the series themselves: abrupt in tokens, after 6 evaluations, window as defined.
    for phase in (0.0, 0.5, 0.99):
        probe = measured_steps(CADENCES[cadence], 15 * width + 10_000)
        rise = Rise(abrupt_centre(width, probe, 6, phase), width, 0.1)
        s10, s90 = rise.steps_10_90
        assert s90 / s10 <= 1.5  # tokens are proportional to steps
        assert sum(s < s10 for s in probe) >= 6  # 6 evaluations (step 0 counted) before 10 %
        steps = measured_steps(CADENCES[cadence], 6 * rise.centre)
        values = rise.values(steps)
        lo, hi = rise.window(steps)
        assert values[steps.index(lo)] - rise.low < 0.1 * rise.height
        assert values[steps.index(hi)] - rise.low > 0.9 * rise.height
        assert math.isclose(rise.values([rise.centre])[0], rise.low + rise.height / 2)
        assert np.all(np.diff(values) >= 0)

"""The detector's noise-adaptive threshold, ``max(min_change, noise_factor * sigma)``, decides.

The noise here is a fixed pattern ``base, base + d, base, base - d, ...``: every difference of
consecutive evaluations is ``d`` in size, so the noise SD the detector estimates is exactly
``sqrt(pi) / 2 * d`` (mean absolute difference of two normal draws = ``sigma * 2 / sqrt(pi)``),
and the median of any reference span is ``base``. A step change of a known size against that
threshold fires or not, and these tests fail if the threshold ignores the noise
(``noise_factor`` 0) or lets it swamp every change (``noise_factor`` huge).
"""

from __future__ import annotations

import math

import pytest

from phasewatch.detect import TransitionDetector, detect_transitions

BASE, D = 0.3, 0.01
SIGMA = math.sqrt(math.pi) / 2 * D  # the noise SD of the pattern, metric units
PATTERN = (0.0, D, 0.0, -D)
JUMP_AT, N_STEPS, TOKENS_PER_STEP = 41, 60, 100


def _series(change: float) -> tuple[list[int], list[float], list[int]]:
    """Steps 1..60 of patterned noise around BASE; from step 41 a level BASE + change."""
    steps = list(range(1, N_STEPS + 1))
    values = [BASE + (change if s >= JUMP_AT else PATTERN[(s - 1) % 4]) for s in steps]
    return steps, values, [s * TOKENS_PER_STEP for s in steps]


def _events(change: float, **params):
    steps, values, tokens = _series(change)
    return detect_transitions(steps, values, tokens=tokens, metric="m", **params)


def _decision_at_the_jump(change: float, **params) -> bool:
    """Whether the evaluation at step 41 opens a candidate (the threshold's decision)."""
    steps, values, tokens = _series(change)
    detector = TransitionDetector("m", **params)
    for step, value, tok in zip(steps[: JUMP_AT - 1], values, tokens, strict=False):
        assert detector.update(step, value, tokens=tok) is None
    assert not detector.pending
    detector.update(JUMP_AT, values[JUMP_AT - 1], tokens=tokens[JUMP_AT - 1])
    return detector.pending_step == JUMP_AT


@pytest.mark.parametrize("direction", ["rise", "drop"])
@pytest.mark.parametrize("noise_factor", [2.0, 4.0, 8.0])
def test_a_change_just_above_the_noise_threshold_fires_just_below_does_not(direction, noise_factor):
    sign = 1.0 if direction == "rise" else -1.0
    threshold = noise_factor * SIGMA  # min_change is far below it: the noise decides
    params = dict(direction=direction, noise_factor=noise_factor, min_change=1e-4)

    assert _decision_at_the_jump(sign * 1.03 * threshold, **params)
    assert not _decision_at_the_jump(sign * 0.97 * threshold, **params)
    (event,) = _events(sign * 1.03 * threshold, **params)
    # Candidate at step 41 (reference: tokens [1025, 2050] = steps 11-20, median BASE); held
    # until 1.2 x 4,100 tokens: confirmed at step 50.
    assert (event.step, event.confirmed_step) == (JUMP_AT, 50)
    assert event.threshold == pytest.approx(threshold, rel=1e-9)
    assert event.before == pytest.approx(BASE, abs=1e-12)
    # (Left alone, the lower level is caught later, as it should be: the flat values after
    # the step pull the noise estimate down until 0.97 x the old threshold clears the new one.)


def test_without_the_noise_term_the_small_change_would_fire_and_with_a_huge_one_nothing_does():
    # The counterfactuals that make the test above about the noise: at noise_factor=0 the
    # threshold is min_change and the change just below 4 sigma fires; at 1e9 even a change
    # just above 4 sigma does not.
    below, above = 0.97 * 4 * SIGMA, 1.03 * 4 * SIGMA
    assert [e.step for e in _events(below, noise_factor=0.0, min_change=1e-4)] == [JUMP_AT]
    assert _events(above, noise_factor=1e9, min_change=1e-4) == []


def test_min_change_wins_when_the_noise_is_smaller():
    # 4 sigma = 0.0354 < min_change 0.05: a change of 0.045 clears the noise but not min_change.
    assert _events(0.045, noise_factor=4.0, min_change=0.05) == []
    (event,) = _events(0.055, noise_factor=4.0, min_change=0.05)
    assert event.threshold == 0.05


# A short series worked by hand (steps are the axis; defaults: min_change 0.05, noise_factor 4,
# reference_span 2, min_reference 3, confirm_span 1.2, confirm 2, hysteresis 0.5):
#
#   steps 1-12: 0.50, 0.52, 0.50, 0.48 repeated; steps 13-16: 0.60.
#
# - Steps 1-12: every difference is 0.02, so sigma = sqrt(pi)/2 * 0.02 = 0.017725 and the
#   threshold is max(0.05, 4 * 0.017725) = 0.070898. No value is 0.0709 off the median: no
#   candidate (and none before step 7 anyway: the noise needs 5 differences).
# - Step 13: reference = steps in [13/4, 13/2] = 4, 5, 6 = 0.48, 0.50, 0.52, median 0.50.
#   0.60 - 0.50 = 0.10 >= 0.0709: a candidate opens at step 13.
# - Steps 14, 15: 0.60 >= 0.50 + 0.5 * 0.0709 (hysteresis): held; not yet 1.2 x 13 = 15.6 steps.
# - Step 16: >= 15.6 steps, 4 evaluations >= 2, mean change 0.10 >= 0.0709: confirmed.
# - Placement: half the largest change is 0.55; no run value is below it, so the event is at
#   the candidate, step 13, with after = 0.60.
# With a step to 0.565 instead, the change 0.065 clears min_change (0.05) but not the noise
# threshold (0.0709): no event (and later the jump's own difference only raises sigma).
_HAND_STEPS = list(range(1, 17))
_HAND_NOISE = [0.50, 0.52, 0.50, 0.48] * 3


def test_a_hand_worked_series_fires_where_worked_out_online_and_offline():
    values = _HAND_NOISE + [0.60] * 4
    online = TransitionDetector("m")
    fired = [(s, e) for s, v in zip(_HAND_STEPS, values, strict=True) if (e := online.update(s, v))]
    assert [s for s, _ in fired] == [16]  # returned by the update that confirmed it
    (event,) = online.events
    assert (event.step, event.confirmed_step) == (13, 16)
    assert event.before == pytest.approx(0.50, abs=1e-12)
    assert event.after == pytest.approx(0.60, abs=1e-12)
    assert event.threshold == pytest.approx(4 * math.sqrt(math.pi) / 2 * 0.02, rel=1e-9)
    assert detect_transitions(_HAND_STEPS, values, metric="m") == [event]


def test_a_hand_worked_change_below_the_noise_but_above_min_change_does_not_fire():
    values = _HAND_NOISE + [0.565] * 4
    assert detect_transitions(_HAND_STEPS, values) == []
    # the same change with the noise term off is confirmed at step 16, placed at step 13
    (event,) = detect_transitions(_HAND_STEPS, values, noise_factor=0.0)
    assert (event.step, event.confirmed_step, event.threshold) == (13, 16, 0.05)

import math

import numpy as np
import pytest

from phasewatch.detect import (
    PeakTracker,
    TransitionDetector,
    TransitionEvent,
    detect_transitions,
    find_peak,
)


def _step_series(n_before=12, n_after=12, low=0.01, high=0.8, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    values = np.r_[np.full(n_before, low), np.full(n_after, high)]
    return values + rng.normal(0, noise, values.size)


def test_step_change_detected_at_the_first_evaluation_past_it():
    values = _step_series()
    steps = [10 * i for i in range(values.size)]
    events = detect_transitions(steps, values, metric="heads/induction_max")
    assert len(events) == 1
    (event,) = events
    assert event.step == 120  # evaluation 12 is the first high one
    assert event.confirmed_step == 130
    assert event.before == pytest.approx(0.01, abs=0.01)
    assert event.after == pytest.approx(0.8, abs=0.02)
    assert event.direction == "rise"


@pytest.mark.parametrize("seed", range(20))
def test_noise_alone_never_alerts(seed):
    rng = np.random.default_rng(seed)
    values = 0.3 + rng.normal(0, 0.02, 200)
    assert detect_transitions(range(200), values) == []


@pytest.mark.parametrize("confirm", [2, 3])
def test_a_single_spike_never_alerts(confirm):
    values = np.full(30, 0.02)
    values[15] = 0.9
    assert detect_transitions(range(30), values, confirm=confirm) == []


def test_a_spike_does_not_enter_the_baseline():
    values = [0.02] * 10 + [0.9] + [0.02] * 5 + [0.5] * 5
    events = detect_transitions(range(len(values)), values)
    assert [e.step for e in events] == [16]
    assert events[0].before == pytest.approx(0.02)


def test_measured_induction_jump_fires_once_inside_the_jump():
    # Max induction score of the reference run in the issue (steps 100..1000, every 100).
    steps = list(range(100, 1100, 100))
    values = [0.006, 0.007, 0.008, 0.008, 0.095, 0.78, 0.91, 0.92, 0.93, 0.93]
    events = detect_transitions(steps, values, metric="heads/induction_max")
    assert len(events) == 1
    assert events[0].step in (500, 600)
    assert 500 <= events[0].step <= 700


def test_drop_with_detrend_ignores_a_steady_decay_but_sees_a_cliff():
    steady = 6.0 - 0.05 * np.arange(40)
    assert detect_transitions(range(40), steady, direction="drop", detrend=True) == []
    cliff = np.r_[steady[:20], steady[20:] - 1.5]
    events = detect_transitions(range(40), cliff, direction="drop", detrend=True)
    assert [e.step for e in events] == [20]
    assert events[0].change == pytest.approx(-1.5, abs=0.1)


def test_start_step_skips_an_initial_descent_but_not_a_later_cliff():
    initial = [9.0, 8.9, 8.7, 8.4, 7.9, 7.0, 6.0, 5.6, 5.5, 5.45, 5.42, 5.4, 5.38, 5.36]
    cliff = [4.0, 3.9, 3.85, 3.8]
    values = initial + cliff
    steps = list(range(0, 10 * len(values), 10))
    params = {"direction": "drop", "detrend": True, "min_change": 0.25, "window": 5}
    assert [e.step for e in detect_transitions(steps, values, **params)] == [50, 140]
    late = detect_transitions(steps, values, start_step=100, **params)
    assert [e.step for e in late] == [140]


def test_a_second_separate_transition_is_reported_again():
    values = [0.0] * 8 + [0.4] * 8 + [0.9] * 8
    events = detect_transitions(range(len(values)), values)
    assert [e.step for e in events] == [8, 16]


def test_nan_values_are_ignored():
    values = [0.01] * 6 + [math.nan] * 3 + [0.01] * 3
    assert detect_transitions(range(len(values)), values) == []


def test_state_dict_round_trip_mid_candidate_gives_identical_events():
    values = _step_series(seed=3)
    full = detect_transitions(range(values.size), values)
    first = TransitionDetector("m")
    for i in range(13):  # stop while the candidate at evaluation 12 is pending
        first.update(i, values[i])
    assert first.pending
    resumed = TransitionDetector("m")
    resumed.load_state_dict(first.state_dict())
    for i in range(13, values.size):
        resumed.update(i, values[i])
    assert [e.to_dict() for e in resumed.events] == [{**e.to_dict(), "metric": "m"} for e in full]


def test_online_and_offline_agree_event_for_event():
    values = np.r_[_step_series(seed=5), _step_series(low=0.8, high=0.2, seed=6)]
    online = TransitionDetector("x", direction="drop")
    fired = [e for i, v in enumerate(values) if (e := online.update(i, v)) is not None]
    assert fired == detect_transitions(range(values.size), values, metric="x", direction="drop")
    assert len(fired) == 1


def test_event_round_trips_through_dict_and_reads_well():
    event = TransitionEvent(
        500, "heads/induction_max", 0.01, 0.85, 0.1, tokens=1_600_000, heads=((1, 2),)
    )
    assert TransitionEvent.from_dict(event.to_dict()) == event
    assert "step 500" in str(event) and "1,600,000 tokens" in str(event) and "L1H2" in str(event)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "up"}, "`direction` can be rise or drop, got 'up'"),
        ({"min_change": 0}, "`min_change` must be > 0"),
        ({"window": 1}, "`window` must be >= 2"),
        ({"confirm": 0}, "`confirm` must be >= 1"),
        ({"hysteresis": 2}, r"`hysteresis` must be in \[0, 1\]"),
        ({"start_step": -1}, "`start_step` must be >= 0"),
    ],
)
def test_detector_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransitionDetector("m", **kwargs)


def test_peak_confirmed_after_patience_and_only_once():
    values = [0.01, 0.02, 0.03, 0.025, 0.02, 0.018, 0.017, 0.016]
    tracker, events = find_peak(range(len(values)), values, patience=3)
    assert [(e.kind, e.step) for e in events if e.kind == "confirmed"] == [("confirmed", 2)]
    assert tracker.best_step == 2 and tracker.best == pytest.approx(0.03)
    assert tracker.wait == 5


def test_peak_min_delta_ignores_tiny_improvements():
    values = [0.10, 0.1005, 0.1009, 0.1008]
    tracker, _ = find_peak(range(4), values, min_delta=0.001, patience=10)
    assert tracker.best_step == 0 and tracker.wait == 3


def test_peak_smoothing_resists_a_single_high_outlier():
    values = [0.1, 0.1, 0.6, 0.1, 0.1, 0.3, 0.3, 0.3]
    raw, _ = find_peak(range(8), values, patience=20)
    smooth, _ = find_peak(range(8), values, patience=20, smoothing=3)
    assert raw.best_step == 2
    # trailing means: 0.267 at steps 2-4 (the outlier), 0.3 at step 7 (a sustained level)
    assert smooth.best_step == 7
    assert smooth.best == pytest.approx(0.3)
    assert smooth.best_raw == pytest.approx(0.3)


def test_peak_min_mode_and_state_round_trip():
    values = [5.0, 4.0, 3.0, 3.5, 3.2, 2.0]
    tracker = PeakTracker("loss", mode="min", patience=2)
    for i, v in enumerate(values[:4]):
        tracker.update(i, v)
    resumed = PeakTracker("loss", mode="min", patience=2)
    resumed.load_state_dict(tracker.state_dict())
    events = [e for i, v in enumerate(values[4:], start=4) for e in resumed.update(i, v)]
    assert [e.kind for e in events] == ["confirmed", "new_best"]
    assert resumed.best_step == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "median"}, "`mode` can be max or min, got 'median'"),
        ({"patience": 0}, "`patience` must be >= 1"),
        ({"min_delta": -1}, "`min_delta` must be >= 0"),
        ({"smoothing": 0}, "`smoothing` must be >= 1"),
    ],
)
def test_peak_tracker_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PeakTracker("m", **kwargs)

import logging
import math

import numpy as np
import pytest

from phasewatch.callbacks.schedule import MeasureSchedule
from phasewatch.detect import (
    DEFAULT_WATCH,
    PAPER_WATCH,
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
    assert event.confirmed_step == 150  # the first evaluation at >= 1.2 x 120 steps
    assert event.before == pytest.approx(0.01, abs=0.01)
    assert event.after == pytest.approx(0.8, abs=0.02)
    assert event.direction == "rise" and event.rule == "abrupt"


def test_the_same_step_gives_the_same_event_in_tokens_at_any_cadence():
    # A step at 2,000 steps (6.4M tokens), measured every 10, 50 or 250 steps: the reference and
    # the confirmation are spans of tokens, so each cadence finds it at its first evaluation past
    # the step and confirms it at its first evaluation past 1.2 x that.
    for cadence in (10, 50, 250):
        steps = list(range(0, 6000, cadence))
        values = [0.01 if s < 2000 else 0.6 for s in steps]
        (event,) = detect_transitions(steps, values, tokens=[s * 3200 for s in steps])
        assert (event.step, event.tokens) == (2000, 6_400_000)
        assert event.confirmed_step == 2400 + (-2400) % cadence
        assert event.confirmed_tokens == event.confirmed_step * 3200


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


# Max induction score of a real run: tests/test_transition_integration.py's tiny GPT-2 on tiled
# random spans, AttentionMonitor(every_n_steps=50, per_decade=6), 3,200 tokens per step.
_MEASURED_STEPS = [0, 1, 2, 3, 4, 5, 7, 10, 15, 22, 32, 47, 69, 100, 147, 200, 250, 300, 350, 400]
_MEASURED_STEPS += [450, 500, 550, 600, 650, 700, 750, 800]
_MEASURED = [0.0138] * 11 + [0.0139, 0.014, 0.0152, 0.0165, 0.014, 0.0133, 0.0126, 0.0115, 0.0106]
_MEASURED += [0.013, 0.0263, 0.1233, 0.4503, 0.732, 0.8388, 0.866, 0.8809]


def test_measured_induction_jump_fires_once_inside_the_jump():
    tokens = [s * 3200 for s in _MEASURED_STEPS]
    events = detect_transitions(_MEASURED_STEPS, _MEASURED, tokens=tokens, metric="ind")
    assert len(events) == 1
    (event,) = events
    # 10 % of the rise 0.0138 -> 0.8809 is 0.10 (between 500 and 550), 90 % is 0.79 (between 650
    # and 700): inside = from 500 to 700. Candidate at 550 (0.123), confirmed at 700 (>= 660).
    assert (event.step, event.confirmed_step) == (600, 700)
    reference = [v for s, v in zip(_MEASURED_STEPS, _MEASURED, strict=True) if 550 / 4 <= s <= 275]
    assert event.before == np.median(reference)  # the candidate's reference: steps 137.5 to 275
    assert event.after == pytest.approx((0.4503 + 0.732 + 0.8388) / 3)


def test_the_paper_rule_is_the_first_evaluation_strictly_above_the_level():
    tokens = [s * 3200 for s in _MEASURED_STEPS]
    (event,) = detect_transitions(
        _MEASURED_STEPS, _MEASURED, tokens=tokens, **PAPER_WATCH["heads/induction_max"]
    )
    first = int(np.argmax(np.asarray(_MEASURED) > 0.1))  # Aoyama & Wilcox: [s > 0.1].index(True)
    assert (event.step, event.confirmed_step) == (_MEASURED_STEPS[first], _MEASURED_STEPS[first])
    assert (event.before, event.after, event.threshold) == (0.0263, 0.1233, 0.1)
    assert event.rule == "threshold" and "first evaluation above 0.1" in str(event)


@pytest.mark.parametrize("seed", range(5))
def test_the_paper_rule_equals_a_direct_implementation(seed):
    rng = np.random.default_rng(seed)
    values = np.clip(np.cumsum(rng.normal(0.004, 0.02, 60)), 0, 1)
    values[rng.integers(60)] = 0.1  # exactly the level: not above it
    steps = list(range(0, 600, 10))
    events = detect_transitions(steps, values, rule="threshold", level=0.1)
    above = values > 0.1
    expected = [steps[int(np.argmax(above))]] if above.any() else []
    assert [e.step for e in events] == expected  # once, however often it is exceeded again


def test_the_demo_transition_documented_in_docs_demo_md_is_found_inside_its_rise():
    # docs/demo.md: max induction 0.018 (step 1400) -> 0.081 (2400) -> 0.201 (2500) -> 0.405 (2600)
    # -> 0.714 (2800) -> 0.823 (3000) -> 0.894 (4500), measured on the demo's schedule
    # (every_n_steps=100, per_decade=6) at 3,200 tokens per step; the steps between those the doc
    # quotes are interpolated on log(1 + step), step 0 taken at 0.014 (an untrained model's level).
    schedule = MeasureSchedule(100, per_decade=6)
    steps = [s for s in range(4501) if schedule.due(s)]
    quoted = {0: 0.014, 1400: 0.018, 2400: 0.081, 2500: 0.201, 2600: 0.405, 2800: 0.714}
    quoted |= {3000: 0.823, 4500: 0.894}
    at = sorted(quoted)
    values = np.interp(np.log1p(steps), np.log1p(at), [quoted[s] for s in at])
    tokens = [s * 3200 for s in steps]
    events = detect_transitions(
        steps, values, tokens=tokens, **DEFAULT_WATCH["heads/induction_max"]
    )
    assert len(events) == 1
    # 10 % of 0.014 -> 0.894 is 0.102 (after 2400), 90 % is 0.806 (before 3000): inside = 2400..3000
    assert 2400 <= events[0].step <= 3000 and events[0].confirmed_step <= 3000


def _power_law_loss(steps):
    return 6.0 - 0.4 * np.log1p(np.asarray(steps) / 10.0)


def test_drop_with_detrend_ignores_a_power_law_decay_but_sees_a_cliff():
    steps = list(range(0, 4000, 20))
    steady = _power_law_loss(steps)  # linear in log-steps: the trend the reference carries
    params = {"direction": "drop", "detrend": True, "min_change": 0.25}
    assert detect_transitions(steps, steady, **params) == []
    assert detect_transitions(steps, steady, direction="drop", min_change=0.25)  # level only
    cliff = steady - 1.5 * (np.asarray(steps) >= 2000)
    events = detect_transitions(steps, cliff, **params)
    assert [e.step for e in events] == [2000]
    assert events[0].change == pytest.approx(-1.5, abs=0.1)


def test_start_step_skips_an_initial_descent_but_not_a_later_cliff():
    # A loss falling from ln(vocabulary size) = 9.0, then a cliff at step 1000.
    steps = list(range(0, 2000, 10))
    initial = 5.4 + 3.6 / (1.0 + (np.asarray(steps) / 60.0) ** 2)
    values = initial - 1.3 * (np.asarray(steps) >= 1000)
    params = {"direction": "drop", "detrend": True, "min_change": 0.25}
    early = detect_transitions(steps, values, **params)
    assert [e.step < 300 for e in early] == [True, False]  # the descent is taken for a transition
    assert early[1].step == 1000
    late = detect_transitions(steps, values, **{**params, "start_step": 300})
    assert [e.step for e in late] == [1000]
    assert DEFAULT_WATCH["loss"]["start_step"] == 300


def test_a_second_separate_transition_is_reported_again():
    # Two rises a factor 10 apart in tokens; re-arming needs a factor 4 after the first's
    # confirmation, so each is reported once.
    steps = list(range(0, 30000, 100))
    values = [0.0 if s < 1000 else 0.4 if s < 10000 else 0.9 for s in steps]
    events = detect_transitions(steps, values, tokens=[s * 3200 for s in steps])
    assert [e.step for e in events] == [1000, 10000]
    assert events[1].before == pytest.approx(0.4)


def test_a_second_rise_within_four_times_the_tokens_is_reported_when_the_detector_rearms():
    # A limitation, documented: the first event confirms at 1200, so no candidate opens before
    # 4 x 1200 = 4800; the rise at 3000 is reported there, late, with the right levels.
    steps = list(range(0, 30000, 100))
    values = [0.0 if s < 1000 else 0.4 if s < 3000 else 0.9 for s in steps]
    events = detect_transitions(steps, values)
    assert [(e.step, e.confirmed_step) for e in events] == [(1000, 1200), (4800, 5800)]
    assert (events[1].before, events[1].after) == pytest.approx((0.4, 0.9))


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


def test_state_dict_is_plain_json_and_round_trips_exactly():
    import json

    values = _step_series(seed=4)
    detector = TransitionDetector("m")
    for i, v in enumerate(values[:14]):
        detector.update(i, v, tokens=i * 100)
    state = json.loads(json.dumps(detector.state_dict()))
    copy = TransitionDetector("m")
    copy.load_state_dict(state)
    assert copy.state_dict() == detector.state_dict()
    assert state["version"] == 2


def test_a_state_saved_by_phasewatch_0_1_loads_converted(caplog):
    old_event = TransitionEvent(500, "m", 0.01, 0.8, 0.1, tokens=1_600_000, confirmed_step=600)
    old = {"baseline": [0.8, 0.81, 0.8, 0.79], "candidate": None, "events": [old_event.to_dict()]}
    detector = TransitionDetector("m")
    with caplog.at_level(logging.INFO, logger="phasewatch"):
        detector.load_state_dict(old)
    assert "state of phasewatch 0.1.0 converted: 1 event(s) kept" in caplog.text
    assert detector.events == [old_event] and detector.history == []
    # The same rise is not reported again: a new reference must lie after the old event.
    steps = range(600, 3000, 100)
    events = [detector.update(s, 0.8, tokens=s * 3200) for s in steps]
    assert events == [None] * len(steps)


def test_a_state_from_a_newer_phasewatch_fails_with_a_clear_message():
    with pytest.raises(ValueError, match="format 3 is newer than this phasewatch reads"):
        TransitionDetector("m").load_state_dict({"version": 3, "events": []})


def test_tokens_on_some_updates_only_is_an_error_naming_the_fix():
    detector = TransitionDetector("m")
    detector.update(0, 0.1, tokens=0)
    with pytest.raises(ValueError, match="pass `tokens=` on every update or on none"):
        detector.update(1, 0.1)


def test_every_event_changes_by_at_least_its_threshold():
    rng = np.random.default_rng(7)
    steps = list(range(0, 20000, 50))
    values = 0.02 + 0.5 / (1 + np.exp(-(np.asarray(steps) - 8000) / 300)) + rng.normal(0, 0.02, 400)
    (event,) = detect_transitions(steps, values)
    assert event.change >= event.threshold > 4 * 0.02 * 0.8  # the noise sets the threshold here


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
        ({"rule": "paper"}, "`rule` can be abrupt or threshold, got 'paper'"),
        ({"min_change": 0}, "`min_change` must be > 0"),
        ({"reference_span": 1.0}, r"`reference_span` must be > 1 \(a factor\), got 1.0"),
        ({"min_reference": 0}, "`min_reference` must be >= 1"),
        ({"confirm_span": 0.5}, "`confirm_span` must be >= 1"),
        ({"confirm": 0}, "`confirm` must be >= 1"),
        ({"hysteresis": 2}, r"`hysteresis` must be in \[0, 1\]"),
        ({"start_step": -1}, "`start_step` must be >= 0"),
        ({"level": math.nan}, "`level` must be a finite number"),
    ],
)
def test_detector_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransitionDetector("m", **kwargs)


def test_window_is_a_deprecated_alias_of_min_reference():
    with pytest.warns(DeprecationWarning, match="`window` is deprecated.*sets `min_reference`"):
        detector = TransitionDetector("m", window=5)
    assert detector.min_reference == 5


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


def test_the_detectors_docstring_example_holds():
    import doctest

    import phasewatch.detect.transition

    assert doctest.testmod(phasewatch.detect.transition).failed == 0


def test_a_candidate_that_holds_without_enough_change_expires_into_the_reference():
    # One noisy-looking high value opens a candidate; the level then settles 0.03 up: above the
    # hysteresis level (0.025) but the mean change stays below the threshold (0.05). After a
    # factor 2 in tokens the candidate expires and its values become reference.
    steps = list(range(0, 6000, 100))
    values = [0.01] * 20 + [0.07] + [0.04] * 39
    detector = TransitionDetector("m")
    for s, v in zip(steps, values, strict=True):
        assert detector.update(s, v) is None
        if s == 2000:
            assert detector.pending_step == 2000
        if s == 3900:
            assert detector.pending  # 3,900 < 2 x 2,000
    assert not detector.pending and detector.events == []
    assert [p[0] for p in detector.history][-1] == 5900
    assert 2000 in [p[0] for p in detector.history]  # the candidate's values joined the reference

"""The peak is tested, not eyeballed: paired ΔLL comparisons and the PeakTracker's conditions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from phasewatch.detect import PeakTracker
from phasewatch.measures.paired import BestSoFar, paired_difference


def _words(n: int, seed: int = 0) -> pd.Series:
    """Per-word ΔLL_i with a large word-to-word spread (SD 0.5 nats), as real ΔLL has."""
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0.0, 0.5, n), index=np.arange(n) * 3)


def test_paired_difference_equals_a_direct_computation():
    a, b = _words(1000, 1), _words(1000, 2)
    b = b.drop(b.index[:10])  # words that only one evaluation used are left out
    got = paired_difference(a, b)
    shared = a.index.intersection(b.index)
    d = a[shared].to_numpy() - b[shared].to_numpy()
    assert got.n == 990
    assert got.mean == pytest.approx(d.mean(), abs=1e-15)
    assert got.se == pytest.approx(d.std(ddof=1) / math.sqrt(990), rel=1e-12)
    assert got.z == pytest.approx(got.mean / got.se)


def test_paired_difference_needs_shared_words():
    a = _words(5)
    with pytest.raises(ValueError, match="share their index"):
        paired_difference(a, pd.Series([0.1], index=[999]))


def test_paired_test_sees_a_decline_that_one_unpaired_se_hides():
    """Word effects shared by both evaluations cancel in the paired difference."""
    best = 0.030 + _words(10_000, 3)
    rng = np.random.default_rng(4)
    now = best - 0.004 + rng.normal(0.0, 0.02, len(best))
    unpaired_se = best.std() / math.sqrt(len(best))
    assert best.mean() - now.mean() < unpaired_se  # the old 1-SE rule: no decline
    decline = paired_difference(best, now)
    assert decline.mean == pytest.approx(0.004, abs=0.0005)
    assert decline.z > 10


def test_paired_test_rarely_calls_noise_a_decline():
    false = 0
    for seed in range(200):
        best = _words(2000, seed)
        noise = np.random.default_rng(1000 + seed).normal(0.0, 0.02, len(best))
        false += paired_difference(best, best + noise).z >= 2.0
    assert false <= 12  # one-sided p(z >= 2) = 0.023: about 5 of 200 expected


def test_best_so_far_tracks_first_and_best_word_by_word():
    base = _words(500, 5)
    values = [base, base + 0.01, base + 0.03, base + 0.02]
    tracker = BestSoFar()
    out = [tracker.update(step, v) for step, v in zip([0, 10, 20, 30], values, strict=True)]
    assert [c.is_new_best for c in out] == [True, True, True, False]
    assert [c.best_step for c in out] == [0, 10, 20, 20]
    assert out[2].decline.mean == 0 and out[2].decline.se == 0  # a new best: 0 ± 0
    assert out[3].decline.mean == pytest.approx(0.01)
    assert out[3].rise.mean == pytest.approx(0.03)
    restored = BestSoFar()
    restored.load_state_dict(tracker.state_dict())
    again = restored.update(40, base + 0.025)
    assert again.decline.mean == pytest.approx(0.005) and again.rise.mean == pytest.approx(0.03)


# --- PeakTracker ---------------------------------------------------------------------------------


def _feed(tracker, rows):
    events = []
    for row in rows:
        step, value, *paired = row
        kwargs = dict(zip(("decline", "decline_se", "rise", "rise_se"), paired, strict=False))
        events += tracker.update(step, value, tokens=step * 100, **kwargs)
    return events


def test_a_peak_is_confirmed_only_when_the_paired_decline_is_significant():
    tracker = PeakTracker("ppp/delta_ll", patience=2, min_z=2.0)
    rows = [
        (0, 0.010, 0.0, 0.0, 0.0, 0.0),
        (10, 0.030, 0.0, 0.0, 0.020, 0.002),  # new best after a rise (z = 10)
        (20, 0.029, 0.001, 0.001, 0.020, 0.002),  # z = 1
        (30, 0.028, 0.002, 0.0015, 0.020, 0.002),  # patience reached, z = 1.33
        (40, 0.027, 0.003, 0.001, 0.020, 0.002),  # z = 3: confirmed here
        (50, 0.026, 0.004, 0.001, 0.020, 0.002),
    ]
    events = _feed(tracker, rows)
    confirmed = [e for e in events if e.kind == "confirmed"]
    assert len(confirmed) == 1
    assert confirmed[0].step == 10 and confirmed[0].decline == 0.003
    assert confirmed[0].confirmed_step == 40
    assert "z = 3.00 >= 2" in str(confirmed[0]) and "rise before it" in str(confirmed[0])


def test_the_untrained_model_is_not_a_peak():
    """Highest at step 0 (random init), then lower: no rise before the best, so no peak."""
    tracker = PeakTracker("ppp/delta_ll", patience=2)
    rows = [(0, 0.02, 0.0, 0.0, 0.0, 0.0)]
    rows += [(s, 0.01, 0.01, 0.001, 0.0, 0.0) for s in range(10, 200, 10)]
    assert not [e for e in _feed(tracker, rows) if e.kind == "confirmed"]
    assert "rise before the best" in tracker.waiting_for


def test_a_rise_must_be_significant_too():
    tracker = PeakTracker("ppp/delta_ll", patience=1)
    rows = [(0, 0.020, 0.0, 0.0, 0.0, 0.0), (10, 0.021, 0.0, 0.0, 0.001, 0.002)]
    rows += [(20, 0.010, 0.011, 0.001, 0.001, 0.002)]
    assert not [e for e in _feed(tracker, rows) if e.kind == "confirmed"]


def test_no_peak_before_min_steps_or_min_tokens():
    rows = [(0, 0.0, 0.0, 0.0, 0.0, 0.0), (10, 0.03, 0.0, 0.0, 0.03, 0.001)]
    rows += [(s, 0.01, 0.02, 0.001, 0.03, 0.001) for s in range(20, 100, 10)]
    by_steps = _feed(PeakTracker("m", patience=1, min_steps=50), rows)
    assert [e.kind for e in by_steps if e.kind == "confirmed"] == ["confirmed"]
    tracker = PeakTracker("m", patience=1, min_tokens=7_000)  # tokens = 100 × step here
    events = _feed(tracker, rows)
    assert next(e for e in events if e.kind == "confirmed").evaluations_since == 6  # at step 70
    tracker = PeakTracker("m", patience=1, min_steps=1_000)
    _feed(tracker, rows)
    assert "more training" in tracker.waiting_for


def test_without_per_word_values_patience_decides_and_the_event_says_so():
    tracker = PeakTracker("user/metric", patience=2)
    events = _feed(tracker, [(0, 0.1), (10, 0.5), (20, 0.4), (30, 0.3)])
    (confirmed,) = [e for e in events if e.kind == "confirmed"]
    assert confirmed.step == 10 and "no paired test" in str(confirmed)


def test_tracker_state_round_trips_and_reads_the_old_format():
    tracker = PeakTracker("m", patience=3)
    _feed(tracker, [(0, 0.1), (10, 0.5), (20, 0.4)])
    again = PeakTracker("m", patience=3)
    again.load_state_dict(tracker.state_dict())
    assert again.state_dict() == tracker.state_dict()
    old = {k: v for k, v in tracker.state_dict().items() if k not in ("first", "first_step")}
    old.pop("format_version")
    legacy = PeakTracker("m", patience=3)
    legacy.load_state_dict(old)  # phasewatch 0.1 kept no first value
    assert legacy.best_step == 10 and legacy.first_step == 10


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_z": 0}, "`min_z` must be > 0"),
        ({"min_steps": -1}, "`min_steps` and `min_tokens` must be >= 0"),
        ({"mode": "median"}, "`mode` can be max or min, got 'median'"),
    ],
)
def test_tracker_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PeakTracker("m", **kwargs)

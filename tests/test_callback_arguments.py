"""Arguments are checked at construction, types too: the message names the argument and the fix."""

from __future__ import annotations

import pytest

from phasewatch import AttentionMonitor, PeakMonitor, PPPMonitor, TransitionMonitor
from phasewatch.callbacks.schedule import MeasureSchedule

SCHEDULED = [PPPMonitor, AttentionMonitor, TransitionMonitor]


@pytest.mark.parametrize("cls", [MeasureSchedule, *SCHEDULED], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"every_n_steps": "100"},
            TypeError,
            r"`every_n_steps` must be an int >= 1 .*'100' of type str \(unquote",
        ),
        (
            {"every_n_steps": 2.5},
            TypeError,
            r"`every_n_steps` must be a whole number >= 1 .*got 2\.5",
        ),
        (
            {"every_n_steps": True},
            TypeError,
            r"`every_n_steps` must be an int >= 1 .*True of type bool",
        ),
        ({"every_n_steps": 0}, ValueError, r"`every_n_steps` must be >= 1, got 0"),
        ({"per_decade": "10"}, TypeError, r"`per_decade` must be an int >= 1"),
        ({"per_decade": 1.5}, TypeError, r"`per_decade` must be a whole number"),
        ({"log_spaced": "false"}, TypeError, r"`log_spaced` must be True or False, got 'false'"),
    ],
)
def test_schedule_arguments_are_checked_with_their_types(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    "cls", [MeasureSchedule, PPPMonitor, AttentionMonitor], ids=lambda c: c.__name__
)
@pytest.mark.parametrize(
    ("steps", "error", "match"),
    [
        ("100", TypeError, r"`steps` must be a list of step numbers"),
        (
            [10, "20"],
            TypeError,
            r"`steps` must hold step numbers \(ints >= 0\), got '20' of type str",
        ),
        ([10, 2.5], TypeError, r"got 2\.5 of type float"),
        ([-1], ValueError, r"`steps` must be non-negative"),
    ],
)
def test_explicit_steps_are_checked(cls, steps, error, match):
    with pytest.raises(error, match=match):
        cls(steps=steps)


def test_a_whole_float_is_accepted_as_an_int():
    schedule = MeasureSchedule(every_n_steps=50.0, log_spaced=False)
    assert schedule.every_n_steps == 50 and isinstance(schedule.every_n_steps, int)
    assert [s for s in range(120) if schedule.due(s)] == [0, 50, 100]
    assert MeasureSchedule(steps=(5, 3)).steps == [3, 5]


@pytest.mark.parametrize("cls", [PPPMonitor, AttentionMonitor], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ["on_validation", "strict"])
def test_monitor_flags_must_be_bools(cls, name):
    with pytest.raises(TypeError, match=rf"`{name}` must be True or False, got 'no'"):
        cls(**{name: "no"})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"folds": "10"}, TypeError, r"`folds` must be an int >= 2"),
        ({"folds": 1}, ValueError, r"`folds` must be >= 2, got 1"),
        ({"batch_size": 0.5}, TypeError, r"`batch_size` must be a whole number >= 1"),
        ({"model_attr": 3}, TypeError, r"`model_attr` must be a string or None"),
        ({"prefix": ""}, ValueError, r"`prefix` must be None or a non-empty name"),
        ({"prefix": "a/b"}, ValueError, r"`prefix` must be .* got 'a/b'"),
        ({"prefix": 7}, ValueError, r"`prefix` must be .* got 7"),
    ],
)
def test_ppp_monitor_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        PPPMonitor(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"loss_ema": "0.9"}, TypeError, r"`loss_ema` must be a number in \[0.0, 1.0\)"),
        ({"loss_ema": 1.0}, ValueError, r"`loss_ema` must be a number in \[0.0, 1.0\)"),
        ({"loss_ema": float("nan")}, ValueError, r"`loss_ema` must be a number"),
        ({"checkpoint": "yes"}, TypeError, r"`checkpoint` must be True or False"),
        ({"stop": 1}, TypeError, r"`stop` must be True or False, got 1"),
        ({"on_transition": "print"}, TypeError, r"`on_transition` must be a callable"),
    ],
)
def test_transition_monitor_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        TransitionMonitor(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"patience": "5"}, TypeError, r"`patience` must be an int >= 1 \(evaluations\)"),
        ({"patience": 2.5}, TypeError, r"`patience` must be a whole number >= 1"),
        ({"smoothing": 0}, ValueError, r"`smoothing` must be >= 1, got 0"),
        ({"min_steps": "1000"}, TypeError, r"`min_steps` must be an int >= 0"),
        ({"min_tokens": -1}, ValueError, r"`min_tokens` must be >= 0, got -1"),
        ({"stop": "true"}, TypeError, r"`stop` must be True or False"),
        ({"monitor": None}, TypeError, r"`monitor` must be a metric key"),
    ],
)
def test_peak_monitor_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        PeakMonitor(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seq_len": "50"}, TypeError, r"`seq_len` must be an int >= 2"),
        ({"probe_batch": 1}, ValueError, r"`probe_batch` must be >= 2, got 1"),
        ({"entropy_tokens": 64.5}, TypeError, r"`entropy_tokens` must be a whole number >= 2"),
        ({"entropy_stories": -1}, ValueError, r"`entropy_stories` must be >= 0"),
        ({"heatmap_every": "4"}, TypeError, r"`heatmap_every` must be an int >= 0 \(0 = never\)"),
        ({"syntactic": "no"}, TypeError, r"`syntactic` must be True or False"),
    ],
)
def test_attention_monitor_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        AttentionMonitor(**kwargs)

import math

import pytest

from phasewatch.callbacks.schedule import MeasureSchedule


def test_log_spaced_schedule_is_dense_early_then_regular():
    due = [s for s in range(2000) if MeasureSchedule(100, per_decade=6).due(s)]
    assert due[:13] == [0, 1, 2, 3, 4, 5, 7, 10, 15, 22, 32, 47, 69]
    grid = [s for s in due if s <= 216]
    # grid points are ceil(10 ** (k / 6)), strictly increasing, gaps below the interval
    assert all(s == 0 or any(s == math.ceil(10 ** (k / 6)) for k in range(20)) for s in grid)
    assert due[due.index(216) + 1 :] == list(range(300, 2000, 100))


def test_every_n_steps_and_explicit_steps():
    assert [s for s in range(50) if MeasureSchedule(10, log_spaced=False).due(s)] == [
        0,
        10,
        20,
        30,
        40,
    ]
    explicit = MeasureSchedule(steps=[7, 3, 3])
    assert [s for s in range(10) if explicit.due(s)] == [3, 7]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_steps": 0}, "`every_n_steps` must be >= 1, got 0"),
        ({"per_decade": 0}, "`per_decade` must be >= 1, got 0"),
        ({"steps": [-1]}, "`steps` must be non-negative"),
    ],
)
def test_schedule_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MeasureSchedule(**kwargs)

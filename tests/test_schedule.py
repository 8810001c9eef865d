import math

import pytest
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor
from phasewatch.callbacks.schedule import MeasureSchedule


def test_log_spaced_schedule_is_dense_early_then_regular():
    due = [s for s in range(2000) if MeasureSchedule(100, per_decade=6).due(s)]
    # step 0, then the grid from a decade below the interval (issue 12: steps 1-9 thinned)
    assert due[:7] == [0, 10, 15, 22, 32, 47, 69]
    old = [s for s in range(2000) if MeasureSchedule(100, per_decade=6, grid_start=1).due(s)]
    assert old[:13] == [0, 1, 2, 3, 4, 5, 7, 10, 15, 22, 32, 47, 69] and old[7:] == due[1:]
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
        ({"grid_start": 0}, "`grid_start` must be >= 1, got 0"),
    ],
)
def test_schedule_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MeasureSchedule(**kwargs)


# --- in a real Trainer: the steps measured, and only those --------------------------------------

# MeasureSchedule(10, per_decade=10) worked by hand: ceil(10 ** (k / 10)) for k = 0, 1, ... is
# 1, 2, 2, 2, 3, 4, 4, 6, 7, 8, 10, 13, 16, 20, 26, 32, 40, then 51, a gap of 11 >= 10 that ends
# the grid (last point 40); then the multiples of 10 from 40 + 10 // 2 = 45 on: 50, 60.
HAND_WORKED = [0, 1, 2, 3, 4, 6, 7, 8, 10, 13, 16, 20, 26, 32, 40, 50, 60]


def _fit_with(monitor, max_steps: int, tmp_path) -> None:
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=max_steps)
    trainer.fit(TinyLM(), random_token_loader(300, n=8 * max_steps, length=16))


def _cheap_attention_monitor(**schedule):
    return AttentionMonitor(
        seq_len=4, probe_batch=2, entropy_stories=0, syntactic=False, heatmap_every=0, **schedule
    )


def test_a_trainer_measures_exactly_the_log_spaced_steps(tmp_path):
    monitor = _cheap_attention_monitor(every_n_steps=10, per_decade=10)
    _fit_with(monitor, 60, tmp_path)
    measured = [row[0] for row in monitor.history[keys.HEADS_INDUCTION_MAX]]
    assert measured == HAND_WORKED
    # both ways: every step that is not on the list was left alone (5, 9, 30: inside the grid's
    # span; 45: before the first regular multiple)
    assert {5, 9, 30, 45}.isdisjoint(measured)
    assert [s for s in range(61) if MeasureSchedule(10, per_decade=10).due(s)] == HAND_WORKED


def test_a_trainer_measures_exactly_the_explicit_steps_and_every_n(tmp_path):
    explicit = _cheap_attention_monitor(steps=[13, 0, 7, 100])  # 100 is past max_steps
    _fit_with(explicit, 20, tmp_path / "explicit")
    assert [row[0] for row in explicit.history[keys.HEADS_INDUCTION_MAX]] == [0, 7, 13]

    regular = _cheap_attention_monitor(every_n_steps=6, log_spaced=False)
    _fit_with(regular, 20, tmp_path / "regular")
    assert [row[0] for row in regular.history[keys.HEADS_INDUCTION_MAX]] == [0, 6, 12, 18]

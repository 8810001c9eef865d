"""``max_overhead=``: scheduled measurements skipped to keep measuring within a share of wall time.

The rule (:class:`phasewatch.callbacks.schedule.OverheadBudget`): measure when
``measured + last cost <= fraction × elapsed``. With a fake clock (1 s per training step, 1 s per
measurement, budget 10 %, a measurement scheduled at every step) it is worked out by hand:
step 0 is measured (no cost known yet; t = 0 → 1 s), then step k at t = 1 + k s needs
2 <= 0.1 × (1 + k), so k = 19 (t = 20 → 21 s); then 3 <= 0.1 × t at t = 30 s, k = 28; then every
9 steps: 0, 19, 28, 37, 46, 55.
"""

from __future__ import annotations

import json
import logging
import time

import lightning as L
import pytest

from phasewatch import AttentionMonitor, PPPMonitor
from phasewatch.callbacks.base import PhasewatchMonitor
from phasewatch.callbacks.schedule import MeasureSchedule, OverheadBudget
from tests.lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp

#: Steps measured in the hand-worked example of the module docstring (steps 0–60).
HAND_WORKED = [0, 19, 28, 37, 46, 55]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class CostlyMonitor(PhasewatchMonitor):
    """Measures at every step; each measurement costs ``cost`` s: on the fake clock, or slept."""

    produces = ("costly/step",)

    def __init__(self, cost: float, clock: FakeClock | None = None, **kwargs) -> None:
        super().__init__(every_n_steps=1, log_spaced=False, **kwargs)
        self.cost, self.fake = cost, clock
        self.measure_seconds = 0.0  # timed here, independently of the budget
        if clock is not None and self.budget is not None:
            self.budget.clock = clock

    def measure(self, trainer, pl_module):
        began = time.perf_counter()
        if self.fake is not None:
            self.fake.t += self.cost
        else:
            time.sleep(self.cost)
        self.measure_seconds += time.perf_counter() - began
        return {"costly/step": float(trainer.global_step)}, {}


class Tick(L.Callback):
    """Advances the fake clock by ``seconds`` per training step (before the monitor decides)."""

    def __init__(self, clock: FakeClock, seconds: float = 1.0) -> None:
        self.clock, self.seconds = clock, seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.clock.t += self.seconds


def _steps(monitor: PhasewatchMonitor) -> list[int]:
    return [int(row[0]) for row in monitor.history.get("costly/step", [])]


def _fit(tmp_path, callbacks, max_steps, ckpt_path=None):
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=max_steps)
    trainer.fit(TinyLM(), random_token_loader(300, n=64), ckpt_path=ckpt_path)
    return trainer


def test_the_rule_on_a_fake_clock_alone():
    clock = FakeClock()
    budget = OverheadBudget(0.1, clock=clock)
    budget.start()
    taken = []
    for step in range(61):
        if step:
            clock.t += 1.0  # one training step
        if budget.allows():
            taken.append(step)
            clock.t += 1.0
            budget.spent(1.0)
    assert taken == HAND_WORKED
    assert (budget.scheduled, budget.skipped) == (61, 61 - len(HAND_WORKED))
    assert budget.measured_s == 6.0 and budget.elapsed() == 66.0


def test_the_summary_says_why_a_short_run_ends_above_its_budget():
    clock = FakeClock()
    budget = OverheadBudget(0.1, clock=clock)
    budget.start()
    assert budget.allows()  # the first is always taken: 1 s of measuring in a 4 s run
    clock.t += 1.0
    budget.spent(1.0)
    clock.t += 3.0
    assert not budget.allows()
    line = budget.summary()
    assert "measuring took 1.00 s of 4.00 s, 25.0 %; above the budget: the first" in line
    clock.t += 6.0  # 1 s of 10 s: within 10 %
    assert "above the budget" not in budget.summary()


def test_a_trainer_run_skips_exactly_the_steps_the_rule_gives(tmp_path, caplog):
    clock = FakeClock()
    monitor = CostlyMonitor(1.0, clock, max_overhead=0.1)
    with caplog.at_level(logging.INFO, logger="phasewatch"):
        _fit(tmp_path, [Tick(clock), monitor], max_steps=60)
    assert _steps(monitor) == HAND_WORKED
    line = "skipped 55 of 61 scheduled measurements to stay within 10 % of training wall time"
    assert any(line in r.getMessage() for r in caplog.records)
    records = [
        json.loads(x) for x in (tmp_path / "phasewatch_history.jsonl").read_text().split("\n") if x
    ]
    (config,) = [r for r in records if r["kind"] == "config"]
    (overhead,) = [r for r in records if r["kind"] == "overhead"]
    assert config["max_overhead"] == 0.1
    assert (overhead["scheduled"], overhead["skipped"], overhead["measured_s"]) == (61, 55, 6.0)


class OtherCostlyMonitor(CostlyMonitor):
    produces = ("other/step",)

    def measure(self, trainer, pl_module):
        scalars, extras = super().measure(trainer, pl_module)
        return {"other/step": scalars["costly/step"]}, extras


#: Two monitors of 1 s each, due at every step (1 s per training step), stating 20 % and 10 %:
#: they split the smaller, 5 % each. Step 0 both (t 0 -> 2 s; the second's clock starts at 1 s,
#: after the first's measurement); then the first needs 1 + 1 <= 0.05 t at t = 40 (step 38) and
#: the second 2 <= 0.05 (t - 1) right after it at t = 41; then 3 <= 0.05 t at t = 60 (step 56), ...
TWO_HAND_WORKED = [0, 38, 56, 74, 92]


def test_monitors_with_a_budget_split_the_smallest_one(tmp_path, caplog):
    clock = FakeClock()
    first = CostlyMonitor(1.0, clock, max_overhead=0.2)
    second = OtherCostlyMonitor(1.0, clock, max_overhead=0.1)
    with caplog.at_level(logging.INFO, logger="phasewatch"):
        _fit(tmp_path, [Tick(clock), first, second], max_steps=100)
    assert _steps(first) == TWO_HAND_WORKED
    assert [int(r[0]) for r in second.history["other/step"]] == TWO_HAND_WORKED
    measured = first.budget.measured_s + second.budget.measured_s
    assert measured == 10.0 and measured <= 0.1 * clock.t
    line = "skipped 96 of 101 scheduled measurements to stay within 5 % of training wall time"
    assert sum(line in r.getMessage() for r in caplog.records) == 2


def test_a_cheap_frequent_monitor_never_starves_a_costly_sparse_one(tmp_path):
    clock = FakeClock()
    cheap = CostlyMonitor(1.0, clock, max_overhead=0.1)  # due at every step
    costly = OtherCostlyMonitor(3.0, clock, max_overhead=0.1)
    costly.schedule = MeasureSchedule(10, log_spaced=False)  # due every 10 steps
    _fit(tmp_path, [Tick(clock), cheap, costly], max_steps=300)
    costly_steps = [int(r[0]) for r in costly.history["other/step"]]
    assert len(costly_steps) >= 4 and all(step % 10 == 0 for step in costly_steps)
    assert len(_steps(cheap)) >= 3 * len(costly_steps) // 2
    for monitor, cost in ((cheap, 1.0), (costly, 3.0)):  # each within its 5 % (+ one cost)
        assert monitor.budget.measured_s <= 0.05 * monitor.budget.elapsed() + cost
    total = cheap.budget.measured_s + costly.budget.measured_s
    assert total <= 0.1 * clock.t


def test_without_a_budget_every_scheduled_step_is_measured(tmp_path):
    clock = FakeClock()
    monitor = CostlyMonitor(1.0, clock)
    _fit(tmp_path, [Tick(clock), monitor], max_steps=20)
    assert _steps(monitor) == list(range(21)) and monitor.budget is None


def test_resume_keeps_the_accounting(tmp_path):
    clock = FakeClock()
    first = CostlyMonitor(1.0, clock, max_overhead=0.1)
    trainer = _fit(tmp_path / "a", [Tick(clock), first], max_steps=30)
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    assert _steps(first) == HAND_WORKED[:3]
    clock2 = FakeClock()
    clock2.t = 1000.0  # another process's clock: only the counted seconds carry over
    second = CostlyMonitor(1.0, clock2, max_overhead=0.1)
    _fit(tmp_path / "b", [Tick(clock2), second], max_steps=60, ckpt_path=tmp_path / "mid.ckpt")
    assert _steps(second) == HAND_WORKED
    assert (second.budget.scheduled, second.budget.skipped) == (61, 55)


def test_a_slow_measurement_stays_within_the_budget_in_real_time(tmp_path):
    """Real clock: 20 ms sleeps per training step and per measurement (scheduled at every step),
    20 % budget; the monitor's own timing of its measurements stays within 20 % of the run's wall
    time, give or take one measurement."""
    monitor = CostlyMonitor(0.02, None, max_overhead=0.2)

    class Wall(L.Callback):
        def on_train_start(self, trainer, pl_module):
            self.began = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            time.sleep(0.02)  # a slower training step

        def on_train_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.began

    wall = Wall()
    _fit(tmp_path, [wall, monitor], max_steps=50)
    taken = len(_steps(monitor))
    assert 3 < taken < 30 and monitor.budget.skipped == 51 - taken
    assert monitor.measure_seconds <= 0.2 * wall.seconds + 0.02 + 0.005


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (5, ValueError, r"for 5 % pass 0.05"),
        (0, ValueError, r"in \(0, 1\)"),
        (1.0, ValueError, r"in \(0, 1\)"),
        ("0.05", TypeError, r"fraction of training wall time"),
        (True, TypeError, r"None for no budget"),
    ],
)
def test_a_wrong_budget_is_refused_naming_the_fix(value, error, match):
    with pytest.raises(error, match=match):
        CostlyMonitor(1.0, max_overhead=value)


def test_the_monitors_pass_the_budget_through():
    assert PPPMonitor(max_overhead=0.05).budget.fraction == 0.05
    assert AttentionMonitor(max_overhead=0.05).budget.fraction == 0.05
    assert PPPMonitor().budget is None


class RankClockMonitor(CostlyMonitor):
    """On rank 1 a clock that runs 1000 s per reading: alone it would measure at every step."""

    def on_train_start(self, trainer, pl_module):
        if trainer.global_rank == 1:
            fast = FakeClock()

            def runaway() -> float:
                fast.t += 1000.0
                return fast.t

            self.budget.clock = runaway
        super().on_train_start(trainer, pl_module)


class DumpBudget(L.Callback):
    def __init__(self, folder) -> None:
        self.folder = folder

    def on_train_end(self, trainer, pl_module) -> None:
        monitor = next(c for c in trainer.callbacks if isinstance(c, CostlyMonitor))
        record = {
            "steps": _steps(monitor),
            "counts": [monitor.budget.scheduled, monitor.budget.skipped],
        }
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


@pytest.mark.slow
def test_ddp_ranks_skip_and_measure_together(tmp_path):
    clock = FakeClock()
    callbacks = [Tick(clock), RankClockMonitor(1.0, clock, max_overhead=0.1), DumpBudget(tmp_path)]
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=60, devices=2, strategy=spawn_ddp())
    trainer.fit(TinyLM(), random_token_loader(300, n=1000))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    assert ranks[0]["steps"] == HAND_WORKED and ranks[0]["counts"] == [61, 55]

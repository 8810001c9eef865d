"""``on_validation=True`` in a run without a validation loop: said once, or an error with strict."""

from __future__ import annotations

import logging

import pytest

from phasewatch import AttentionMonitor
from phasewatch.callbacks.base import PhasewatchMonitor
from tests.lightning_helpers import TinyLM, quiet_trainer, random_token_loader


class CountingMonitor(PhasewatchMonitor):
    """Counts its measurements (the value is the step): whether validation ever measured."""

    produces = ("counting/step",)

    def measure(self, trainer, pl_module):
        return {"counting/step": float(trainer.global_step)}, {}


def _fit(tmp_path, monitor, max_steps=6, val=False, **kwargs):
    trainer = quiet_trainer(
        tmp_path, [monitor], max_steps=max_steps, num_sanity_val_steps=0, **kwargs
    )
    loaders = {"val_dataloaders": random_token_loader(300, n=8, seed=1)} if val else {}
    trainer.fit(TinyLM(), random_token_loader(300, n=64), **loaders)
    return trainer


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "on_validation=True" in r.getMessage()]


@pytest.mark.parametrize(
    ("val", "kwargs"),
    [(False, {}), (True, {"limit_val_batches": 0})],
    ids=["no-val-dataloader", "limit_val_batches=0"],
)
def test_on_validation_without_a_validation_loop_warns_once_naming_the_fix(
    tmp_path, caplog, val, kwargs
):
    monitor = CountingMonitor(on_validation=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer = _fit(tmp_path, monitor, val=val, **kwargs)
    assert trainer.global_step == 6 and monitor.history == {}  # trained, never measured
    (message,) = _warnings(caplog)
    assert "CountingMonitor(on_validation=True) will never measure" in message
    assert "on_validation=False" in message and "limit_val_batches" in message


def test_on_validation_without_a_validation_loop_is_an_error_with_strict(tmp_path):
    monitor = AttentionMonitor(on_validation=True, strict=True)
    with pytest.raises(ValueError, match=r"AttentionMonitor\(on_validation=True\) will never"):
        _fit(tmp_path, monitor)


def test_on_validation_with_a_validation_loop_measures_and_says_nothing(tmp_path, caplog):
    monitor = CountingMonitor(on_validation=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, monitor, val=True, val_check_interval=2)
    assert [row[0] for row in monitor.history["counting/step"]] == [2, 4, 6]
    assert _warnings(caplog) == []

"""A misspelt watched key is an error with ``strict=True``, else one loud warning naming the keys
that exist: before training for phasewatch's keys, at the first validation for a user's own."""

from __future__ import annotations

import logging

import pytest
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader

from phasewatch import PeakMonitor, TransitionMonitor, keys
from phasewatch.callbacks.base import PhasewatchMonitor


class KeyMonitor(PhasewatchMonitor):
    """Produces the given keys; each measurement logs the step as their value."""

    def __init__(self, *produced: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.produces = produced

    def measure(self, trainer, pl_module):
        return {key: float(trainer.global_step) for key in self.produces}, {}


def _fit(tmp_path, callbacks, val: bool = False, max_steps: int = 4):
    trainer = quiet_trainer(
        tmp_path,
        callbacks,
        max_steps=max_steps,
        num_sanity_val_steps=0,
        val_check_interval=2,
        limit_val_batches=1 if val else 0,
    )
    loaders = {"val_dataloaders": random_token_loader(300, n=8, seed=1)} if val else {}
    trainer.fit(TinyLM(), random_token_loader(300, n=64), **loaders)
    return trainer


def _said(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_misspelt_peak_key_warns_once_naming_the_keys_that_exist(tmp_path, caplog):
    producer = KeyMonitor(keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE, steps=[0, 2])
    peak = PeakMonitor("ppp/delta_lll", min_steps=0)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer = _fit(tmp_path, [producer, peak])
    assert trainer.global_step == 4 and peak.best is None  # trained; decided nothing
    (message,) = _said(caplog, "'ppp/delta_lll'")
    assert "PeakMonitor watches 'ppp/delta_lll'" in message
    assert "Did you mean 'ppp/delta_ll'?" in message
    assert "Keys that exist: ppp/delta_ll, ppp/delta_ll_se" in message


def test_a_misspelt_transition_key_is_an_error_before_training_with_strict(tmp_path):
    producer = KeyMonitor(keys.HEADS_INDUCTION_MAX, steps=[0])
    transition = TransitionMonitor(watch={"heads/inductoin_max": {}}, strict=True)
    with pytest.raises(ValueError, match=r"watches 'heads/inductoin_max'.*'heads/induction_max'"):
        _fit(tmp_path, [producer, transition])
    assert producer.history == {}  # raised at fit start: not one measurement


def test_produced_and_own_keys_say_nothing(tmp_path, caplog):
    producer = KeyMonitor(keys.HEADS_INDUCTION_MAX, steps=[0, 2])
    transition = TransitionMonitor(strict=True)  # heads/induction_max and the loss
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [producer, transition])
    assert _said(caplog, "watches") == []
    assert len(transition.detectors[keys.HEADS_INDUCTION_MAX].state_dict()["points"]) == 2


def test_a_users_own_key_is_checked_at_the_first_validation(tmp_path, caplog):
    good = PeakMonitor("val/loss", mode="min", min_steps=0, save_peak=False, strict=True)
    bad = TransitionMonitor(watch={"val/los": {}})
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [good, bad], val=True)
    # val/loss was found and read from the first validation (step 2) on
    assert good.tracker.first_step == 2 and good.best_step in (2, 4)
    (message,) = _said(caplog, "'val/los'")
    assert "Did you mean 'val/loss'?" in message and "train/loss" in message


def test_a_users_own_key_in_a_run_without_validation_is_an_error_with_strict(tmp_path):
    with pytest.raises(ValueError, match=r"PeakMonitor watches 'val/loss'"):
        _fit(tmp_path, [PeakMonitor("val/loss", strict=True)])

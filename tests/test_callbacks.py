"""Callbacks in a real Trainer: alerts, checkpoints, stops, Lightning built-ins, strict mode."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning_helpers import TinyLM, random_token_loader, token_loader

from phasewatch.callbacks import (
    AttentionMonitor,
    PeakMonitor,
    PhasewatchMonitor,
    PPPMonitor,
    TransitionMonitor,
)
from phasewatch.callbacks.transition import PhaseTransitionWarning


class PlantedMonitor(PhasewatchMonitor):
    """Measures a planted series ``fn(step)``: a stand-in with a known answer."""

    produces = ("planted/score",)

    def __init__(self, fn, **kwargs):
        kwargs.setdefault("every_n_steps", 2)
        kwargs.setdefault("log_spaced", False)
        super().__init__(**kwargs)
        self.fn = fn

    def measure(self, trainer, pl_module):
        return {"planted/score": float(self.fn(trainer.global_step))}, {}


def _trainer(tmp_path, callbacks, max_steps=30, logger=None, **kwargs):
    return L.Trainer(
        max_steps=max_steps,
        callbacks=callbacks,
        logger=logger if logger is not None else False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        **kwargs,
    )


def _step(step):
    return 0.01 if step < 20 else 0.8


def test_alert_fires_once_on_sustained_jump_with_hook_checkpoint_and_stop(tmp_path):
    seen = []
    monitor = TransitionMonitor(
        watch={"planted/score": {}},
        checkpoint=True,
        stop=True,
        on_transition=lambda trainer, module, event: seen.append((trainer.global_step, event)),
    )
    trainer = _trainer(tmp_path, [PlantedMonitor(_step), monitor], max_steps=60)
    with pytest.warns(PhaseTransitionWarning, match="planted/score at step 20"):
        trainer.fit(TinyLM(), random_token_loader(300, n=800))
    assert len(monitor.events) == 1
    event = monitor.events[0]
    # confirmed at the first measurement at >= 1.2 x the candidate's tokens (step 24)
    assert (event.step, event.confirmed_step) == (20, 24)
    assert event.before == pytest.approx(0.01) and event.after == pytest.approx(0.8)
    assert (event.tokens, event.confirmed_tokens) == (20 * 8 * 32, 24 * 8 * 32)
    assert [(step, e) for step, e in seen] == [(24, event)]
    assert trainer.global_step == 24  # stopped as soon as the transition was confirmed
    assert Path(monitor.checkpoints[0]).name == "transition-planted_score-step24.ckpt"
    assert Path(monitor.checkpoints[0]).exists()


def test_a_single_spike_in_training_raises_no_alert(tmp_path):
    monitor = TransitionMonitor(watch={"planted/score": {}})
    spike = PlantedMonitor(lambda s: 0.9 if s == 20 else 0.01)
    _trainer(tmp_path, [spike, monitor], max_steps=40).fit(TinyLM(), random_token_loader(300))
    assert monitor.events == []


def test_peak_monitor_saves_the_peak_stops_after_patience_and_restores_it(tmp_path):
    def ppp(step):  # rises to a peak at step 10, then declines
        return 0.05 - 0.0001 * (step - 10) ** 2

    peak = PeakMonitor("planted/score", patience=3, stop=True, restore_peak=True, min_steps=0)
    module = TinyLM()
    trainer = _trainer(tmp_path, [PlantedMonitor(ppp), peak], max_steps=100)
    trainer.fit(module, random_token_loader(300, n=800))
    assert peak.best_step == 10 and peak.best == pytest.approx(0.05)
    assert trainer.global_step == 16  # evaluations at 12, 14, 16 without improvement
    saved = torch.load(peak.peak_path, weights_only=False)
    assert saved["global_step"] == 10
    for name, value in saved["state_dict"].items():  # restored: the module holds the peak weights
        assert torch.equal(module.state_dict()[name], value)


def test_peak_monitor_does_not_stop_at_the_untrained_model(tmp_path):
    """Highest at step 0 (random init), then lower: no rise, no peak, no stop, and it says why."""
    peak = PeakMonitor("planted/score", patience=2, stop=True, min_steps=0, save_peak=False)
    trainer = _trainer(tmp_path, [PlantedMonitor(lambda s: 0.05 - 0.001 * s), peak], max_steps=30)
    trainer.fit(TinyLM(), random_token_loader(300, n=400))
    assert trainer.global_step == 30
    assert peak.best_step == 0 and not [e for e in peak.events if e.kind == "confirmed"]
    assert "rise before the best" in peak.waiting_for


def test_peak_monitor_waits_for_min_steps_by_default(tmp_path):
    def ppp(step):  # rises to a peak at step 10, then declines
        return 0.05 - 0.0001 * (step - 10) ** 2

    peak = PeakMonitor("planted/score", patience=3, stop=True, save_peak=False)
    trainer = _trainer(tmp_path, [PlantedMonitor(ppp), peak], max_steps=40)
    trainer.fit(TinyLM(), random_token_loader(300, n=400))
    assert trainer.global_step == 40 and peak.best_step == 10
    assert "more training (min_steps=1000" in peak.waiting_for


def test_failure_is_logged_and_training_goes_on(tmp_path, caplog):
    def broken(step):
        if step == 4:
            raise ValueError("planted failure")
        return 0.1

    monitor = PlantedMonitor(broken)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer = _trainer(tmp_path, [monitor], max_steps=10)
        trainer.fit(TinyLM(), random_token_loader(300))
    assert trainer.global_step == 10
    assert monitor.failures == 1
    assert "planted failure" in caplog.text and "Traceback" in caplog.text
    assert [row[0] for row in monitor.history["planted/score"]] == [0, 2, 6, 8, 10]


def test_strict_failure_raises(tmp_path):
    def broken(step):
        raise ValueError("planted failure")

    trainer = _trainer(tmp_path, [PlantedMonitor(broken, strict=True)], max_steps=4)
    with pytest.raises(RuntimeError, match="planted failure"):
        trainer.fit(TinyLM(), random_token_loader(300))


def test_measuring_never_changes_training(tmp_path, ns_tokenizer, ns_token_ids):
    """Same seed, dropout on: weights after training are identical with and without monitors."""

    def train(callbacks):
        torch.manual_seed(0)
        module = TinyLM(vocab_size=len(ns_tokenizer), dropout=0.1, tokenizer=ns_tokenizer)
        trainer = _trainer(tmp_path, callbacks, max_steps=6)
        trainer.fit(module, token_loader(ns_token_ids))
        return module

    monitors = [
        PPPMonitor(every_n_steps=3, log_spaced=False, strict=True),
        AttentionMonitor(every_n_steps=3, log_spaced=False, probe_batch=4, strict=True),
        TransitionMonitor(),
        PeakMonitor(save_peak=False),
    ]
    measured, bare = train(monitors), train([])
    assert monitors[0].history["ppp/delta_ll"][-1][0] == 6
    assert measured.model.training and measured.model.config._attn_implementation == "sdpa"
    for (name, a), (_, b) in zip(
        measured.state_dict().items(), bare.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_keys_reach_tensorboard_csv_and_lightning_builtins(tmp_path, ns_tokenizer, ns_token_ids):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)
    early = EarlyStopping(monitor="ppp/delta_ll", mode="max", patience=50)
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="ppp/delta_ll", mode="max")
    tb = TensorBoardLogger(tmp_path, name="tb")
    trainer = L.Trainer(
        max_steps=8,
        val_check_interval=4,
        limit_val_batches=1,
        callbacks=[
            PPPMonitor(every_n_steps=4, log_spaced=False, strict=True),
            AttentionMonitor(every_n_steps=4, log_spaced=False, probe_batch=4, strict=True),
            early,
            best,
        ],
        logger=[tb, CSVLogger(tmp_path, name="csv")],
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    loader = token_loader(ns_token_ids)
    trainer.fit(module, loader, loader)
    ppp = dict((row[0], row[2]) for row in trainer.callbacks[0].history["ppp/delta_ll"])
    assert set(ppp) == {0, 4, 8}
    assert best.best_model_score.item() == pytest.approx(max(ppp[4], ppp[8]))
    assert early.best_score.item() == pytest.approx(max(ppp[4], ppp[8]))
    events = EventAccumulator(tb.log_dir, size_guidance={"images": 0, "scalars": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    for key in (
        "ppp/delta_ll",
        "ppp/delta_ll_se",
        "ppp/surprisal_coef",
        "heads/induction_max",
        "heads/prev_token_max",
        "heads/duplicate_token_max",
        "heads/syntactic_max",
        "attn/entropy_mean",
    ):
        assert key in scalars, key
    assert [e.step for e in events.Scalars("ppp/delta_ll")] == [0, 4, 8]
    assert [e.value for e in events.Scalars("ppp/delta_ll")] == pytest.approx(
        [ppp[0], ppp[4], ppp[8]]
    )
    assert "heads/heatmaps" in events.Tags()["images"]
    # after fit, callback_metrics holds the latest measurement, not the step-0 one
    assert trainer.callback_metrics["ppp/delta_ll"].item() == pytest.approx(ppp[8])
    assert (Path(tb.log_dir) / "phasewatch_history.jsonl").exists()


def test_peak_and_transition_watch_a_users_own_validation_metric(tmp_path):
    peak = PeakMonitor("val/loss", mode="min", save_peak=False)
    watch = TransitionMonitor(watch={"val/loss": {"direction": "drop"}})
    module = TinyLM()
    trainer = _trainer(
        tmp_path,
        [peak, watch],
        max_steps=12,
        val_check_interval=3,
        limit_val_batches=2,
        num_sanity_val_steps=0,
    )
    loader = random_token_loader(300, n=200)
    trainer.fit(module, loader, loader)
    seen = [value for _, _, value in watch.detectors["val/loss"].history]
    assert len(seen) == 4  # one value per validation
    assert peak.tracker.best == pytest.approx(min(seen))
    assert peak.best_step in (3, 6, 9, 12)


def test_peak_monitor_logs_no_peak_while_every_value_is_nan(tmp_path):
    """A NaN first evaluation (NaN weights) gives no best: nothing is logged for it, no crash."""
    peak = PeakMonitor("planted/score", save_peak=False, min_steps=0)
    monitor = PlantedMonitor(lambda s: float("nan") if s < 4 else 1.0 - 0.01 * s)
    _trainer(tmp_path, [monitor, peak], max_steps=8).fit(TinyLM(), random_token_loader(300))
    assert peak.best_step == 4 and peak.best == pytest.approx(0.96)

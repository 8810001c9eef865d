"""Lightning's built-ins where they surprise: stale keys at validation, the logged step, and
model/tokenizer resolution before training (one error or one warning, never one per step)."""

from __future__ import annotations

import csv
import logging

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader

from phasewatch import PPPMonitor, keys
from phasewatch.callbacks.base import PhasewatchMonitor


def weight_sum(module: torch.nn.Module) -> float:
    """An independent fingerprint of the weights: the sum of every parameter, float64."""
    return float(sum(p.detach().double().sum() for p in module.parameters()))


class WeightSumMonitor(PhasewatchMonitor):
    """Measures the weights' fingerprint as ``ppp/delta_ll`` (a phasewatch key, cheaply)."""

    produces = (keys.PPP_DELTA_LL,)

    def measure(self, trainer, pl_module):
        return {keys.PPP_DELTA_LL: weight_sum(pl_module)}, {}


class LoggingLM(TinyLM):
    """Logs the fingerprint itself: in ``training_step`` (before the update) and in
    ``on_train_batch_end`` (after it), so its steps are Lightning's own."""

    def training_step(self, batch, batch_idx):
        self.log("probe/before_update", weight_sum(self))
        return super().training_step(batch, batch_idx)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("probe/after_update", weight_sum(self))


def _fit(tmp_path, callbacks, module=None, max_steps=6, val=False, logger=False):
    trainer = quiet_trainer(
        tmp_path,
        callbacks,
        max_steps=max_steps,
        logger=logger,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        val_check_interval=3,
        limit_val_batches=1 if val else 0,
        enable_checkpointing=any(isinstance(cb, ModelCheckpoint) for cb in callbacks),
    )
    loaders = {"val_dataloaders": random_token_loader(300, n=8, seed=1)} if val else {}
    trainer.fit(module or TinyLM(), random_token_loader(300, n=64), **loaders)
    return trainer


def _said(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize("builtin", [EarlyStopping, ModelCheckpoint])
def test_a_builtin_reading_a_stale_key_warns_once_with_the_fix(tmp_path, caplog, builtin):
    """Validation at steps 3 and 6; the grid (``every_n_steps=10, per_decade=4``: it starts at
    step 1) measures at 0, 1, 2, 4, 6: the
    validation of step 3 reads the value of step 2 (stale), that of step 6 a fresh one."""
    kwargs = {"dirpath": tmp_path} if builtin is ModelCheckpoint else {"patience": 100}
    callback = builtin(monitor=keys.PPP_DELTA_LL, mode="max", **kwargs)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [WeightSumMonitor(every_n_steps=10, per_decade=4), callback], val=True)
    (message,) = _said(caplog, f"{builtin.__name__}(monitor='ppp/delta_ll')")
    assert "validation of step 3" in message and "measured it last at step 2" in message
    assert "WeightSumMonitor(on_validation=True)" in message and "docs/callbacks.md" in message
    assert ("saves the weights" in message) == (builtin is ModelCheckpoint)


def test_a_schedule_aligned_with_validation_says_nothing_and_saves_the_measured_weights(
    tmp_path, caplog
):
    """Every 3 steps, validation every 3 steps: each validation reads the value just measured."""
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, monitor=keys.PPP_DELTA_LL, mode="max", save_top_k=-1
    )
    monitor = WeightSumMonitor(log_spaced=False, every_n_steps=3)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [monitor, checkpoint], val=True)
    assert _said(caplog, "is stale") == []
    assert len(checkpoint.best_k_models) == 2
    for path, score in checkpoint.best_k_models.items():
        saved = TinyLM()
        saved.load_state_dict(
            torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        )
        assert weight_sum(saved) == pytest.approx(float(score), abs=1e-3)


def test_measuring_at_validation_is_the_configuration_that_works(tmp_path, caplog):
    """With ``on_validation=True`` there is nothing to warn about, and the value the built-in
    reads is the one measured on the weights being validated (and saved)."""
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, monitor=keys.PPP_DELTA_LL, mode="max", save_top_k=-1
    )
    monitor = WeightSumMonitor(on_validation=True)
    module = TinyLM()
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [monitor, checkpoint], module=module, val=True)
    assert _said(caplog, "is stale") == []
    assert [row[0] for row in monitor.history[keys.PPP_DELTA_LL]] == [3, 6]
    for path, score in checkpoint.best_k_models.items():
        saved = TinyLM()
        saved.load_state_dict(
            torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        )
        assert weight_sum(saved) == pytest.approx(float(score), abs=1e-3)


def test_logged_step_is_the_step_of_the_measured_weights(tmp_path):
    """Pins phasewatch's step convention against values Lightning logs itself (CSV logger).

    phasewatch logs a measurement at ``trainer.global_step`` = k, the weights after k optimizer
    steps. Lightning logs ``training_step`` values at that same k for the same weights (the loss
    of weights k), so the curves overlay; what is logged after the update (``on_train_batch_end``,
    validation) Lightning files under k − 1: one step before phasewatch's value of those weights.
    """
    monitor = WeightSumMonitor(log_spaced=False, every_n_steps=1)
    logger = CSVLogger(tmp_path, name="csv")
    _fit(tmp_path, [monitor], module=LoggingLM(), logger=logger)
    logger.save()
    with open(f"{logger.log_dir}/metrics.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def series(name: str) -> dict[int, float]:
        return {int(r["step"]): float(r[name]) for r in rows if r.get(name)}

    ours, before, after = (
        series(keys.PPP_DELTA_LL),
        series("probe/before_update"),
        series("probe/after_update"),
    )
    assert sorted(ours) == list(range(7))  # step 0 (on_train_start) to max_steps
    # self.log keeps float32 (about 1e-5 here); one optimizer step moves the sum by far more
    moves = [abs(ours[k + 1] - ours[k]) for k in range(6)]
    assert min(moves) > 1e-2, moves
    for step in range(6):  # training_step of step k sees the weights phasewatch measured at k
        assert ours[step] == pytest.approx(before[step], abs=1e-3)
    for step in range(1, 7):  # Lightning files the post-update value of weights k under k - 1
        assert ours[step] == pytest.approx(after[step - 1], abs=1e-3)


class NoTokenizerLM(TinyLM):
    """A module without a tokenizer anywhere (PPPMonitor cannot measure)."""


def test_a_missing_tokenizer_warns_once_before_training_not_at_every_step(tmp_path, caplog):
    monitor = PPPMonitor(log_spaced=False, every_n_steps=1)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer = _fit(tmp_path, [monitor], module=NoTokenizerLM())
    assert trainer.global_step == 6 and monitor.history == {}
    messages = _said(caplog, "PPPMonitor")
    assert len(messages) == 1, messages
    assert "cannot measure in this run" in messages[0] and "tokenizer_path=" in messages[0]
    assert "off for this run" in messages[0] and monitor.off_reason is not None


def test_a_missing_tokenizer_is_an_error_before_the_first_step_with_strict(tmp_path):
    trainer = quiet_trainer(tmp_path, [PPPMonitor(strict=True)], max_steps=6)
    with pytest.raises(RuntimeError, match=r"PPPMonitor cannot measure in this run.*no tokenizer"):
        trainer.fit(NoTokenizerLM(), random_token_loader(300, n=64))
    assert trainer.global_step == 0


class LateLM(L.LightningModule):
    """Builds its model in ``configure_model`` and sets its tokenizer in ``setup`` (both after the
    callbacks' ``setup``)."""

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self._tok = tokenizer
        self.model = None

    def setup(self, stage):
        self.tokenizer = self._tok

    def configure_model(self):
        if self.model is None:
            self.model = TinyLM().model

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        return self.model(input_ids=ids, labels=ids).loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def test_a_model_built_in_configure_model_is_resolved_and_measured(
    tmp_path, caplog, ns_corpus, ns_tokenizer
):
    from phasewatch.corpora import ReadingTimeCorpus

    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    monitor = PPPMonitor(ReadingTimeCorpus("story 1", frame), folds=2, steps=[0, 2], strict=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [monitor], module=LateLM(ns_tokenizer), max_steps=2)
    assert [row[0] for row in monitor.history[keys.PPP_DELTA_LL]] == [0, 2]
    assert _said(caplog, "PPPMonitor") == []


def test_with_the_default_schedule_model_checkpoint_saves_weights_other_than_measured(tmp_path):
    """The surprise the warning is about (pinned): validation at steps 3 and 6, the log grid
    (``every_n_steps=10, per_decade=4``) measures at 0, 1, 2, 4, 6: at step 3 ModelCheckpoint
    files the weights of
    step 3 under the value measured at step 2."""
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path, monitor=keys.PPP_DELTA_LL, mode="max", save_top_k=-1
    )
    monitor = WeightSumMonitor(every_n_steps=10, per_decade=4)
    _fit(tmp_path, [monitor, checkpoint], val=True)
    measured = {row[0]: row[2] for row in monitor.history[keys.PPP_DELTA_LL]}
    assert sorted(measured) == [0, 1, 2, 4, 6]
    (path,) = [p for p in checkpoint.best_k_models if "step=3" in p]
    saved = TinyLM()
    saved.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])
    assert float(checkpoint.best_k_models[path]) == pytest.approx(measured[2], abs=1e-3)
    assert abs(weight_sum(saved) - measured[2]) > 1e-2  # other weights than those measured

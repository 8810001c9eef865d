"""Resume equality, DDP agreement and LightningCLI construction of the callbacks."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp, token_loader

from phasewatch.callbacks import (
    AttentionMonitor,
    PeakMonitor,
    PhasewatchMonitor,
    PPPMonitor,
    TransitionMonitor,
)
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.report.history import load_history


def _fit(tmp_path, callbacks, loader, module, max_epochs, ckpt_path=None, **kwargs):
    trainer = L.Trainer(
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        **kwargs,
    )
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer


def _monitors(corpus):
    return [
        PPPMonitor(corpus, every_n_steps=5, per_decade=4, folds=5, strict=True),
        AttentionMonitor(
            every_n_steps=5, per_decade=4, probe_batch=4, syntactic=False, strict=True
        ),
        TransitionMonitor(watch={"heads/prev_token_max": {"min_change": 0.01}, "loss": {}}),
        PeakMonitor(save_peak=False, patience=2),
    ]


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    frame = ns_corpus.frame[ns_corpus.frame["story"].isin([1, 2])].reset_index(drop=True)
    corpus = ReadingTimeCorpus("two stories", frame)
    loader = token_loader(ns_token_ids[: 8 * 64 * 4], batch_size=8)  # 4 steps per epoch

    def module():
        torch.manual_seed(0)
        return TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)

    straight = _monitors(corpus)
    _fit(tmp_path / "a", straight, loader, module(), max_epochs=4)

    first = _monitors(corpus)
    trainer = _fit(tmp_path / "b", first, loader, module(), max_epochs=2)
    path = tmp_path / "half.ckpt"
    trainer.save_checkpoint(path)
    resumed = _monitors(corpus)
    _fit(tmp_path / "c", resumed, loader, module(), max_epochs=4, ckpt_path=path)

    for a, b in zip(straight, resumed, strict=True):
        assert json.dumps(b.state_dict(), sort_keys=True) == json.dumps(
            a.state_dict(), sort_keys=True
        ), type(a).__name__
    assert [row[0] for row in straight[0].history["ppp/delta_ll"]] == [0, 1, 2, 4, 6, 10, 15]
    # the resumed run's history file (its own directory) holds the whole run, as the straight one's
    whole, resumed_history = load_history(tmp_path / "a"), load_history(tmp_path / "c")
    assert sorted(resumed_history.series) == sorted(whole.series)
    for key, frame in whole.series.items():
        pd.testing.assert_frame_equal(resumed_history.series[key], frame, obj=key)
    assert [(s, t) for s, t, _ in resumed_history.heads] == [(s, t) for s, t, _ in whole.heads]
    for (_, _, got), (_, _, want) in zip(resumed_history.heads, whole.heads, strict=True):
        assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)
    assert resumed_history.transitions == whole.transitions
    assert resumed_history.peaks == whole.peaks


class RankNoiseMonitor(PhasewatchMonitor):
    """A planted jump plus noise that differs per rank: agreement needs the broadcast."""

    produces = ("planted/score",)

    def measure(self, trainer, pl_module):
        rank = trainer.global_rank
        value = (0.8 if trainer.global_step >= 20 else 0.0) + 0.05 * rank * (
            trainer.global_step % 3
        )
        return {"planted/score": value}, {}


class DumpDecisions(L.Callback):
    def __init__(self, folder):
        self.folder = folder

    def on_train_end(self, trainer, pl_module):
        transition = next(c for c in trainer.callbacks if isinstance(c, TransitionMonitor))
        peak = next(c for c in trainer.callbacks if isinstance(c, PeakMonitor))
        record = {
            "step": trainer.global_step,
            "events": [e.to_dict() for e in transition.events],
            "peak": peak.tracker.state_dict(),
        }
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


@pytest.mark.slow
def test_ddp_ranks_take_identical_decisions(tmp_path):
    callbacks = [
        RankNoiseMonitor(every_n_steps=2, log_spaced=False),
        TransitionMonitor(watch={"planted/score": {}}, stop=True),
        PeakMonitor("planted/score", save_peak=False),
        DumpDecisions(tmp_path),
    ]
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=40, devices=2, strategy=spawn_ddp())
    trainer.fit(TinyLM(), random_token_loader(300, n=400))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    # the jump comes after 10 evaluations (the detector needs 6); confirmed at 1.2 x 20 steps
    assert [e["step"] for e in ranks[0]["events"]] == [20]
    assert ranks[0]["step"] == 24


def test_lightning_cli_builds_every_callback_from_yaml(tmp_path, ns_tokenizer):
    from lightning.pytorch.cli import LightningCLI

    ns_tokenizer.save_pretrained(tmp_path / "tok")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
trainer:
  max_steps: 2
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: phasewatch.PPPMonitor
      init_args:
        every_n_steps: 50
        tokenizer_path: {tmp_path / "tok"}
        spillover: 3
    - class_path: phasewatch.AttentionMonitor
      init_args:
        probe_batch: 4
        syntactic: false
    - class_path: phasewatch.TransitionMonitor
      init_args:
        watch:
          heads/induction_max: {{direction: rise, min_change: 0.2}}
        checkpoint: true
    - class_path: phasewatch.PeakMonitor
      init_args:
        patience: 7
        stop: true
model:
  vocab_size: {len(ns_tokenizer)}
"""
    )
    cli = LightningCLI(TinyLM, run=False, args=["--config", str(config)])
    by_type = {type(c).__name__: c for c in cli.trainer.callbacks}
    assert by_type["PPPMonitor"].spillover == 3
    assert by_type["PPPMonitor"].tokenizer_path == str(tmp_path / "tok")
    assert by_type["AttentionMonitor"].syntactic is False
    assert by_type["TransitionMonitor"].detectors["heads/induction_max"].min_change == 0.2
    assert by_type["TransitionMonitor"].checkpoint is True
    assert by_type["PeakMonitor"].tracker.patience == 7 and by_type["PeakMonitor"].stop

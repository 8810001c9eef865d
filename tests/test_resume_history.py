"""Resumed, stopped and killed runs: the history covers the whole run, files are never left torn."""

from __future__ import annotations

import json
import logging
import os

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp

from phasewatch import keys
from phasewatch.callbacks import PeakMonitor, PhasewatchMonitor, TransitionMonitor, _logging
from phasewatch.report.history import HISTORY_FILE, load_history
from phasewatch.report.summary import summarize_run


def planted_ppp(step: int) -> float:
    """A ΔLL curve (nats/word) with its maximum at step 10."""
    return 0.05 - 0.0001 * (step - 10) ** 2


class PlantedPPP(PhasewatchMonitor):
    """Logs the planted PPP curve as ``ppp/delta_ll`` ± a constant SE, every 2 steps."""

    produces = (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE)

    def __init__(self, **kwargs):
        super().__init__(every_n_steps=2, log_spaced=False, **kwargs)

    def measure(self, trainer, pl_module):
        value = planted_ppp(trainer.global_step)
        return {keys.PPP_DELTA_LL: value, keys.PPP_DELTA_LL_SE: 0.001}, {}


class SaveAt(L.Callback):
    """Saves a full checkpoint at one step (what a periodic ModelCheckpoint does)."""

    def __init__(self, step, path):
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def _fit(root, callbacks, max_steps, ckpt_path=None, logger=False, plugins=None, module=None):
    trainer = quiet_trainer(root, callbacks, max_steps=max_steps, logger=logger, plugins=plugins)
    trainer.fit(module or TinyLM(), random_token_loader(300, n=800), ckpt_path=ckpt_path)
    return trainer


def _measured_steps(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["step"] for r in lines if r["kind"] == "measurement"]


# -- the history of a resumed run ------------------------------------------------------------------


def test_report_of_a_resumed_run_in_a_new_logger_version_covers_the_whole_run(tmp_path):
    def callbacks():
        return [PlantedPPP(), PeakMonitor(min_steps=0, patience=3, save_peak=False)]

    trainer = _fit(tmp_path, callbacks(), 20, logger=CSVLogger(tmp_path, name="run"))
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    first = (tmp_path / "run" / "version_0" / HISTORY_FILE).read_bytes()
    _fit(tmp_path, callbacks(), 40, tmp_path / "half.ckpt", logger=CSVLogger(tmp_path, name="run"))

    history = load_history(tmp_path)  # what `phasewatch report <root>` reads: the newest file
    assert history.path == tmp_path / "run" / "version_1" / HISTORY_FILE
    assert history.path.read_bytes().startswith(first)  # the first part, byte for byte
    ppp = history.get(keys.PPP_DELTA_LL)
    assert list(ppp["step"]) == list(range(0, 41, 2))
    assert list(ppp["value"]) == pytest.approx([planted_ppp(s) for s in range(0, 41, 2)])
    highest = summarize_run(history).ppp_max  # what the report names as the best PPP
    assert (highest.step, highest.delta_ll) == (10, pytest.approx(0.05))
    confirmed = [e for e in history.peaks if e.kind == "confirmed"]
    assert [e.step for e in confirmed] == [10]


def test_resume_into_the_same_directory_keeps_one_record_per_step_and_the_dropped_tail(tmp_path):
    """Killed at step 30 after a checkpoint at step 20: the resumed history has steps 0..40 once."""
    ckpt = tmp_path / "step20.ckpt"
    _fit(tmp_path, [PlantedPPP(), SaveAt(20, ckpt)], 30)
    before = (tmp_path / HISTORY_FILE).read_text()
    _fit(tmp_path, [PlantedPPP()], 40, ckpt)

    assert _measured_steps(tmp_path / HISTORY_FILE) == list(range(0, 41, 2))
    kept = tmp_path / "phasewatch_history.before_resume_step20.jsonl"
    assert kept.read_text() == before  # steps 22..30 of the abandoned run are kept beside it


def test_the_history_travels_compressed_in_the_first_phasewatch_callbacks_state(tmp_path):
    peak = PeakMonitor(min_steps=0, save_peak=False)
    monitor = PlantedPPP()
    trainer = _fit(tmp_path, [peak, monitor], 20)
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    states = torch.load(tmp_path / "end.ckpt", weights_only=False)["callbacks"]
    carried = states[peak.state_key][_logging.HISTORY_STATE]
    assert _logging.HISTORY_STATE not in states[monitor.state_key]  # one copy, not one each
    raw = (tmp_path / HISTORY_FILE).read_bytes()
    # config, 11 evaluations, new bests at 0..10, confirmed at 20 (patience 5)
    assert carried["records"] == raw.count(b"\n") == 1 + 11 + 6 + 1
    assert len(carried["jsonl_zlib"]) < len(raw) / 3


def test_a_history_of_a_newer_format_is_not_written_and_says_so(tmp_path, caplog):
    state = {"format_version": 99, "jsonl_zlib": b"", "records": 0}
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _logging._write_restored(tmp_path / HISTORY_FILE, state, step=5)
    assert not (tmp_path / HISTORY_FILE).exists()
    assert "format 99, newer than this phasewatch reads (1)" in caplog.text


# -- peak events in the history --------------------------------------------------------------------


def test_peak_events_reach_the_run_history(tmp_path):
    peak = PeakMonitor(min_steps=0, patience=3, save_peak=False)
    _fit(tmp_path, [PlantedPPP(), peak], 20)
    records = [json.loads(line) for line in (tmp_path / HISTORY_FILE).read_text().splitlines()]
    assert sum(r["kind"] == "peak" for r in records) == len(peak.events) == 7
    history = load_history(tmp_path)
    assert history.peaks == peak.events
    assert [(e.kind, e.step) for e in history.peaks] == [
        *(("new_best", s) for s in range(0, 11, 2)),
        ("confirmed", 10),
    ]


def test_peak_records_of_an_older_history_are_read_back(tmp_path):
    """Before the fix a peak record's kind was the event's own (``new_best``): still readable."""
    record = {"kind": "new_best", "metric": keys.PPP_DELTA_LL, "step": 4, "value": 0.02}
    (tmp_path / HISTORY_FILE).write_text(json.dumps({**record, "smoothed": 0.02}) + "\n")
    [event] = load_history(tmp_path).peaks
    assert (event.kind, event.step, event.value) == ("new_best", 4, 0.02)


# -- restore_peak ----------------------------------------------------------------------------------


class DeletePeakFile(L.Callback):
    def on_train_end(self, trainer, pl_module):
        peak = next(c for c in trainer.callbacks if isinstance(c, PeakMonitor))
        os.remove(peak.peak_path)


def test_restore_peak_with_the_peak_file_gone_warns_and_keeps_the_final_weights(tmp_path, caplog):
    module = TinyLM()
    peak = PeakMonitor(min_steps=0, restore_peak=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [PlantedPPP(), DeletePeakFile(), peak], 20, module=module)
    final = {k: v.clone() for k, v in module.state_dict().items()}
    assert "restored nothing: the peak checkpoint" in caplog.text and "is gone" in caplog.text
    assert "step 10" in caplog.text
    assert all(torch.equal(final[k], v) for k, v in module.state_dict().items())


def test_restore_peak_with_the_peak_file_gone_raises_when_strict(tmp_path):
    peak = PeakMonitor(min_steps=0, restore_peak=True, strict=True)
    with pytest.raises(FileNotFoundError, match="restored nothing: the peak checkpoint"):
        _fit(tmp_path, [PlantedPPP(), DeletePeakFile(), peak], 20)


def test_restore_peak_without_any_evaluation_warns(tmp_path, caplog):
    peak = PeakMonitor("never/logged", min_steps=0, restore_peak=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [peak], 4)
    assert "no peak checkpoint was saved (no evaluation of 'never/logged'" in caplog.text


def test_restore_peak_without_save_peak_is_refused():
    with pytest.raises(ValueError, match=r"`restore_peak=True` needs .* set save_peak=True"):
        PeakMonitor(save_peak=False, restore_peak=True)


# -- a kill while a checkpoint is written ----------------------------------------------------------


class Killed(Exception):
    pass


class DiesWhileWriting(TorchCheckpointIO):
    """The ``n``-th save truncates the file it writes and dies, as a SIGKILL mid-copy does."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        self.calls += 1
        if self.calls == self.n:
            open(path, "wb").close()
            raise Killed(str(path))
        super().save_checkpoint(checkpoint, path, storage_options)


def test_a_kill_while_saving_a_new_peak_leaves_the_previous_peak_intact(tmp_path):
    peak = PeakMonitor(min_steps=0)
    with pytest.raises(Killed):  # new bests at steps 0, 2, 4: the third save dies
        _fit(tmp_path, [PlantedPPP(), peak], 20, plugins=[DiesWhileWriting(3)])
    saved = torch.load(tmp_path / "ppp_peak.ckpt", weights_only=False)
    assert saved["global_step"] == 2


def test_a_kill_while_saving_a_transition_checkpoint_leaves_no_torn_file(tmp_path):
    class Jump(PhasewatchMonitor):
        produces = ("planted/score",)

        def measure(self, trainer, pl_module):
            return {"planted/score": 0.01 if trainer.global_step < 10 else 0.8}, {}

    monitor = TransitionMonitor(watch={"planted/score": {}}, checkpoint=True)
    with pytest.raises(Killed), pytest.warns(match="phase transition"):
        _fit(
            tmp_path,
            [Jump(every_n_steps=2, log_spaced=False), monitor],
            20,
            plugins=[DiesWhileWriting(1)],
        )
    assert not list(tmp_path.glob("transition-*.ckpt"))  # no 0-byte checkpoint under its name


# -- states saved by other versions, checkpoints made without phasewatch --------------------------


def _trained_states(tmp_path):
    callbacks = [
        PlantedPPP(),
        PeakMonitor(min_steps=0, save_peak=False),
        TransitionMonitor(watch={keys.PPP_DELTA_LL: {}, "loss": {}}),
    ]
    _fit(tmp_path, callbacks, 12)
    return [(type(c), c.state_dict()) for c in callbacks]


_DEFAULTS = {
    PlantedPPP: {"tokens_seen": ("tokens_seen", 0), "history": ("history", {})},
    PeakMonitor: {"tokens": ("_tokens", 0), "events": ("events", [])},
    TransitionMonitor: {"tokens": ("_tokens", 0), "loss": ("_loss", None)},
}


def test_a_state_missing_keys_loads_with_defaults(tmp_path, caplog):
    fresh = {
        PlantedPPP: PlantedPPP,
        PeakMonitor: lambda: PeakMonitor(min_steps=0, save_peak=False),
        TransitionMonitor: lambda: TransitionMonitor(watch={keys.PPP_DELTA_LL: {}, "loss": {}}),
    }
    for kind, state in _trained_states(tmp_path):
        for key, (attribute, default) in _DEFAULTS[kind].items():
            assert state[key] != default  # the trained value differs
            callback = fresh[kind]()
            with caplog.at_level(logging.INFO, logger="phasewatch"):
                callback.load_state_dict({k: v for k, v in state.items() if k != key})
            assert getattr(callback, attribute) == default, (kind.__name__, key)
            assert f"has no {key} (saved by an older phasewatch)" in caplog.text


def test_a_checkpoint_made_without_phasewatch_says_the_token_count_restarts(tmp_path, caplog):
    trainer = _fit(tmp_path / "plain", [], 6)
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    monitor, peak = PlantedPPP(), PeakMonitor(min_steps=0, save_peak=False)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, [monitor, peak], 10, tmp_path / "plain.ckpt")
    lines = [r.getMessage() for r in caplog.records if "token counts restart" in r.getMessage()]
    assert lines == [
        "phasewatch: resumed at step 6 from a checkpoint without the state of PlantedPPP, "
        "PeakMonitor (made without phasewatch, or with other callback settings): token counts "
        "restart at 0 tokens and histories at step 6"
    ]
    assert monitor.history[keys.PPP_DELTA_LL][0][:2] == [8, 2 * 8 * 32]  # counted from 0 again


def test_a_resume_with_phasewatch_state_says_nothing_about_token_counts(tmp_path, caplog):
    trainer = _fit(tmp_path / "a", [PlantedPPP()], 6)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    monitor = PlantedPPP()
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path / "b", [monitor], 10, tmp_path / "a.ckpt")
    assert "token counts restart" not in caplog.text
    assert monitor.history[keys.PPP_DELTA_LL][-1][:2] == [10, 10 * 8 * 32]


# The run directory rule: tests/test_loggers_several.py.


# -- DDP -------------------------------------------------------------------------------------------


class JumpAt(PhasewatchMonitor):
    """A planted jump of ``planted/score`` at step 14 (a transition), every 2 steps."""

    produces = ("planted/score",)

    def __init__(self):
        super().__init__(every_n_steps=2, log_spaced=False)

    def measure(self, trainer, pl_module):
        return {"planted/score": 0.01 if trainer.global_step < 14 else 0.8}, {}


def _ddp_fit(root, max_steps, ckpt_path=None, save_at=None):
    callbacks = [
        PlantedPPP(),
        JumpAt(),
        PeakMonitor(min_steps=0, patience=3),
        TransitionMonitor(watch={"planted/score": {}}, checkpoint=True),
    ]
    if save_at is not None:
        callbacks.append(SaveAt(save_at, root / "half.ckpt"))
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=2,
        strategy=spawn_ddp(),
        callbacks=callbacks,
        logger=CSVLogger(root, name="run"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=root,
    )
    trainer.fit(TinyLM(), random_token_loader(300, n=800), ckpt_path=ckpt_path)


@pytest.mark.slow
def test_ddp_resume_keeps_the_whole_history_and_whole_checkpoints(tmp_path):
    _ddp_fit(tmp_path, 24, save_at=12)  # killed, say, at step 24; its checkpoint is step 12's
    _ddp_fit(tmp_path, 30, ckpt_path=tmp_path / "half.ckpt")
    history = load_history(tmp_path)
    assert history.path == tmp_path / "run" / "version_1" / HISTORY_FILE
    assert list(history.get(keys.PPP_DELTA_LL)["step"]) == list(range(0, 31, 2))
    assert list(history.get("planted/score")["step"]) == list(range(0, 31, 2))
    assert [e.step for e in history.peaks if e.kind == "new_best"] == [0, 2, 4, 6, 8, 10]
    [event] = history.transitions  # once, though both runs saw it
    assert (
        torch.load(tmp_path / "run" / "version_0" / "ppp_peak.ckpt", weights_only=False)[
            "global_step"
        ]
        == 10
    )
    [transition_ckpt] = (tmp_path / "run" / "version_1").glob("transition-*.ckpt")
    assert torch.load(transition_ckpt, weights_only=False)["global_step"] == event.confirmed_step
    assert not list(tmp_path.rglob(".*.tmp"))  # every temporary file was moved into place

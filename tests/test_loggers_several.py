"""Several loggers at once: each receives the alert text and the heatmaps, and the history and
checkpoints go to one documented place whatever the order of the loggers: the first TensorBoard
logger's ``log_dir`` (docs/callbacks.md, "The run directory")."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import lightning as L
import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.logger import DummyLogger
from logger_run import (
    MEASURE_AT,
    assert_heatmap,
    corpus_slice,
    csv_images,
    csv_texts,
    decode_png,
    expected_heatmaps,
    fit,
    read_tensorboard,
    tensorboard_texts,
)

from phasewatch import keys
from phasewatch.callbacks import _logging, _sinks
from phasewatch.report.history import HISTORY_FILE


def test_csv_first_then_tensorboard_both_get_everything_and_the_run_dir_is_tensorboards(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    csv, tb = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    trainer, alerts = fit(
        tmp_path, [csv, tb], corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids, checkpoint=True
    )
    run_dir = tb.log_dir
    assert _logging.run_dir(trainer) == tmp_path / "tb" / "version_0"
    assert (tmp_path / "tb" / "version_0" / HISTORY_FILE).exists()
    assert (tmp_path / "tb" / "version_0" / "ppp_peak.ckpt").exists()
    transition_ckpt = f"transition-heads_induction_max-step{MEASURE_AT[0]}.ckpt"
    assert (tmp_path / "tb" / "version_0" / transition_ckpt).exists()
    csv_dir = tmp_path / "csv" / "version_0"
    assert not list(csv_dir.glob("*.ckpt")) and not (csv_dir / HISTORY_FILE).exists()

    heatmaps = expected_heatmaps(run_dir)
    events = read_tensorboard(run_dir)
    assert tensorboard_texts(events, keys.TRANSITION_EVENTS) == alerts
    for e in events.Images(keys.HEADS_HEATMAPS):
        assert_heatmap(decode_png(e.encoded_image_string), heatmaps[e.step])
    assert len(events.Images(keys.HEADS_HEATMAPS)) == len(heatmaps) == len(MEASURE_AT)

    assert csv_texts(csv_dir, keys.TRANSITION_EVENTS) == [(MEASURE_AT[0], alerts[0])]
    written = csv_images(csv_dir, keys.HEADS_HEATMAPS)
    assert sorted(written) == sorted(heatmaps)
    for step, data in written.items():
        assert_heatmap(decode_png(data), heatmaps[step])


class DirLogger(DummyLogger):
    """A logger of some other kind that has a local directory."""

    def __init__(self, log_dir) -> None:
        super().__init__()
        self._dir = str(log_dir)

    @property
    def log_dir(self):
        return self._dir


class NoDirLogger(DummyLogger):
    """A logger without a directory (like a remote experiment tracker)."""

    @property
    def log_dir(self):
        return None


@pytest.mark.parametrize(
    ("loggers", "expected"),
    [
        (lambda root: [CSVLogger(root / "csv"), TensorBoardLogger(root / "tb")], "tb"),
        (lambda root: [TensorBoardLogger(root / "tb"), CSVLogger(root / "csv")], "tb"),
        (lambda root: [DirLogger(root / "other"), CSVLogger(root / "csv")], "csv"),
        (lambda root: [NoDirLogger(), DirLogger(root / "other")], "other"),
        (lambda root: [NoDirLogger(), TensorBoardLogger(root / "tb")], "tb"),
        (lambda root: [NoDirLogger()], "root"),
        (lambda root: False, "root"),
    ],
)
def test_run_dir_is_tensorboards_else_csvs_else_another_log_dir_else_the_root(
    tmp_path, loggers, expected
):
    trainer = L.Trainer(logger=loggers(tmp_path), default_root_dir=tmp_path / "root")
    want = {
        "tb": tmp_path / "tb" / "lightning_logs" / "version_0",
        "csv": tmp_path / "csv" / "lightning_logs" / "version_0",
        "other": tmp_path / "other",
        "root": tmp_path / "root",
    }[expected]
    assert _logging.run_dir(trainer) == want


# -- a logger that fails, and the report ----------------------------------------------------------


class RecordingSink(_sinks.Sink):
    """Stands for a W&B / MLflow adapter: records what it gets, and wants the report."""

    wants_report = True
    got: ClassVar[list] = []

    def text(self, tag, text, step):
        self.got.append(("text", tag, step))

    def image(self, tag, image, step):
        self.got.append(("image", tag, step))

    def report(self, files):
        self.got.append(("report", sorted(p.name for p in files), all(p.exists() for p in files)))


class RemoteLogger(DummyLogger):
    """A logger without a directory whose adapter is a RecordingSink."""


def _recording(monkeypatch):
    RecordingSink.got = []
    real = _sinks._sink_class
    monkeypatch.setattr(
        _sinks,
        "_sink_class",
        lambda logger: RecordingSink if isinstance(logger, RemoteLogger) else real(logger),
    )


def test_a_remote_logger_gets_text_images_and_the_report_once_at_the_end(
    tmp_path, monkeypatch, ns_corpus, ns_tokenizer, ns_token_ids
):
    _recording(monkeypatch)
    tb = TensorBoardLogger(tmp_path, name="tb")
    fit(tmp_path, [RemoteLogger(), tb], corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids)
    got = RecordingSink.got
    assert ("text", keys.TRANSITION_EVENTS, MEASURE_AT[0]) in got
    assert [g for g in got if g[:2] == ("image", keys.HEADS_HEATMAPS)] == [
        ("image", keys.HEADS_HEATMAPS, step) for step in MEASURE_AT
    ]
    assert got[-1] == ("report", ["report.html", "report.png"], True)  # last, and only once
    assert sum(g[0] == "report" for g in got) == 1
    assert (Path(tb.log_dir) / "report.png").exists()  # written into the run directory


def test_a_logger_that_raises_warns_once_and_training_goes_on(
    tmp_path, monkeypatch, caplog, ns_corpus, ns_tokenizer, ns_token_ids
):
    def broken(self, tag, image, step):
        raise OSError("disk full")

    monkeypatch.setattr(_sinks.CSVSink, "image", broken)
    csv, tb = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer, alerts = fit(
            tmp_path, [csv, tb], corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids
        )
    assert trainer.global_step == 4
    failures = [r.getMessage() for r in caplog.records if "could not take the image" in r.message]
    assert len(failures) == 1 and "CSVLogger" in failures[0] and "disk full" in failures[0]
    # the CSV logger still gets the text; TensorBoard every image
    assert csv_texts(csv.log_dir, keys.TRANSITION_EVENTS) == [(MEASURE_AT[0], alerts[0])]
    assert len(read_tensorboard(tb.log_dir).Images(keys.HEADS_HEATMAPS)) == len(MEASURE_AT)


def test_a_report_that_cannot_be_written_warns_and_training_finishes(
    tmp_path, monkeypatch, caplog, ns_corpus, ns_tokenizer, ns_token_ids
):
    import phasewatch.report.write

    _recording(monkeypatch)

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(phasewatch.report.write, "write_report", broken)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        corpus = corpus_slice(ns_corpus)
        trainer, _ = fit(tmp_path, [RemoteLogger()], corpus, ns_tokenizer, ns_token_ids)
    assert trainer.global_step == 4
    assert "the run report could not be written (RuntimeError: no fonts)" in caplog.text
    assert not [g for g in RecordingSink.got if g[0] == "report"]


def test_only_rank_zero_sends_text_and_images(tmp_path):
    """Every rank runs the monitors' hooks; only rank zero writes to the loggers."""
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    loggers = {rank: CSVLogger(tmp_path / f"rank{rank}") for rank in (0, 1)}
    for rank, csv in loggers.items():
        trainer = SimpleNamespace(is_global_zero=rank == 0, loggers=[csv])
        _logging.log_text(trainer, keys.TRANSITION_EVENTS, "an alert", 3)
        _logging.log_image(trainer, keys.HEADS_HEATMAPS, image, 3)
    assert not (tmp_path / "rank1").exists()
    assert csv_texts(loggers[0].log_dir, keys.TRANSITION_EVENTS) == [(3, "an alert")]
    assert list(csv_images(loggers[0].log_dir, keys.HEADS_HEATMAPS)) == [3]

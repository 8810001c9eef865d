"""Weights & Biases, offline (no network): the offline run's ``files/media/`` holds the transition
alert as a table and the heatmap images; the report is logged as an image and an artifact.
Scalars stay in W&B's binary log and are checked through the other loggers (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from logger_run import (
    MEASURE_AT,
    assert_heatmap,
    corpus_slice,
    decode_png,
    expected_heatmaps,
    fit,
)

from phasewatch import keys
from phasewatch.callbacks._sinks import REPORT_ARTIFACT


def test_wandb_offline_run_gets_alert_table_heatmaps_and_report(
    tmp_path, monkeypatch, ns_corpus, ns_tokenizer, ns_token_ids
):
    pytest.importorskip("wandb", reason="the [wandb] extra (`make test` installs it)")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))
    logger = WandbLogger(save_dir=tmp_path, offline=True, project="phasewatch-test")
    _, alerts = fit(tmp_path, logger, corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids)
    logger.experiment.finish()

    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    media = run / "files" / "media"

    (table,) = (media / "table" / keys.TRANSITION_EVENTS).parent.glob(
        f"{Path(keys.TRANSITION_EVENTS).name}_*.table.json"
    )
    content = json.loads(table.read_text())
    assert content["columns"] == ["step", "text"]
    assert content["data"] == [[MEASURE_AT[0], alerts[0]]]

    heatmaps = expected_heatmaps(tmp_path)  # no TensorBoard/CSV logger: the run dir is the root
    folder = media / "images" / keys.HEADS_HEATMAPS
    images = sorted(
        folder.parent.glob(f"{folder.name}_*.png"), key=lambda p: int(p.stem.split("_")[-2])
    )
    assert len(images) == len(heatmaps) == len(MEASURE_AT)
    # W&B names a file by its own step counter, not ours: match them by content, in order
    for path, step in zip(images, sorted(heatmaps), strict=True):
        assert_heatmap(decode_png(path.read_bytes()), heatmaps[step])

    (report,) = (media / "images" / "phasewatch").glob("report_*.png")
    assert decode_png(report.read_bytes()).shape[0] > 100  # the matplotlib report figure
    # the artifact: named in the run's binary log, its files staged (copied) for `wandb sync`
    html = (tmp_path / "report.html").read_bytes()
    run_id = logger.experiment.id
    binary = next(run.glob("run-*.wandb")).read_bytes()
    assert f"{REPORT_ARTIFACT}-{run_id}".encode() in binary
    staged = [p.read_bytes() for p in (tmp_path / "data" / "artifacts").rglob("*") if p.is_file()]
    assert html in staged

"""A CSV logger receives, as files in its own ``log_dir``: the scalars in ``metrics.csv``, the
alert text in ``phasewatch_events.csv`` (step, tag, text) and the heatmap images as PNG files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from lightning.pytorch.loggers import CSVLogger
from logger_run import (
    MEASURE_AT,
    assert_heatmap,
    corpus_slice,
    csv_images,
    csv_texts,
    decode_png,
    expected_heatmaps,
    fit,
    history,
)

from phasewatch import keys


def test_csv_logger_gets_scalars_alert_text_and_heatmaps(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    csv = CSVLogger(tmp_path, name="csv")
    _, alerts = fit(tmp_path, csv, corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids)

    measured = {
        r["step"]: r["values"][keys.PPP_DELTA_LL]
        for r in history(csv.log_dir)
        if r.get("kind") == "measurement" and keys.PPP_DELTA_LL in r["values"]
    }
    assert measured
    metrics = pd.read_csv(Path(csv.log_dir) / "metrics.csv")
    rows = metrics.dropna(subset=[keys.PPP_DELTA_LL])
    logged = dict(zip(rows["step"].astype(int), rows[keys.PPP_DELTA_LL], strict=True))
    assert logged == pytest.approx(measured, rel=1e-12)

    assert csv_texts(csv.log_dir, keys.TRANSITION_EVENTS) == [(MEASURE_AT[0], alerts[0])]

    heatmaps = expected_heatmaps(csv.log_dir)
    written = csv_images(csv.log_dir, keys.HEADS_HEATMAPS)
    assert sorted(written) == sorted(heatmaps)
    for step, data in written.items():
        assert_heatmap(decode_png(data), heatmaps[step])

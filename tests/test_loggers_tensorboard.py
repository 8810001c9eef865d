"""TensorBoard receives, through its own event files (read with tensorboard's EventAccumulator):
the scalars at the measured steps, the transition alert's text and the heads' heatmap images."""

from __future__ import annotations

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from logger_run import (
    assert_heatmap,
    corpus_slice,
    decode_png,
    expected_heatmaps,
    fit,
    history,
    read_tensorboard,
    tensorboard_texts,
)

from phasewatch import keys


def test_tensorboard_gets_scalars_alert_text_and_heatmaps(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    tb = TensorBoardLogger(tmp_path, name="tb")
    _, alerts = fit(tmp_path, tb, corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids)
    events = read_tensorboard(tb.log_dir)

    measured = {
        r["step"]: r["values"][keys.PPP_DELTA_LL]
        for r in history(tb.log_dir)
        if r.get("kind") == "measurement" and keys.PPP_DELTA_LL in r["values"]
    }
    assert measured, "the history has the PPP measurements"
    logged = {e.step: e.value for e in events.Scalars(keys.PPP_DELTA_LL)}
    assert logged == pytest.approx(measured, rel=1e-6)  # float32 in the event file

    assert tensorboard_texts(events, keys.TRANSITION_EVENTS) == alerts

    heatmaps = expected_heatmaps(tb.log_dir)
    images = events.Images(keys.HEADS_HEATMAPS)
    assert sorted(e.step for e in images) == sorted(heatmaps)
    for e in images:
        assert_heatmap(decode_png(e.encoded_image_string), heatmaps[e.step])

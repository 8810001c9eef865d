"""MLflow with a SQLite tracking store (MLflow 3 refuses the old file store), read back with
``MlflowClient``: the scalars at the measured steps, the alert as a text artifact, the heatmaps as
logged images and the run report's files as artifacts."""

from __future__ import annotations

import re

import pytest
from logger_run import (
    MEASURE_AT,
    assert_heatmap,
    corpus_slice,
    decode_png,
    expected_heatmaps,
    fit,
    history,
)

from phasewatch import keys
from phasewatch.callbacks._sinks import REPORT_ARTIFACT


@pytest.mark.slow  # ~10 s: the SQLite store is created and migrated, mlflow imported
def test_mlflow_sqlite_run_gets_scalars_alert_text_heatmaps_and_report(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    pytest.importorskip("mlflow", reason="the [mlflow] extra (`make test` installs it)")
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MLFlowLogger(
        experiment_name="phasewatch-test", tracking_uri=uri, artifact_location=str(tmp_path / "a")
    )
    _, alerts = fit(tmp_path, logger, corpus_slice(ns_corpus), ns_tokenizer, ns_token_ids)
    client, run_id = MlflowClient(tracking_uri=uri), logger.run_id
    assert client.get_run(run_id).info.status == "FINISHED"

    measured = {
        r["step"]: r["values"][keys.PPP_DELTA_LL]
        for r in history(tmp_path)  # no TensorBoard/CSV logger: the run dir is the root
        if r.get("kind") == "measurement" and keys.PPP_DELTA_LL in r["values"]
    }
    logged = {m.step: m.value for m in client.get_metric_history(run_id, keys.PPP_DELTA_LL)}
    assert measured and logged == pytest.approx(measured, rel=1e-12)

    text = f"{keys.TRANSITION_EVENTS}/step{MEASURE_AT[0]}.txt"
    with open(client.download_artifacts(run_id, text, str(tmp_path)), encoding="utf-8") as f:
        assert f.read() == alerts[0]

    heatmaps = expected_heatmaps(tmp_path)
    # MLflow names a logged image "<key, / as ~>+step+<k>+timestamp+…" (MLflow 3; "%" in 2.x)
    named = re.compile(re.escape(keys.HEADS_HEATMAPS.replace("/", "~")) + r"[+%]step[+%](\d+)[+%]")
    found = {}
    for info in client.list_artifacts(run_id, "images"):
        name = info.path.rsplit("/", 1)[-1]
        match = named.match(name)
        if match and name.endswith(".png") and "compressed" not in name:
            found[int(match[1])] = client.download_artifacts(run_id, info.path, str(tmp_path))
    assert sorted(found) == sorted(heatmaps)
    for step, path in found.items():
        with open(path, "rb") as f:
            assert_heatmap(decode_png(f.read()), heatmaps[step])

    report = {info.path for info in client.list_artifacts(run_id, REPORT_ARTIFACT)}
    assert report == {f"{REPORT_ARTIFACT}/report.png", f"{REPORT_ARTIFACT}/report.html"}

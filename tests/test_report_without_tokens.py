"""A history whose measurements did not record tokens (a checkpoint series analysed offline) is
reported against steps, and never prints steps as tokens."""

from __future__ import annotations

import json

from phasewatch import keys
from phasewatch.report import load_history, report_figure, summarize_run


def _write_history(path, tokens_of):
    records = [{"kind": "config", "monitor": "PPPMonitor", "corpus": "naturalstories"}]
    for step, value in [(100, 0.010), (200, 0.030), (300, 0.020)]:
        values = {keys.PPP_DELTA_LL: value, keys.PPP_DELTA_LL_SE: 0.002}
        records.append(
            {"kind": "measurement", "step": step, "tokens": tokens_of(step), "values": values}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_unknown_tokens_are_reported_against_steps(tmp_path):
    _write_history(tmp_path / "phasewatch_history.jsonl", lambda step: None)
    history = load_history(tmp_path)
    assert history.axis == "step"
    summary = summarize_run(history)
    assert summary.ppp_max.step == 200 and summary.ppp_max.tokens is None
    assert "at step 200 nats" not in str(summary.ppp_max)
    assert str(summary.ppp_max).endswith("at step 200")
    assert "tokens)" not in str(summary)
    figure = report_figure(history)
    assert figure.axes[2].get_xlabel() == "step (tokens not recorded)"
    assert list(figure.axes[0].lines[0].get_xdata()) == [100, 200, 300]


def test_known_tokens_stay_the_axis(tmp_path):
    _write_history(tmp_path / "phasewatch_history.jsonl", lambda step: step * 512)
    history = load_history(tmp_path)
    assert history.axis == "tokens"
    assert "(102,400 tokens)" in str(summarize_run(history).ppp_max)
    figure = report_figure(history)
    assert figure.axes[2].get_xlabel() == "tokens seen"
    assert list(figure.axes[0].lines[0].get_xdata()) == [51200, 102400, 153600]

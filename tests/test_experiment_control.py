"""``phasewatch experiment control`` (issue 11): the runner and report on a few steps.

The full default recipe (1,200 steps per run, ~minutes) is not run in the suite; its measured
result is in docs/control.md, "The causal experiment".
"""

from __future__ import annotations

import gzip
import math
import os

import numpy as np
import pandas as pd
import pytest

from phasewatch import keys
from phasewatch.cli import build_parser, main
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.demo.config import DemoConfig
from phasewatch.demo.novels import NovelSplits
from phasewatch.detect.events import PairedDifference
from phasewatch.experiment import (
    ControlRecipe,
    ExperimentSummary,
    run_control_experiment,
)
from phasewatch.experiment.per_word import PER_WORD_FILE
from phasewatch.experiment.summary import RunOutcome, StepDifference
from phasewatch.report import load_history, summarize_run
from phasewatch.report.compare import compare_figure

TEXT = (
    "The old house stood at the end of the lane, and nobody had lived in it for years. "
    "Children said that a light moved in the windows at night. One evening a girl walked "
    "up the path, opened the door and went inside to see for herself. "
) * 30

needs_data = pytest.mark.skipif("PHASEWATCH_DATA" not in os.environ, reason="needs PHASEWATCH_DATA")


def _tiny_recipe() -> ControlRecipe:
    """Two Natural Stories stories for PPP (~2,000 words), no syntactic score: a few seconds."""
    ns = load("naturalstories")
    two = ns.frame["story"].isin([1, 2])
    corpus = ReadingTimeCorpus("ns-two-stories", ns.frame[two].reset_index(drop=True))
    config = DemoConfig().with_(
        vocab_size=300,
        n_embd=32,
        n_inner=64,
        batch_size=4,
        repeat_fraction=0.5,
        max_steps=4,
        val_check_interval=4,
        warmup_steps=2,
    )
    return ControlRecipe(
        config=config,
        weight=5.0,
        every_n_steps=2,
        per_decade=1,
        name="tiny",
        ppp_options={"corpus": corpus},
        attention_options={"syntactic": False, "probe_batch": 8},
    )


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("control")
    documents = NovelSplits(train=(TEXT,), validation=(TEXT,), val_fraction=0.1)
    result = run_control_experiment(
        out / "run",
        _tiny_recipe(),
        progress=False,
        data_options={"documents": documents, "cache_dir": out / "cache"},
    )
    return out / "run", result


def _paired_by_hand(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    d = a - b
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    return mean, sd / math.sqrt(n), n


@needs_data
def test_summary_paired_differences_equal_a_recomputation_from_the_kept_files(experiment):
    out, result = experiment
    tables = {}
    for label in ("baseline", "regularized"):
        with gzip.open(out / label / PER_WORD_FILE, "rt") as f:
            tables[label] = pd.read_csv(f)
    rows = result.summary.differences
    series = {row.series for row in rows}
    assert series == {keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL}
    base, reg = tables["baseline"], tables["regularized"]
    assert len(rows) == 2 * len(set(base["step"])) >= 4  # every matched step, both series
    for row in rows:
        a = reg[(reg.series == row.series) & (reg.step == row.step)].set_index("word")
        b = base[(base.series == row.series) & (base.step == row.step)].set_index("word")
        shared = a.index.intersection(b.index)
        mean, se, n = _paired_by_hand(
            a.loc[shared, "delta_ll_nats"].to_numpy(), b.loc[shared, "delta_ll_nats"].to_numpy()
        )
        assert row.difference.n == n > 500
        assert row.difference.mean == pytest.approx(mean, rel=1e-9, abs=1e-15)
        assert row.difference.se == pytest.approx(se, rel=1e-9)
    # The regularizer changed the model: the last paired difference is not 0 ± 0.
    assert rows[-1].difference.se > 0
    # The kept per-word values are the ones logged: their mean is the logged ΔLL of each run.
    for label in ("baseline", "regularized"):
        logged = load_history(out / label).get(keys.PPP_DELTA_LL).set_index("step")["value"]
        kept = tables[label][tables[label].series == keys.PPP_DELTA_LL]
        means = kept.groupby("step")["delta_ll_nats"].mean()
        assert list(means.index) == list(logged.index)
        np.testing.assert_allclose(means.to_numpy(), logged.to_numpy(), rtol=1e-9)
    text = str(result.summary)
    end = load_history(out / "baseline").get(keys.PPP_DELTA_LL_TOKCTRL)["value"].iloc[-1]
    assert f"ppp/delta_ll_tokctrl at the end: {end:.5f}" in text
    assert "paired ΔLL differences, regularized − baseline" in text
    last = rows[-1]
    assert f"{last.difference.mean:+.2e} ± {last.difference.se:.1e}" in text
    assert f"{last.difference.mean:+.5f} ± {last.difference.se:.5f} nats/word" in text


@needs_data
def test_report_draws_both_runs_on_every_panel(experiment):
    out, result = experiment
    assert result.report_png.stat().st_size > 10_000 and result.report_html.exists()
    assert (out / "baseline" / "report.png").exists()
    assert (out / "regularized" / "report.png").exists()
    histories = {label: load_history(out / label) for label in ("baseline", "regularized")}
    figure = compare_figure(histories)
    gids = {line.get_gid() for ax in figure.axes for line in ax.lines}
    for label in histories:
        for key in (keys.HEADS_INDUCTION_MAX, keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL):
            assert f"{label}:{key}" in gids
    steps = [histories[label].get(keys.HEADS_INDUCTION_MAX)["step"].tolist() for label in histories]
    assert steps[0] == steps[1]  # the same schedule: compared at matched steps
    # each run's own report reads the PPP monitor's settings (its config record names PPPMonitor)
    assert "held-out, 10-fold CV, spillover 4" in str(summarize_run(histories["baseline"]))
    html = result.report_html.read_text(encoding="utf-8")
    assert "regularized/report.png" in html and "λ = 5" in html


def _outcome(label, step, top):
    return RunOutcome(label, step, top, 100, top)


@pytest.mark.parametrize(
    ("baseline", "regularized", "verdict"),
    [
        (300, None, "suppressed: the baseline's transition at step 300"),
        (300, 500, "delayed by 200 steps"),
        (300, 300, "not delayed"),
        (None, None, "no transition in either run"),
        (None, 400, "no transition in the baseline, one at step 400"),
    ],
)
def test_summary_says_what_happened_to_the_transition_whatever_it_was(
    baseline, regularized, verdict
):
    summary = ExperimentSummary(
        _outcome("baseline", baseline, 0.8), _outcome("r", regularized, 0.1), 1.0
    )
    assert summary.transition_verdict.startswith(verdict)
    assert "PPP: ppp/delta_ll: not compared" in str(summary)


@pytest.mark.parametrize(
    ("mean", "se", "word"),
    [(0.01, 0.002, "higher"), (-0.01, 0.002, "lower"), (0.001, 0.002, "not")],
)
def test_ppp_verdict_uses_the_paired_z(mean, se, word):
    rows = [StepDifference(keys.PPP_DELTA_LL, 10, PairedDifference(mean, se, 100))]
    summary = ExperimentSummary(_outcome("b", 5, 0.8), _outcome("r", None, 0.1), 1.0, rows)
    assert f"at the last matched step 10: {word}" in summary.ppp_verdict()


def test_cli_parses_the_experiment_and_rejects_a_zero_weight(capsys):
    with pytest.raises(ValueError, match=r"`weight` \(λ of the treated run\) must be > 0, got 0"):
        ControlRecipe.short(weight=0)
    args = build_parser().parse_args(["experiment", "control", "--demo", "--max-steps", "50"])
    assert (args.experiment, args.demo, args.max_steps, args.out) == (
        "control",
        True,
        50,
        "runs/control",
    )
    assert main(["experiment", "control", "--weight", "0", "--quiet"]) == 2
    assert "`weight` (λ of the treated run) must be > 0, got 0.0" in capsys.readouterr().err


def test_recipes_short_and_demo():
    assert ControlRecipe.short().config.repeat_fraction > DemoConfig().repeat_fraction
    assert ControlRecipe.demo().config == DemoConfig()
    assert ControlRecipe.short().with_(max_steps=7, weight=2.0).config.max_steps == 7

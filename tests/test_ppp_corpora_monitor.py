"""PPPMonitor(corpora=[...]) in a real Trainer: one key set per corpus and the mean, the peak test
per corpus and on the mean, the report's curves; checked against an independent recomputation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from lightning_helpers import TinyLM, quiet_trainer, token_loader

from phasewatch import keys
from phasewatch.callbacks import PeakMonitor, PPPMonitor
from phasewatch.callbacks.base import MeasurementListener
from phasewatch.corpora import ReadingTimeCorpus, load, registry
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model
from phasewatch.report import load_history, report_figure, summarize_run, write_report

EYE = "ns_eye"
STEPS = [0, 3, 6]


def _eye_corpus(ns_corpus: ReadingTimeCorpus) -> ReadingTimeCorpus:
    """Natural Stories stories 3 and 4 as if read with eye tracking (spillover 2 by its measure)."""
    frame = ns_corpus.frame[ns_corpus.frame["story"].isin([3, 4])].reset_index(drop=True)
    return ReadingTimeCorpus(EYE, frame, measure="eye tracking: gaze duration")


@pytest.fixture
def eye_registered(ns_corpus, monkeypatch):
    """``ns_eye`` in the corpus registry for this test only."""
    eye = _eye_corpus(ns_corpus)
    entry = registry.CorpusEntry(
        EYE, registry.READING_TIMES, lambda data_dir=None: eye, "eye tracking: gaze duration"
    )
    monkeypatch.setitem(registry._REGISTRY, EYE, entry)
    return eye


class WeightsAtMeasurements(MeasurementListener, Callback):
    def __init__(self):
        self.models = {}

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras):
        if key == keys.PPP_DELTA_LL:
            self.models[step] = copy.deepcopy(pl_module.model).eval()


class PairedSeen(MeasurementListener, Callback):
    """What a PeakMonitor watching ``key`` receives as its paired test."""

    def __init__(self, key):
        self.key, self.seen = key, {}

    def watched_keys(self):
        return (self.key,)

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras):
        if key == self.key:
            self.seen[step] = extras["paired"][key]


def _logged(monitor, key):
    return {row[0]: row[2] for row in monitor.history[key]}


@pytest.fixture(scope="module")
def run(tmp_path_factory, ns_corpus, ns_tokenizer, ns_token_ids):
    """One short run with PPPMonitor(corpora=["naturalstories", "ns_eye"]) and two PeakMonitors."""
    eye = _eye_corpus(ns_corpus)
    entry = registry.CorpusEntry(
        EYE, registry.READING_TIMES, lambda data_dir=None: eye, "eye tracking: gaze duration"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(registry._REGISTRY, EYE, entry)
        root = tmp_path_factory.mktemp("corpora_run")
        monitor = PPPMonitor(corpora=["naturalstories", EYE], steps=STEPS, folds=5, strict=True)
        weights = WeightsAtMeasurements()
        seen_eye = PairedSeen(f"ppp/{EYE}/delta_ll")
        peaks = [
            PeakMonitor(patience=1, min_steps=0, save_peak=False, min_z=1e9),
            PeakMonitor(f"ppp/{EYE}/delta_ll", patience=1, min_steps=0, save_peak=False),
        ]
        torch.manual_seed(0)
        module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer, lr=1e-2)
        loader = token_loader(ns_token_ids[: 8 * 64 * 6], batch_size=8)
        trainer = quiet_trainer(
            root, [monitor, weights, seen_eye, *peaks], max_steps=6, enable_checkpointing=False
        )
        trainer.fit(module, loader)
        trainer.save_checkpoint(root / "end.ckpt")
    return dict(
        root=root, monitor=monitor, weights=weights, seen_eye=seen_eye, peaks=peaks, eye=eye
    )


def test_one_key_per_corpus_and_the_mean_match_an_independent_recomputation(
    run, ns_corpus, ns_tokenizer
):
    monitor, weights = run["monitor"], run["weights"]
    assert monitor.spillovers == {"naturalstories": 4, EYE: 2}  # the eye corpus's by its measure
    assert set(monitor.history) == set(monitor.produces)  # every key announced is logged, no other
    assert sorted(weights.models) == STEPS
    measures = {
        "naturalstories": PPPMeasure(load("naturalstories"), spillover=4, folds=5),
        EYE: PPPMeasure(run["eye"], spillover=2, folds=5),
    }
    per_word = {}
    for step, model in sorted(weights.models.items()):
        probe = as_probe_model(model)
        per_word[step] = {}
        for name, measure in measures.items():
            scalars, results = measure.measure(probe, ns_tokenizer)
            per_word[step][name] = results[keys.PPP_DELTA_LL].per_word
            for key, value in scalars.items():  # every PPP key, per corpus
                logged = _logged(monitor, keys.with_prefix(key, name))[step]
                assert logged == pytest.approx(value, abs=1e-9), (step, name, key)
        means = np.array([per_word[step][n].mean() for n in measures])
        ses = np.array([w.std(ddof=1) / np.sqrt(len(w)) for w in per_word[step].values()])
        assert _logged(monitor, keys.PPP_DELTA_LL)[step] == pytest.approx(means.mean(), abs=1e-9)
        assert _logged(monitor, keys.PPP_DELTA_LL_SE)[step] == pytest.approx(
            np.sqrt((ses**2).sum()) / 2, abs=1e-9
        )
    assert len({round(v, 6) for v in _logged(monitor, keys.PPP_DELTA_LL).values()}) == 3
    assert _logged(monitor, keys.PPP_RISE)[STEPS[-1]] > 1e-4  # the paired numbers are not 0 ± 0

    # the paired test on the mean: best = the evaluation with the best mean of means
    mean_of = {s: np.mean([w.mean() for w in per_word[s].values()]) for s in STEPS}
    best = None
    for step in STEPS:
        if best is None or mean_of[step] > mean_of[best]:
            best = step
        ds = [(per_word[best][n] - per_word[step][n]).to_numpy() for n in measures]
        decline = np.mean([d.mean() for d in ds])
        se = np.sqrt(sum((d.std(ddof=1) / np.sqrt(len(d))) ** 2 for d in ds)) / 2
        assert _logged(monitor, keys.PPP_DECLINE)[step] == pytest.approx(decline, abs=1e-9)
        assert _logged(monitor, keys.PPP_DECLINE_SE)[step] == pytest.approx(se, abs=1e-9)
        rises = [(per_word[best][n] - per_word[STEPS[0]][n]).to_numpy() for n in measures]
        rise_se = np.sqrt(sum((r.std(ddof=1) / np.sqrt(len(r))) ** 2 for r in rises)) / 2
        assert _logged(monitor, keys.PPP_RISE)[step] == pytest.approx(
            np.mean([r.mean() for r in rises]), abs=1e-9
        )
        assert _logged(monitor, keys.PPP_RISE_SE)[step] == pytest.approx(rise_se, abs=1e-9)
        # each corpus's own paired test, against its own best
        eye_best = max((s for s in STEPS if s <= step), key=lambda s: per_word[s][EYE].mean())
        d = (per_word[eye_best][EYE] - per_word[step][EYE]).to_numpy()
        logged = _logged(monitor, f"ppp/{EYE}/decline_since_best")[step]
        assert logged == pytest.approx(d.mean(), abs=1e-9)


def test_peak_monitors_decide_on_the_mean_by_default_and_on_a_corpus_on_request(run):
    monitor, (on_mean, on_eye) = run["monitor"], run["peaks"]
    mean = _logged(monitor, keys.PPP_DELTA_LL)
    eye = _logged(monitor, f"ppp/{EYE}/delta_ll")
    assert on_mean.best == pytest.approx(max(mean.values()), abs=1e-12)
    assert on_eye.best == pytest.approx(max(eye.values()), abs=1e-12)
    assert on_eye.best_step == max(eye, key=eye.get)
    # the per-corpus PeakMonitor received that corpus's paired test, not the mean's
    seen = run["seen_eye"].seen
    assert seen[STEPS[-1]]["decline"] == _logged(monitor, f"ppp/{EYE}/decline_since_best")[6]


def test_describe_and_state_name_every_corpus_and_its_spillover(run, eye_registered):
    monitor = run["monitor"]
    described = monitor.describe()
    assert described["corpora"] == ["naturalstories", EYE]
    assert described["spillover"] == {"naturalstories": 4, EYE: 2}
    assert described["spillover_meaning"][EYE] == "current + 2 previous words"
    assert "naturalstories" in monitor.state_key and EYE in monitor.state_key
    other = PPPMonitor(corpora=["naturalstories", EYE], spillover=3, folds=5)
    assert other.state_key != monitor.state_key  # another spillover: another state

    # the paired state round-trips through the checkpoint
    checkpoint = torch.load(run["root"] / "end.ckpt", weights_only=False)
    fresh = PPPMonitor(corpora=["naturalstories", EYE], steps=STEPS, folds=5)
    fresh.load_state_dict(checkpoint["callbacks"][fresh.state_key])
    assert fresh._paired.state_dict() == monitor._paired.state_dict()
    assert set(fresh._paired.trackers) == set(monitor.series)


def test_the_report_plots_every_corpus_beside_the_mean(run):
    history = load_history(run["root"])
    figure = report_figure(history)
    drawn = {line.get_gid() for line in figure.axes[0].lines}
    assert {keys.PPP_DELTA_LL, "ppp/naturalstories/delta_ll", f"ppp/{EYE}/delta_ll"} <= drawn
    summary = summarize_run(history)
    assert [c.key for c in summary.curves] == [
        keys.PPP_DELTA_LL,
        "ppp/naturalstories/delta_ll",
        f"ppp/{EYE}/delta_ll",
    ]
    mean = _logged(run["monitor"], keys.PPP_DELTA_LL)
    assert summary.ppp_max.delta_ll == pytest.approx(max(mean.values()), abs=1e-12)
    text = str(summary)
    assert "PPP, mean over corpora" in text and f"PPP on {EYE}" in text
    assert "naturalstories 4 = current + 4 previous words" in text
    assert f"{EYE} 2 = current + 2 previous words" in text
    # on request the peak is decided on one corpus
    on_eye = summarize_run(history, key=f"ppp/{EYE}/delta_ll")
    eye = _logged(run["monitor"], f"ppp/{EYE}/delta_ll")
    assert on_eye.ppp_max.delta_ll == pytest.approx(max(eye.values()), abs=1e-12)
    assert f"peak is decided on ppp/{EYE}/delta_ll" in str(on_eye)
    assert "peak decided" not in figure.axes[0].get_title()
    chosen = report_figure(history, key=f"ppp/{EYE}/delta_ll").axes[0].get_title()
    assert f"peak decided on ppp/{EYE}/delta_ll" in chosen
    written = write_report(run["root"], run["root"] / "report", key=f"ppp/{EYE}/delta_ll")
    assert written["png"].stat().st_size > 0
    with pytest.raises(ValueError, match=r"`key` must be a ΔLL series of this run, one of"):
        summarize_run(history, key="ppp/dundee/delta_ll")


def test_a_corpus_name_defaults_to_its_registered_measure_spillover(eye_registered):
    assert PPPMonitor(EYE).spillover == 2  # was 4 for any name
    assert PPPMonitor("naturalstories").spillover == 4
    assert PPPMonitor(EYE, spillover=1).spillover == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"corpus": "naturalstories", "corpora": ["naturalstories"]}, ValueError, "not both"),
        ({"corpora": "naturalstories"}, TypeError, "for one corpus use corpus="),
        ({"corpora": []}, ValueError, "`corpora` is empty"),
        ({"corpora": ["naturalstories", 3]}, TypeError, "every item of `corpora`"),
        ({"corpora": ["naturalstories", "naturalstories"]}, ValueError, "more than once"),
        ({"corpora": ["naturalstories", "dundee"]}, ValueError, "registered reading times"),
        ({"corpus": "dundee"}, ValueError, r"register_corpus\(name, loader\)"),
    ],
)
def test_bad_corpora_name_the_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        PPPMonitor(**kwargs)


def test_both_ppp_curves_per_corpus_and_as_means(eye_registered):
    produces = set(PPPMonitor(corpora=["naturalstories", EYE], control_tokens="both").produces)
    for key in ("delta_ll_tokctrl", "delta_ll_tokctrl_se", "decline_since_best_tokctrl"):
        assert {f"ppp/{key}", f"ppp/naturalstories/{key}", f"ppp/{EYE}/{key}"} <= produces


def test_a_prefix_composes_with_the_corpus_keys(eye_registered):
    monitor = PPPMonitor(corpora=["naturalstories", EYE], prefix="run2")
    assert "ppp/run2/delta_ll" in monitor.produces
    assert f"ppp/run2/{EYE}/delta_ll" in monitor.produces
    assert f"ppp/run2/{EYE}/decline_since_best_se" in monitor.produces
    assert monitor.series == (
        "ppp/run2/delta_ll",
        "ppp/run2/naturalstories/delta_ll",
        f"ppp/run2/{EYE}/delta_ll",
    )


def _history(path, corpora, series):
    """A hand-written history: a PPPMonitor config naming ``corpora``, then ``series`` per step."""
    records = [{"kind": "config", "monitor": "PPPMonitor", "corpora": corpora, "folds": 5}]
    for step, values in enumerate(zip(*series.values(), strict=True)):
        values = dict(zip(series, values, strict=True))
        records.append(
            {"kind": "measurement", "step": step, "tokens": 100 * step, "values": values}
        )
    path.mkdir()
    (path / "phasewatch_history.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    return load_history(path)


def test_the_mean_is_called_a_mean_only_when_several_corpora_were_measured(tmp_path):
    one = _history(tmp_path / "one", ["a"], {keys.PPP_DELTA_LL: [0.01, 0.02, 0.015]})
    assert [c.label for c in summarize_run(one).curves] == ["PPP"]
    several = _history(
        tmp_path / "several",
        ["a", "b"],
        {keys.PPP_DELTA_LL: [0.01, 0.02, 0.015], "ppp/a/delta_ll": [0.0, 0.01, 0.02]},
    )
    summary = summarize_run(several)
    assert [c.label for c in summary.curves] == ["PPP, mean over corpora", "PPP on a"]
    assert summary.ppp_max.step == 1  # the mean's highest, not corpus a's (step 2)
    assert summarize_run(several, key="ppp/a/delta_ll").ppp_max.step == 2


def test_report_command_decides_on_the_key_it_is_given(run, capsys):
    from phasewatch.cli import main

    assert main(["report", str(run["root"]), "--out", str(run["root"] / "cli")]) == 0
    assert "peak is decided on" not in capsys.readouterr().out
    key = f"ppp/{EYE}/delta_ll"
    assert main(["report", str(run["root"]), "--out", str(run["root"] / "cli"), "--key", key]) == 0
    assert f"peak is decided on {key}" in capsys.readouterr().out

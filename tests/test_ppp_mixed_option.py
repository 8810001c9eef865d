"""The optional mixed-effects ΔLL wired into PPP (PPPMeasure, CorporaPPP, PPPMonitor, analyze).

A small per-reader corpus (two Natural Stories stories, five synthetic readers = means + noise,
some skips): the logged values equal a direct ``delta_loglik_mixed`` call on surprisal computed
here; the option is off by default (no key, no fit); a corpus without readers is refused.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch import Callback
from lightning_helpers import TinyLM, quiet_trainer, token_loader
from tiny_models import tiny_gpt2

from phasewatch import keys
from phasewatch.analyze import analyze_checkpoints
from phasewatch.callbacks import PPPMonitor
from phasewatch.callbacks.base import MeasurementListener
from phasewatch.cli import main
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures import snapshot, word_surprisal
from phasewatch.measures.delta_loglik_mixed import delta_loglik_mixed
from phasewatch.measures.ppp_corpora import CorporaPPP
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model

MIXED = (keys.PPP_DELTA_LL_MIXED, keys.PPP_DELTA_LL_MIXED_PER_WORD, keys.PPP_DELTA_LL_MIXED_P)
STEPS = [0, 3]


def per_reader_corpus(
    ns_corpus, name: str, stories, seed: int = 0, measure: str = "self-paced reading"
) -> ReadingTimeCorpus:
    """Natural Stories ``stories`` read by 5 synthetic readers: mean + reader offset + noise (ms),
    30 readings skipped (rt 0)."""
    rng = np.random.default_rng(seed)
    frame = ns_corpus.frame[ns_corpus.frame["story"].isin(stories)].reset_index(drop=True)
    offsets = rng.normal(0, 40, 5)
    rows = [
        frame[["story", "position"]].assign(
            reader=f"r{r}", rt=frame["rt"] + offsets[r] + rng.normal(0, 60, len(frame))
        )
        for r in range(5)
    ]
    readers = pd.concat(rows, ignore_index=True)
    readers.loc[rng.choice(len(readers), 30, replace=False), "rt"] = 0.0
    return ReadingTimeCorpus(name, frame, readers=readers, measure=measure)


@pytest.fixture(scope="module")
def small(ns_corpus):
    return per_reader_corpus(ns_corpus, "small", [1, 2])


@pytest.fixture(scope="module")
def probe(ns_tokenizer):
    torch.manual_seed(0)
    return as_probe_model(tiny_gpt2(len(ns_tokenizer)).eval())


def direct_fit(corpus, model, tokenizer, baseline=("length", "log_freq"), spillover=4):
    """The mixed fit computed apart from PPPMeasure: surprisal here, then delta_loglik_mixed."""
    probe = as_probe_model(model)
    surprisal, n_tokens = word_surprisal(
        probe, tokenizer, corpus.frame, context_length=probe.max_length, return_token_counts=True
    )
    words = corpus.frame.assign(surprisal=surprisal, n_tokens=n_tokens)
    return delta_loglik_mixed(corpus.readers, words, baseline=baseline, spillover=spillover)


class WeightsAtMeasurements(MeasurementListener, Callback):
    def __init__(self):
        self.models = {}

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras):
        if key == keys.PPP_DELTA_LL:
            self.models[step] = copy.deepcopy(pl_module.model).eval()


def count_mixed_fits(monkeypatch) -> list:
    calls = []
    real = snapshot.delta_loglik_mixed

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(snapshot, "delta_loglik_mixed", counting)
    return calls


def train(root, monitor, ns_tokenizer, ns_token_ids, listener=None):
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer, lr=1e-2)
    loader = token_loader(ns_token_ids[: 8 * 64 * 3], batch_size=8)
    callbacks = [monitor, *([listener] if listener else [])]
    trainer = quiet_trainer(root, callbacks, max_steps=3, enable_checkpointing=False)
    trainer.fit(module, loader)


def _logged(monitor, key):
    return {row[0]: row[2] for row in monitor.history[key]}


def test_the_monitor_logs_the_fit_a_direct_call_gives(
    small, ns_tokenizer, ns_token_ids, tmp_path, monkeypatch
):
    calls = count_mixed_fits(monkeypatch)
    monitor = PPPMonitor(small, mixed_effects=True, steps=STEPS, folds=3, strict=True)
    weights = WeightsAtMeasurements()
    train(tmp_path, monitor, ns_tokenizer, ns_token_ids, weights)
    assert len(calls) == len(STEPS)  # one mixed fit per evaluation
    assert set(MIXED) <= set(monitor.produces) and set(monitor.history) == set(monitor.produces)
    assert monitor.describe()["mixed_effects"] is True
    for step, model in sorted(weights.models.items()):
        expected = direct_fit(small, model, ns_tokenizer)
        assert expected.n_readers == 5 and expected.n_dropped >= 30  # the skips left out
        values = (expected.delta_ll, expected.delta_ll_nats_per_word, expected.p_value)
        for key, value in zip(MIXED, values, strict=True):
            assert _logged(monitor, key)[step] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # per word = per observation × observations / words (5 readers read each word)
    at = _logged(monitor, keys.PPP_DELTA_LL_MIXED)[STEPS[-1]]
    per_word = _logged(monitor, keys.PPP_DELTA_LL_MIXED_PER_WORD)[STEPS[-1]]
    assert 4.5 < per_word / at < 5.0


def test_off_by_default_no_key_and_no_fit(small, ns_tokenizer, ns_token_ids, tmp_path, monkeypatch):
    calls = count_mixed_fits(monkeypatch)
    monitor = PPPMonitor(small, steps=STEPS, folds=3, strict=True)
    train(tmp_path, monitor, ns_tokenizer, ns_token_ids)
    assert calls == []
    assert keys.PPP_DELTA_LL in monitor.history
    assert not any("mixed" in key for key in [*monitor.history, *monitor.produces])
    assert monitor.describe()["mixed_effects"] is False


def test_control_tokens_true_puts_tokens_per_word_in_the_mixed_baseline(small, probe, ns_tokenizer):
    measure = PPPMeasure(small, folds=3, control_tokens=True, mixed_effects=True)
    scalars, _ = measure.measure(probe, ns_tokenizer)
    with_tokens = direct_fit(small, probe, ns_tokenizer, ("length", "log_freq", "n_tokens"))
    without = direct_fit(small, probe, ns_tokenizer)
    assert measure.last_mixed.baseline == ("length", "log_freq", "n_tokens")
    assert scalars[keys.PPP_DELTA_LL_MIXED] == pytest.approx(with_tokens.delta_ll, rel=1e-9)
    assert with_tokens.delta_ll != pytest.approx(without.delta_ll, rel=1e-6)


def test_several_corpora_each_get_their_own_mixed_keys_and_no_mean(
    small, ns_corpus, probe, ns_tokenizer
):
    other = per_reader_corpus(
        ns_corpus, "other", [3], seed=1, measure="eye tracking: gaze duration"
    )
    measure = CorporaPPP([small, other], folds=3, mixed_effects=True)
    scalars, _ = measure.measure(probe, ns_tokenizer)
    assert set(scalars) == set(measure.scalar_keys)
    assert not set(MIXED) & set(scalars)  # no mean over corpora of the in-sample ΔLL
    assert measure.spillovers == {"small": 4, "other": 2}  # each corpus's own, as for ΔLL
    for corpus, spillover in ((small, 4), (other, 2)):
        expected = direct_fit(corpus, probe, ns_tokenizer, spillover=spillover)
        assert expected.spillover == spillover
        key = keys.with_prefix(keys.PPP_DELTA_LL_MIXED, corpus.name)
        assert scalars[key] == pytest.approx(expected.delta_ll, rel=1e-9)


def test_a_corpus_without_readers_is_refused_with_the_fix(ns_corpus, small):
    ns_two = ReadingTimeCorpus("ns_two", ns_corpus.frame.head(500))
    for build in (
        lambda: PPPMeasure(ns_two, mixed_effects=True),
        lambda: CorporaPPP([small, ns_two], mixed_effects=True),
        lambda: PPPMonitor(corpora=[small, ns_two], mixed_effects=True),
        lambda: analyze_checkpoints(["unused"], corpus=ns_two, mixed_effects=True, loader=print),
    ):
        with pytest.raises(ValueError, match="'ns_two' has none") as err:
            build()
        assert "load_tsv(" in str(err.value) and "mixed_effects=False" in str(err.value)
    with pytest.raises(TypeError, match="`mixed_effects` must be True or False"):
        PPPMonitor(small, mixed_effects="yes")


def test_analyze_logs_the_same_fit_and_refuses_to_resume_with_another_setting(
    small, ns_tokenizer, tmp_path
):
    torch.manual_seed(0)
    model = tiny_gpt2(len(ns_tokenizer))
    model.save_pretrained(tmp_path / "run" / "step10")
    options = dict(corpus=small, tokenizer=ns_tokenizer, syntactic=False, folds=3, quiet=True)
    out = tmp_path / "out"
    table = analyze_checkpoints(
        [tmp_path / "run"], mixed_effects=True, out_dir=out, **options
    ).table
    expected = direct_fit(small, model.eval(), ns_tokenizer)
    assert table[keys.PPP_DELTA_LL_MIXED].iloc[0] == pytest.approx(expected.delta_ll, rel=1e-9)
    assert table[keys.PPP_DELTA_LL_MIXED_P].iloc[0] == pytest.approx(expected.p_value, rel=1e-9)
    config = json.loads((out / "phasewatch_history.jsonl").read_text().splitlines()[0])
    assert config["kind"] == "config" and config["mixed_effects"] is True
    with pytest.raises(ValueError, match="mixed_effects: True then, None now"):
        analyze_checkpoints([tmp_path / "run"], out_dir=out, **options)


def test_the_command_passes_mixed_effects(monkeypatch, tmp_path):
    seen = {}

    def fake(checkpoints, **kwargs):
        seen.update(kwargs)
        return "ok"

    monkeypatch.setattr("phasewatch.analyze.analyze_checkpoints", fake)
    assert main(["analyze", str(tmp_path), "--mixed-effects", "--quiet"]) == 0
    assert seen["mixed_effects"] is True
    main(["analyze", str(tmp_path), "--quiet"])
    assert seen["mixed_effects"] is False

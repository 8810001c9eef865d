"""Real PPPMonitor and PeakMonitor in a Trainer: the paired test, both PPP curves, old states."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from lightning_helpers import TinyLM, quiet_trainer, token_loader

from phasewatch import keys
from phasewatch.callbacks import PeakMonitor, PPPMonitor
from phasewatch.callbacks.base import MeasurementListener
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures import snapshot
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model


class WeightsAtMeasurements(MeasurementListener, Callback):
    """A copy of the model at each PPP measurement: the independent recomputation's input."""

    def __init__(self):
        self.models = {}

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras):
        if key == keys.PPP_DELTA_LL:
            self.models[step] = copy.deepcopy(pl_module.model).eval()


def _trainer(tmp_path, callbacks, max_steps, **kwargs):
    return quiet_trainer(tmp_path, callbacks, max_steps=max_steps, **kwargs)


@pytest.fixture
def one_story(ns_corpus):
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


def test_paired_decline_and_both_curves_match_an_independent_recomputation(
    tmp_path, one_story, ns_tokenizer, ns_token_ids, monkeypatch
):
    passes = []
    real = snapshot.word_surprisal
    monkeypatch.setattr(
        snapshot, "word_surprisal", lambda *a, **k: passes.append(1) or real(*a, **k)
    )
    monitor = PPPMonitor(one_story, steps=[0, 3, 6, 9], folds=5, control_tokens="both", strict=True)
    weights = WeightsAtMeasurements()
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)
    loader = token_loader(ns_token_ids[: 8 * 64 * 9], batch_size=8)
    _trainer(tmp_path, [monitor, weights], max_steps=9).fit(module, loader)
    assert len(passes) == 4  # one surprisal pass per evaluation serves both regressions

    # Recompute every evaluation from the saved weights, then the paired statistics with numpy.
    measure = PPPMeasure(one_story, folds=5, control_tokens="both")
    per_word = {}
    for step, model in sorted(weights.models.items()):
        _, results = measure.measure(as_probe_model(model), ns_tokenizer)
        per_word[step] = {k: r.per_word for k, r in results.items()}
    for series in (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL):
        decline_key, decline_se_key, rise_key, _ = keys.PAIRED_KEYS[series]
        logged = {row[0]: row[2] for row in monitor.history[series]}
        best = None
        for step in sorted(per_word):
            now = per_word[step][series]
            assert logged[step] == pytest.approx(now.mean(), abs=1e-9)
            if best is None or now.mean() > best.mean():
                best = now
            d = (best - now).to_numpy()
            se = d.std(ddof=1) / np.sqrt(len(d))
            got = {row[0]: row[2] for row in monitor.history[decline_key]}
            got_se = {row[0]: row[2] for row in monitor.history[decline_se_key]}
            assert got[step] == pytest.approx(d.mean(), abs=1e-9)
            assert got_se[step] == pytest.approx(se, abs=1e-9)
            first = per_word[0][series]
            rise = {row[0]: row[2] for row in monitor.history[rise_key]}
            assert rise[step] == pytest.approx((best - first).mean(), abs=1e-9)
    # the controlled curve is a different regression: its values differ from the plain one
    plain = [r[2] for r in monitor.history[keys.PPP_DELTA_LL]]
    tokctrl = [r[2] for r in monitor.history[keys.PPP_DELTA_LL_TOKCTRL]]
    assert max(abs(a - b) for a, b in zip(plain, tokctrl, strict=True)) > 1e-4


def test_peak_monitor_receives_the_paired_test(tmp_path, one_story, ns_tokenizer, ns_token_ids):
    monitor = PPPMonitor(one_story, steps=[0, 2, 4], folds=5, strict=True)
    peak = PeakMonitor(patience=1, min_steps=0, save_peak=False, min_z=1e9)
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)
    loader = token_loader(ns_token_ids[: 8 * 64 * 4], batch_size=8)
    _trainer(tmp_path, [monitor, peak], max_steps=4).fit(module, loader)
    # an impossible threshold: whatever happened, no peak is confirmed, and the reason is given
    assert not [e for e in peak.events if e.kind == "confirmed"]
    assert peak.waiting_for is not None


def test_a_state_saved_with_the_old_spillover_meaning_loads_converted(
    tmp_path, one_story, ns_tokenizer, ns_token_ids, caplog
):
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)
    loader = token_loader(ns_token_ids[: 8 * 64 * 4], batch_size=8)
    saved = PPPMonitor(one_story, spillover=3, steps=[2], folds=5, strict=True)
    trainer = _trainer(tmp_path, [saved], max_steps=2)
    trainer.fit(module, loader)
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    # as phasewatch 0.1 wrote it: spillover=4 meant current + 3 previous words; no version
    state = checkpoint["callbacks"].pop(saved.state_key)
    del state["format_version"], state["best"], state["spillover_previous"]
    old_key = "PPPMonitor{'corpus': 'story 1', 'spillover': 4, 'folds': 5}"
    checkpoint["callbacks"][old_key] = state
    torch.save(checkpoint, path)

    resumed = PPPMonitor(one_story, spillover=3, steps=[2], folds=5, strict=True)
    with caplog.at_level(logging.INFO, logger="phasewatch"):
        _trainer(tmp_path, [resumed], max_steps=4).fit(module, loader, ckpt_path=path)
    assert resumed.history[keys.PPP_DELTA_LL] == saved.history[keys.PPP_DELTA_LL]
    assert "old spillover meaning" in caplog.text
    assert "spillover=4 = current + 3 previous words" in caplog.text


@pytest.mark.parametrize(
    ("spillover", "meaning"),
    [(0, "current word only"), (1, "current + 1 previous word"), (4, "current + 4 previous words")],
)
def test_the_recorded_spillover_meaning_is_the_one_printed(one_story, spillover, meaning):
    described = PPPMonitor(one_story, spillover=spillover).describe()
    assert described["spillover_meaning"] == meaning

"""Several PPPMonitors in one run: ``prefix=`` keeps their keys apart; two monitors that would
write the same keys, or save their state under one checkpoint key, are refused at setup."""

from __future__ import annotations

import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, token_loader

from phasewatch import PeakMonitor, PPPMonitor, TransitionMonitor, keys
from phasewatch.corpora import ReadingTimeCorpus


@pytest.fixture(scope="module")
def one_story(ns_corpus):
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


def _fit(tmp_path, callbacks, module, ids, max_steps=4):
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=max_steps)
    trainer.fit(module, token_loader(ids, batch_size=4, length=64))
    return trainer


def test_prefix_keeps_two_ppp_monitors_apart(tmp_path, one_story, ns_tokenizer, ns_token_ids):
    plain = PPPMonitor(one_story, spillover=1, folds=2, steps=[0, 4])
    other = PPPMonitor(one_story, spillover=0, folds=2, steps=[0, 4], prefix="s0")
    peak = PeakMonitor("ppp/s0/delta_ll", min_steps=0, save_peak=False, strict=True)
    _fit(tmp_path, [plain, other, peak], TinyLM(tokenizer=ns_tokenizer), ns_token_ids)
    assert set(plain.history) == set(plain.produces)
    assert keys.PPP_DELTA_LL in plain.history
    assert set(other.history) == set(other.produces)
    assert "ppp/s0/delta_ll" in other.history and "ppp/s0/decline_since_best_se" in other.history
    assert not set(plain.history) & set(other.history)
    # one model, two regressions: the spillover differs, so do the numbers
    assert plain.history[keys.PPP_DELTA_LL] != other.history["ppp/s0/delta_ll"]
    # the prefixed ΔLL reaches PeakMonitor, with its paired test (keyed by the prefixed key)
    series = [row[2] for row in other.history["ppp/s0/delta_ll"]]
    assert peak.best == pytest.approx(max(series))
    assert peak.tracker.first == pytest.approx(series[0])
    assert other.state_key != plain.state_key and "'prefix': 's0'" in other.state_key
    assert other.describe()["prefix"] == "s0"


def test_two_ppp_monitors_writing_the_same_keys_are_refused_at_setup(tmp_path):
    monitors = [PPPMonitor(spillover=1), PPPMonitor(spillover=2)]
    trainer = quiet_trainer(tmp_path, monitors, max_steps=2)
    with pytest.raises(
        ValueError, match=r"would write the same keys \(ppp/decline_since_best.*`prefix=`"
    ):
        trainer.fit(TinyLM(), token_loader(torch.arange(600) % 300))
    assert trainer.global_step == 0 and monitors[0].history == {}


class TwoTransitionMonitors(TinyLM):
    """Returns two callbacks with one state key from ``configure_callbacks`` (Lightning checks
    state keys only in the Trainer's own list)."""

    def configure_callbacks(self):
        return [TransitionMonitor(), TransitionMonitor(stop=True)]


def test_two_callbacks_sharing_a_state_key_are_refused_at_setup(tmp_path):
    trainer = quiet_trainer(tmp_path, [], max_steps=2)
    with pytest.raises(ValueError, match=r"save their checkpoint state under one key"):
        trainer.fit(TwoTransitionMonitors(), token_loader(torch.arange(600) % 300))
    assert trainer.global_step == 0

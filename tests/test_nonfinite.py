"""Non-finite values are reported as non-finite, never as a plausible number (issue 9).

A tiny GPT-2 with NaN weights (one head's queries, or every weight) is measured by the functions
and by the callbacks in a real Trainer; the finite heads are checked against the same model
without the NaN.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, token_loader
from tiny_models import tiny_gpt2

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor, TransitionMonitor
from phasewatch.callbacks._logging import HISTORY_FILE
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.detect import TransitionDetector
from phasewatch.measures import syntactic_scores
from phasewatch.measures.metrics import SyntacticAttentionScore
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.models import as_probe_model

NAN = float("nan")


def _nan_queries(model, layer: int, head: int) -> None:
    """Set one head's query weights to NaN: only that head's attention becomes NaN."""
    attn = model.transformer.h[layer].attn
    width = attn.head_dim
    with torch.no_grad():
        attn.c_attn.weight[:, head * width : (head + 1) * width] = NAN  # Conv1D: [in, 3·out]


def test_a_nan_head_makes_every_head_maximum_nan_and_leaves_the_others_as_they_were():
    clean = tiny_gpt2(300)
    broken = tiny_gpt2(300)
    _nan_queries(broken, 1, 1)  # the last layer: no later layer mixes it into other heads
    measure = HeadMeasure(probe_batch=4)
    want, want_heads = measure.measure(as_probe_model(clean))
    got, got_heads = measure.measure(as_probe_model(broken))

    for key in (
        keys.HEADS_INDUCTION_MAX,
        keys.HEADS_PREV_TOKEN_MAX,
        keys.HEADS_DUPLICATE_TOKEN_MAX,
    ):
        assert math.isfinite(want[key]), key
        assert math.isnan(got[key]), f"{key} = {got[key]}: the NaN head was skipped"
    finite = torch.ones(2, 2, dtype=torch.bool)
    finite[1, 1] = False
    for name, scores in got_heads.items():
        assert torch.isnan(scores[1, 1]), name
        torch.testing.assert_close(scores[finite], want_heads[name][finite])


def _planted_word_attention() -> torch.Tensor:
    """[1 layer, 2 heads, 3 words, 3 words]: head 0 attends to the previous word, head 1 NaN."""
    attention = torch.zeros(1, 2, 3, 3)
    attention[0, 0] = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    attention[0, 1] = NAN
    return attention


def test_the_syntactic_score_of_a_nan_head_is_nan_not_an_accuracy():
    metric = SyntacticAttentionScore(1, 2, num_relations=2, sync_on_compute=False)
    # arcs (dependent -> head): 1 -> 0 (relation 0), 2 -> 1 (relation 1), 1 -> 2 (relation 1)
    metric.update(
        _planted_word_attention(),
        torch.tensor([1, 2, 1]),
        torch.tensor([0, 1, 2]),
        torch.tensor([0, 1, 1]),
    )
    values = metric.compute()
    # head 0: the previous word finds 1 -> 0 and 2 -> 1; for 1 -> 2 (head right of the dependent)
    # the word attending most to word 1 is word 2: a hit too. 3 of 3.
    assert values["per_head"][0, 0] == pytest.approx(1.0)
    assert torch.isnan(values["per_head"][0, 1])  # was a plausible accuracy from argmax over NaN
    assert torch.isnan(values["per_relation"][:, 0, 1]).all()
    assert values["per_relation"][:, 0, 0].tolist() == [1.0, 1.0]
    assert torch.isnan(values["sas"])


def test_syntactic_scores_of_a_model_with_nan_weights_are_nan(ns_tokenizer, ns_corpus):
    model = tiny_gpt2(len(ns_tokenizer))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(NAN)
    result = syntactic_scores(model, ns_tokenizer, ns_corpus, load_dependencies(), max_stories=1)
    # without the fix every head scored the same plausible accuracy (0.3494 on 2 stories)
    assert torch.isnan(result.per_head).all(), result.per_head
    assert math.isnan(result.sas)
    assert "nan" in repr(result)


def _nan_module(ns_tokenizer) -> TinyLM:
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(ns_tokenizer), n_positions=64, tokenizer=ns_tokenizer)
    _nan_queries(module.model, 1, 0)
    return module


def test_attention_monitor_logs_nan_with_one_warning_naming_key_step_and_heads(
    tmp_path, ns_tokenizer, ns_token_ids, caplog
):
    module = _nan_module(ns_tokenizer)
    monitor = AttentionMonitor(steps=[0], probe_batch=4, entropy_stories=1, syntactic_stories=1)
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=2)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer.fit(module, token_loader(ns_token_ids[: 8 * 64], length=64))

    assert trainer.global_step == 2  # not stopped (strict=False)
    for key in (
        keys.HEADS_INDUCTION_MAX,
        keys.HEADS_SYNTACTIC_MAX,
        keys.HEADS_SAS,
        keys.ATTN_ENTROPY_MEAN,
    ):
        assert math.isnan(monitor.history[key][0][2]), key
    warnings = [r.getMessage() for r in caplog.records if "non-finite value" in r.getMessage()]
    assert len(warnings) == 1, warnings  # one per measurement
    message = warnings[0]
    assert "at step 0" in message
    assert f"{keys.HEADS_INDUCTION_MAX}=nan (non-finite heads L1H0)" in message
    assert f"{keys.ATTN_ENTROPY_MEAN}=nan (non-finite heads L1H0)" in message
    assert f"{keys.HEADS_SAS}=nan (non-finite heads L1H0)" in message
    # the history file holds NaN too, not a number
    rows = [json.loads(line) for line in (tmp_path / HISTORY_FILE).read_text().splitlines()]
    logged = [r["values"] for r in rows if r.get("kind") == "measurement"]
    assert math.isnan(logged[0][keys.HEADS_INDUCTION_MAX])


def test_attention_monitor_strict_raises_on_a_nan_score(tmp_path, ns_tokenizer, ns_token_ids):
    module = _nan_module(ns_tokenizer)
    monitor = AttentionMonitor(
        steps=[0], probe_batch=4, entropy_stories=0, syntactic_stories=0, strict=True
    )
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=2)
    with pytest.raises(RuntimeError, match=r"heads/induction_max=nan \(non-finite heads L1H0\)"):
        trainer.fit(module, token_loader(ns_token_ids[: 8 * 64], length=64))


class _DivergingLM(TinyLM):
    """Its loss is NaN from batch ``nan_from`` on (the update makes the weights NaN)."""

    def __init__(self, nan_from: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_from = nan_from
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if batch_idx >= self.nan_from:
            loss = loss * NAN
        self.losses.append(float(loss.detach()))
        return loss


def test_a_nan_training_loss_is_logged_as_nan_not_the_last_finite_ema(tmp_path, caplog):
    torch.manual_seed(0)
    module = _DivergingLM(nan_from=3)
    monitor = TransitionMonitor({keys.LOSS: {}}, every_n_steps=1, log_spaced=False, loss_ema=0.5)
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=6)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        trainer.fit(module, random_token_loader(300))

    assert trainer.global_step == 6  # not stopped
    rows = [json.loads(line) for line in (tmp_path / HISTORY_FILE).read_text().splitlines()]
    readings = {r["step"]: r["values"][keys.LOSS] for r in rows if r.get("kind") == "measurement"}
    assert sorted(readings) == [1, 2, 3, 4, 5, 6]
    # the EMA by hand over the finite losses of batches 0-2 (steps 1-3)
    ema, want = None, []
    for loss in module.losses[:3]:
        ema = loss if ema is None else 0.5 * ema + 0.5 * loss
        want.append(ema)
    assert [readings[s] for s in (1, 2, 3)] == pytest.approx(want)
    assert all(math.isnan(readings[s]) for s in (4, 5, 6)), readings  # was the step-3 EMA
    warnings = [r.getMessage() for r in caplog.records if "training loss is nan" in r.getMessage()]
    assert len(warnings) == 1 and "at step 4" in warnings[0], warnings
    assert monitor.events == []  # NaN never looks like a transition


def test_a_nan_training_loss_raises_with_strict(tmp_path):
    torch.manual_seed(0)
    monitor = TransitionMonitor({keys.LOSS: {}}, every_n_steps=1, log_spaced=False, strict=True)
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=4)
    with pytest.raises(RuntimeError, match="training loss is nan at step 2"):
        trainer.fit(_DivergingLM(nan_from=1), random_token_loader(300))


def test_nan_evaluations_neither_fire_nor_hide_a_transition():
    # A step from 0.01 to 0.8 at step 120 (evaluations every 10 steps), confirmed at step 150 by
    # the default rule; NaN evaluations before it, at it and while it is confirmed change nothing.
    values = [0.01] * 12 + [0.8] * 12
    detector = TransitionDetector(keys.HEADS_INDUCTION_MAX)
    events = []
    for i, value in enumerate(values):
        for nan_step in (10 * i - 5,) if i in (3, 12, 13) else ():
            assert detector.update(nan_step, NAN) is None
        event = detector.update(10 * i, value)
        if event is not None:
            events.append(event)
    assert [(e.step, e.confirmed_step) for e in events] == [(120, 150)]
    assert events[0].before == pytest.approx(0.01) and events[0].after == pytest.approx(0.8)
    only_nan = TransitionDetector(keys.HEADS_INDUCTION_MAX)
    assert all(only_nan.update(10 * i, NAN) is None for i in range(30))

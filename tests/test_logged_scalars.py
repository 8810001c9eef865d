"""The numbers users read: every logged PPP and head scalar, in the history file, TensorBoard and
the CSV logger, equals the measure functions called directly on the weights it was measured on.

A real Trainer, a user's own LightningModule, the real PPPMonitor and AttentionMonitor. Entropy is
also recomputed from ``output_attentions=True`` by hand (``-Σ p ln p``), not through the library.
A monitor that swapped two keys (mean and SE, coefficient and mean surprisal), logged bits as
nats, or measured other weights than those at its step fails here.
"""

from __future__ import annotations

import copy
import json
import math

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning_helpers import quiet_trainer, token_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import GPT2Config, GPT2LMHeadModel

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor, PPPMonitor
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.measures import (
    add_baseline_columns,
    all_head_scores,
    delta_loglik,
    syntactic_scores,
    word_surprisal,
)
from phasewatch.report.history import HISTORY_FILE

MEASURE_AT = (2, 5)
MAX_STEPS = 5
SEQ_LEN, PROBE_BATCH = 20, 4
PPP_CHECKED = (
    keys.PPP_DELTA_LL,
    keys.PPP_DELTA_LL_SE,
    keys.PPP_SURPRISAL_COEF,
    keys.PPP_SURPRISAL_MEAN,
    keys.PPP_N_WORDS,
    keys.PPP_DELTA_LL_TOKCTRL,
    keys.PPP_DELTA_LL_TOKCTRL_SE,
)
HEADS_CHECKED = (
    keys.ATTN_ENTROPY_MEAN,
    keys.HEADS_SYNTACTIC_MAX,
    keys.HEADS_SAS,
    keys.HEADS_INDUCTION_MAX,
    keys.HEADS_PREV_TOKEN_MAX,
    keys.HEADS_DUPLICATE_TOKEN_MAX,
)


def _gpt2(vocab_size: int) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=32, n_positions=128, bos_token_id=0
    )
    return GPT2LMHeadModel(config)


class UserLM(L.LightningModule):
    """A user's module: an HF causal LM as ``self.model``, the tokenizer as ``self.tokenizer``."""

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model = _gpt2(len(tokenizer))

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        loss = self.model(input_ids=ids, labels=ids).loss
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


class WeightsAt(L.Callback):
    """Copies the model's weights at the steps the monitors measure (after that step's update)."""

    def __init__(self, steps) -> None:
        self.steps, self.weights = set(steps), {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            self.weights[trainer.global_step] = copy.deepcopy(pl_module.model.state_dict())


@pytest.fixture(scope="module")
def one_story(ns_corpus):
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_story, ns_tokenizer, ns_token_ids):
    """A short run with both monitors and two loggers; the weights at each measurement."""
    root = tmp_path_factory.mktemp("logged")
    L.seed_everything(0)
    module = UserLM(ns_tokenizer)
    weights = WeightsAt(MEASURE_AT)
    ppp = PPPMonitor(one_story, steps=MEASURE_AT, control_tokens="both")
    heads = AttentionMonitor(
        steps=MEASURE_AT,
        seq_len=SEQ_LEN,
        probe_batch=PROBE_BATCH,
        entropy_stories=1,
        syntactic_stories=1,
        heatmap_every=0,
    )
    tb, csv = TensorBoardLogger(root, name="tb"), CSVLogger(root, name="csv")
    trainer = quiet_trainer(root, [weights, ppp, heads], max_steps=MAX_STEPS, logger=[tb, csv])
    trainer.fit(module, token_loader(ns_token_ids, batch_size=4, length=64))
    csv.save()
    return trainer, tb, csv, weights.weights


def _model_at(weights: dict, vocab_size: int) -> GPT2LMHeadModel:
    model = _gpt2(vocab_size)
    model.load_state_dict(weights)
    return model.eval()


def _entropy_by_hand(model: GPT2LMHeadModel, ids: list[int]) -> float:
    """Mean over layers, heads and query positions 1..T-1 of -Σ_j p_ij ln p_ij (nats)."""
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions
    stacked = torch.stack(attentions).double()  # [L, 1, H, T, T]
    p = stacked[..., 1:, :]  # query 0 sees one key: entropy 0, left out by definition
    h = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)  # [L, 1, H, T-1]
    return float(h.mean())


@pytest.fixture(scope="module")
def expected(run, one_story, ns_corpus, ns_tokenizer):
    """step → key → the value computed by calling the measure functions on that step's weights."""
    _, _, _, weights = run
    deps = load_dependencies()
    story_text = one_story.texts[one_story.stories[0]]
    bos = ns_tokenizer.bos_token_id
    entropy_ids = ([bos] + ns_tokenizer(story_text, add_special_tokens=False)["input_ids"])[:128]
    out = {}
    for step in MEASURE_AT:
        model = _model_at(weights[step], len(ns_tokenizer))
        surprisal, n_tokens = word_surprisal(
            model, ns_tokenizer, one_story, return_token_counts=True
        )
        frame = add_baseline_columns(one_story.frame).assign(surprisal=surprisal, n_tokens=n_tokens)
        plain = delta_loglik(frame, spillover=4, folds=10)
        tokctrl = delta_loglik(
            frame, baseline=("length", "log_freq", "n_tokens"), spillover=4, folds=10
        )
        syntax = syntactic_scores(model, ns_tokenizer, ns_corpus, deps, max_stories=1)
        scores = dict(all_head_scores(model, seq_len=SEQ_LEN, batch_size=PROBE_BATCH, seed=0))
        out[step] = {
            keys.PPP_DELTA_LL: plain.mean,
            keys.PPP_DELTA_LL_SE: plain.se,
            keys.PPP_SURPRISAL_COEF: plain.coef[0],  # current word's coefficient, ms/bit
            keys.PPP_SURPRISAL_MEAN: float(surprisal.mean()),  # bits
            keys.PPP_N_WORDS: plain.n,
            keys.PPP_DELTA_LL_TOKCTRL: tokctrl.mean,
            keys.PPP_DELTA_LL_TOKCTRL_SE: tokctrl.se,
            keys.ATTN_ENTROPY_MEAN: _entropy_by_hand(model, entropy_ids),
            keys.HEADS_SYNTACTIC_MAX: float(syntax.per_head.max()),
            keys.HEADS_SAS: float(syntax.sas),
            keys.HEADS_INDUCTION_MAX: float(scores["induction"].max()),
            keys.HEADS_PREV_TOKEN_MAX: float(scores["previous_token"].max()),
            keys.HEADS_DUPLICATE_TOKEN_MAX: float(scores["duplicate_token"].max()),
            "per_head": {**scores, "syntactic": syntax.per_head},
        }
    return out


def _history_values(log_dir) -> dict[str, list[tuple[int, float]]]:
    """key → [(step, value)] from the raw history file (JSON lines), in file order."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(f"{log_dir}/{HISTORY_FILE}", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "measurement":
                for key, value in record["values"].items():
                    series.setdefault(key, []).append((record["step"], value))
    return series


def _tensorboard_values(log_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        key: [(e.step, e.value) for e in events.Scalars(key)] for key in events.Tags()["scalars"]
    }


def _csv_values(log_dir) -> dict[str, list[tuple[int, float]]]:
    frame = pd.read_csv(f"{log_dir}/metrics.csv")
    return {
        key: [
            (int(s), float(v))
            for s, v in zip(frame["step"], frame[key], strict=True)
            if not math.isnan(v)
        ]
        for key in frame.columns
        if key != "step"
    }


def test_the_test_can_tell_the_scalars_apart(expected):
    """A swap of two keys could only pass unseen if their values agreed: they differ here."""
    for step_values in expected.values():
        pairs = [
            (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE),
            (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL),
            (keys.PPP_SURPRISAL_COEF, keys.PPP_SURPRISAL_MEAN),
            (keys.HEADS_SYNTACTIC_MAX, keys.HEADS_SAS),
        ]
        for a, b in pairs:
            assert step_values[a] != pytest.approx(step_values[b], rel=1e-3), (a, b)
        # bits, not nats: a 300-token vocabulary after 2-5 steps is near ln(300)/ln(2) bits/token
        assert 4.0 < step_values[keys.PPP_SURPRISAL_MEAN] < 40.0
    # the two measurements saw different weights
    first, last = (expected[s] for s in MEASURE_AT)
    assert first[keys.PPP_SURPRISAL_MEAN] != pytest.approx(last[keys.PPP_SURPRISAL_MEAN], rel=1e-4)


@pytest.mark.parametrize("key", PPP_CHECKED + HEADS_CHECKED)
def test_history_file_holds_what_the_measure_functions_give(run, expected, key):
    _, tb, _, _ = run
    logged = _history_values(tb.log_dir)[key]
    assert [step for step, _ in logged] == list(MEASURE_AT)
    for step, value in logged:
        assert value == pytest.approx(expected[step][key], rel=1e-6, abs=1e-9), (key, step)


@pytest.mark.parametrize("key", PPP_CHECKED + HEADS_CHECKED)
def test_tensorboard_and_csv_hold_the_same_numbers_at_the_same_steps(run, expected, key):
    trainer, tb, csv, _ = run
    tb_logged, csv_logged = _tensorboard_values(tb.log_dir)[key], _csv_values(csv.log_dir)[key]
    # both loggers on one step axis, a fixed offset from the trainer steps measured (the history's)
    assert [s for s, _ in tb_logged] == [s for s, _ in csv_logged]
    offset = tb_logged[0][0] - MEASURE_AT[0]
    assert offset in (0, -1)  # global_step, or Lightning's own metrics' step
    for name, logged in (("tensorboard", tb_logged), ("csv", csv_logged)):
        assert [step - offset for step, _ in logged] == list(MEASURE_AT), (name, logged)
        for (_, value), step in zip(logged, MEASURE_AT, strict=True):
            # TensorBoard stores float32
            assert value == pytest.approx(expected[step][key], rel=1e-6, abs=1e-6), (name, step)
    # what EarlyStopping / ModelCheckpoint read is the last measurement
    last = expected[MEASURE_AT[-1]][key]
    assert float(trainer.callback_metrics[key]) == pytest.approx(last, rel=1e-6, abs=1e-6)


def test_history_per_head_maps_are_the_measures_per_head_at_each_step(run, expected):
    """The ``heads`` records (what the report's heatmaps draw) hold every head, in [layer, head]."""
    _, tb, _, _ = run
    with open(f"{tb.log_dir}/{HISTORY_FILE}", encoding="utf-8") as f:
        records = [r for r in map(json.loads, f) if r.get("kind") == "heads"]
    assert [r["step"] for r in records] == list(MEASURE_AT)
    for record in records:
        for name, scores in expected[record["step"]]["per_head"].items():
            logged = torch.tensor(record["per_head"][name])
            assert logged.shape == (2, 2), name
            torch.testing.assert_close(logged, scores.float(), atol=1e-6, rtol=0)

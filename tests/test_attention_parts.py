"""AttentionMonitor's parts fail alone, and its defaults fit a model's context (issue 9)."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, token_loader

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.measures import all_head_scores, attention_entropy, syntactic_scores
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.models import as_probe_model


def fit_once(root, monitor, module, loader) -> None:
    """One optimizer step on one CPU process; the monitor measures at step 0."""
    quiet_trainer(root, [monitor], max_steps=1).fit(module, loader)


def _short_model(ns_tokenizer) -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(vocab_size=len(ns_tokenizer), n_positions=64, tokenizer=ns_tokenizer)


def test_defaults_measure_every_part_of_a_64_position_model(tmp_path, ns_tokenizer, ns_token_ids):
    module = _short_model(ns_tokenizer)
    initial = copy.deepcopy(module.model)  # measured at step 0, before any update
    monitor = AttentionMonitor(steps=[0], strict=True)  # every other argument at its default
    fit_once(tmp_path, monitor, module, token_loader(ns_token_ids[: 8 * 64], length=64))

    values = {key: rows[0][2] for key, rows in monitor.history.items()}
    # seq_len adapts: min(50, 64 // 2) = 32 random tokens per repeat, 64 tokens in all
    want = all_head_scores(initial, seq_len=32, batch_size=32, seed=0)
    assert values[keys.HEADS_INDUCTION_MAX] == pytest.approx(float(want["induction"].max()))
    assert values[keys.HEADS_PREV_TOKEN_MAX] == pytest.approx(float(want["previous_token"].max()))
    # entropy on 64 tokens (the context) of the first 4 stories, BOS first
    bos = ns_tokenizer.bos_token_id
    texts = list(monitor._measure.corpus.texts.values())[:4]
    ids = torch.tensor([([bos] + ns_tokenizer(t)["input_ids"])[:64] for t in texts])
    entropy = attention_entropy(initial, ids)
    assert values[keys.ATTN_ENTROPY_MEAN] == pytest.approx(float(entropy.mean()))
    syntactic = syntactic_scores(
        initial, ns_tokenizer, monitor._measure.corpus, load_dependencies(), max_stories=2
    )
    assert values[keys.HEADS_SYNTACTIC_MAX] == pytest.approx(float(syntactic.per_head.max()))


def test_a_failing_part_is_logged_and_the_others_are_kept(
    tmp_path, ns_tokenizer, ns_token_ids, caplog
):
    module = _short_model(ns_tokenizer)
    # a window longer than the model's 64 positions: the syntactic part fails, nothing else
    monitor = AttentionMonitor(steps=[0], probe_batch=4, syntactic_max_tokens=100)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        fit_once(tmp_path, monitor, module, token_loader(ns_token_ids[: 8 * 64], length=64))

    assert keys.HEADS_SYNTACTIC_MAX not in monitor.history
    assert keys.HEADS_SAS not in monitor.history
    for key in (keys.HEADS_INDUCTION_MAX, keys.HEADS_PREV_TOKEN_MAX, keys.ATTN_ENTROPY_MEAN):
        assert [row[0] for row in monitor.history[key]] == [0], key
    assert sorted(monitor.last_per_head) == [
        "duplicate_token",
        "entropy",
        "induction",
        "previous_token",
    ]
    assert monitor.failures == 0  # the measurement itself was taken
    warning = "\n".join(r.getMessage() for r in caplog.records if "syntactic part" in r.message)
    assert "step 0" in warning and "syntactic_max_tokens" in warning
    assert "max_tokens`=100 exceeds the model's max_length=64" in warning


def test_strict_raises_on_a_failing_part(tmp_path, ns_tokenizer, ns_token_ids):
    monitor = AttentionMonitor(steps=[0], probe_batch=4, syntactic_max_tokens=100, strict=True)
    with pytest.raises(RuntimeError, match="exceeds the model's max_length=64"):
        fit_once(
            tmp_path,
            monitor,
            _short_model(ns_tokenizer),
            token_loader(ns_token_ids[: 8 * 64], length=64),
        )


def test_entropy_off_keeps_the_syntactic_score(tmp_path, ns_tokenizer, ns_token_ids):
    monitor = AttentionMonitor(steps=[0], probe_batch=4, entropy_stories=0, strict=True)
    fit_once(
        tmp_path,
        monitor,
        _short_model(ns_tokenizer),
        token_loader(ns_token_ids[: 8 * 64], length=64),
    )
    assert keys.ATTN_ENTROPY_MEAN not in monitor.history
    assert keys.HEADS_SYNTACTIC_MAX in monitor.history


def test_head_measure_raises_without_keep_going_and_when_every_part_fails(ns_corpus):
    model = as_probe_model(TinyLM(n_positions=16).model)  # 16 positions: 2 x 50 cannot fit
    with pytest.raises(ValueError, match="use seq_len <= 8"):
        HeadMeasure(seq_len=50, probe_batch=2).measure(model)
    measure = HeadMeasure(seq_len=50, probe_batch=2)
    with pytest.raises(RuntimeError, match="every part of the head measurement failed"):
        measure.measure(model, keep_going=True)
    assert list(measure.failures) == ["repeated_token"]
    # the adaptive default fits: 16 // 2 = 8 tokens per repeat
    scalars, per_head = HeadMeasure(probe_batch=2).measure(model)
    assert scalars[keys.HEADS_INDUCTION_MAX] == float(per_head["induction"].max())
    assert per_head["induction"].shape == (2, 2) and measure.probe_seq_len(16) == 50
    assert HeadMeasure().probe_seq_len(16) == 8 and HeadMeasure().probe_seq_len(None) == 50
    assert HeadMeasure().probe_seq_len(1024) == 50


def test_the_adaptive_default_keeps_the_checkpoint_state_key_of_seq_len_50():
    # checkpoints saved when seq_len defaulted to 50 still restore into AttentionMonitor()
    assert AttentionMonitor().state_key == AttentionMonitor(seq_len=50).state_key
    assert AttentionMonitor(seq_len=32).state_key != AttentionMonitor().state_key


def test_a_missing_corpus_turns_off_entropy_and_syntactic_but_not_the_head_scores(
    tmp_path, ns_tokenizer, ns_token_ids, caplog
):
    monitor = AttentionMonitor(steps=[0], probe_batch=4, data_dir=str(tmp_path / "no-data"))
    loader = token_loader(ns_token_ids[: 4 * 64], batch_size=4)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        fit_once(tmp_path, monitor, _short_model(ns_tokenizer), loader)
    logged = {key for key in monitor.history}
    assert keys.HEADS_INDUCTION_MAX in logged and keys.HEADS_PREV_TOKEN_MAX in logged
    assert keys.ATTN_ENTROPY_MEAN not in logged and keys.HEADS_SAS not in logged
    assert caplog.text.count("could not be loaded") == 1
    assert "the head scores go on" in caplog.text
    strict = AttentionMonitor(steps=[0], data_dir=str(tmp_path / "no-data"), strict=True)
    with pytest.raises(RuntimeError, match="data_dir"):
        fit_once(tmp_path, strict, _short_model(ns_tokenizer), loader)

"""Surprisal numbers that look real but are not: words with no tokens, a tokenizer that does not
match the model, NaN weights. Each is an error naming the words (or sizes) and the fix."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, token_loader
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel

from phasewatch import keys
from phasewatch.callbacks import PPPMonitor
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.surprisal import word_surprisal

STORY = "The old cat sat on the mat and watched the dog run past the house twice ."


def _corpus(*stories: list[str]) -> ReadingTimeCorpus:
    rows = [
        {"story": s + 1, "position": p + 1, "word": w, "rt": 250.0 + 10 * p}
        for s, words in enumerate(stories)
        for p, w in enumerate(words)
    ]
    return ReadingTimeCorpus("toy", pd.DataFrame(rows))


def _gpt2(vocab_size: int, n_positions: int = 64) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


def _ascii_bpe() -> Tokenizer:
    """BPE with no unknown token, trained on ASCII words only: other characters are dropped."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=60, special_tokens=["<s>"])
    tok.train_from_iterator([STORY.lower()] * 5, trainer)
    return tok


# --- words that tokenize to nothing ---------------------------------------------------------------


def test_words_with_no_tokens_are_an_error_naming_them():
    tok = _ascii_bpe()
    corpus = _corpus(["the", "cat", "sat"], ["the", "日本", "cat", "ß", "sat"])
    # Independent count: the words the tokenizer itself gives no ids.
    assert [w for w in ("the", "日本", "ß") if not tok.encode(w).ids] == ["日本", "ß"]
    with pytest.raises(ValueError) as info:
        word_surprisal(_gpt2(tok.get_vocab_size()), tok, corpus, bos_token_id=0)
    message = str(info.value)
    assert message.startswith("2 of 8 words tokenize to no tokens")
    assert "'日本' (story 2, position 2), 'ß' (story 2, position 4)" in message
    assert "false 0 bits" in message and "Fix:" in message


def test_words_with_tokens_only_still_measure():
    tok = _ascii_bpe()
    bits = word_surprisal(
        _gpt2(tok.get_vocab_size()), tok, _corpus(["the", "cat", "sat"]), bos_token_id=0
    )
    assert bits.shape == (3,) and np.all(bits > 0)


def test_a_tokenizer_with_an_empty_vocabulary_is_an_error_not_ppp_zero():
    empty = Tokenizer(models.BPE())  # vocabulary size 0: every text encodes to no ids
    empty.pre_tokenizer = pre_tokenizers.Whitespace()
    assert empty.get_vocab_size() == 0 and empty.encode("the cat").ids == []
    words = STORY.split(" ")
    n = len(words)
    with pytest.raises(ValueError, match=rf"^{n} of {n} words tokenize to no tokens") as info:
        word_surprisal(_gpt2(8), empty, _corpus(words), bos_token_id=0)
    assert "vocabulary size 0" in str(info.value)
    assert "'The' (story 1, position 1)" in str(info.value) and f"and {n - 5} more" in str(
        info.value
    )


# --- tokenizer and model vocabularies that do not match ------------------------------------------


def test_ids_beyond_the_models_vocabulary_are_caught_before_the_forward_pass(monkeypatch):
    tok = _ascii_bpe()  # ids up to 59
    small = _gpt2(10)
    calls = []
    monkeypatch.setattr(small, "forward", lambda *a, **k: calls.append(1))
    corpus = _corpus(["the", "house", "twice"])
    highest = max(tok.encode("the house twice").ids)
    assert highest >= 10
    with pytest.raises(ValueError) as info:
        word_surprisal(small, tok, corpus, bos_token_id=0)
    message = str(info.value)
    assert f"produced id {highest}, but the model has only 10 ids (0 … 9)" in message
    assert f"vocabulary size is {tok.get_vocab_size()}" in message
    assert "pass the tokenizer the model was trained with" in message
    assert calls == []  # no forward pass was made


def test_a_plain_logits_function_learns_the_vocabulary_size_from_one_token():
    """A function says no vocabulary size: one 1-token pass of id 0 reads it (was IndexError)."""
    tok = _ascii_bpe()
    small = _gpt2(10)
    seen = []

    def logits(ids):
        seen.append(tuple(ids.shape))
        return small(ids).logits

    with pytest.raises(ValueError, match=r"but the model has only 10 ids"):
        word_surprisal(logits, tok, _corpus(["the", "house"]), bos_token_id=0, context_length=64)
    assert seen == [(1, 1)]


def test_a_bos_id_beyond_the_models_vocabulary_is_named():
    tok = _ascii_bpe()
    model = _gpt2(tok.get_vocab_size())
    with pytest.raises(ValueError, match=r"^the BOS id 500, but the model has only"):
        word_surprisal(model, tok, _corpus(["the"]), bos_token_id=500)


# --- NaN weights ----------------------------------------------------------------------------------


def _poison(model: GPT2LMHeadModel) -> None:
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.fill_(float("nan"))


def test_nan_weights_are_an_error_naming_the_words_never_nan_surprisal():
    tok = _ascii_bpe()
    model = _gpt2(tok.get_vocab_size())
    corpus = _corpus(["the", "cat", "sat"])
    assert np.all(np.isfinite(word_surprisal(model, tok, corpus, bos_token_id=0)))
    _poison(model)
    with torch.no_grad():  # independent: the model's own logits are NaN
        assert torch.isnan(model(torch.tensor([[0, 1]])).logits).all()
    with pytest.raises(ValueError) as info:
        word_surprisal(model, tok, corpus, bos_token_id=0)
    message = str(info.value)
    assert message.startswith("surprisal is not finite (NaN or inf bits) for 3 of 3 words")
    assert "'the' (story 1, position 1), 'cat' (story 1, position 2)" in message
    assert "NaN weights" in message


def _nan_run(tmp_path, tokenizer, token_ids, *, strict: bool):
    words = STORY.split(" ")
    corpus = _corpus(words, words[::-1])
    L.seed_everything(0)
    module = TinyLM(vocab_size=len(tokenizer), tokenizer=tokenizer)
    _poison(module.model)
    monitor = PPPMonitor(corpus, steps=(2,), folds=2, spillover=1, strict=strict)
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=2)
    trainer.fit(module, token_loader(token_ids[:1024]))
    return monitor


def test_ppp_monitor_logs_the_nan_failure_instead_of_a_number(
    tmp_path, caplog, ns_tokenizer, ns_token_ids
):
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        monitor = _nan_run(tmp_path, ns_tokenizer, ns_token_ids, strict=False)
    assert monitor.failures == 1
    assert "surprisal is not finite" in caplog.text and "measurement is skipped" in caplog.text
    assert not monitor.history.get(keys.PPP_DELTA_LL)


def test_ppp_monitor_strict_raises_on_nan_surprisal(tmp_path, ns_tokenizer, ns_token_ids):
    with pytest.raises(RuntimeError, match="surprisal is not finite"):
        _nan_run(tmp_path, ns_tokenizer, ns_token_ids, strict=True)

"""PPP corpus forward: how windows are batched changes no score, and padding never enters one.

References are independent of the measure's batching: one plain forward per context, float64
log-softmax (test_surprisal's chain-rule helpers, which follow the documented window rule).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_surprisal import (
    LONG_WORDS,
    _full_context_nll_bits,
    _model,
    _per_token_windowed_nll_bits,
    _sequence,
    _tokenizer_object,
    _word_sums,
    _wrap,
)

from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.surprisal import _batches, _plan_windows, word_surprisal

LN2 = math.log(2.0)
NATS_TOLERANCE = 1e-5  # per word: float32 logits vs the float64 reference


def _first_stories(corpus: ReadingTimeCorpus, n: int) -> ReadingTimeCorpus:
    stories = list(dict.fromkeys(corpus.frame["story"]))[:n]
    frame = corpus.frame[corpus.frame["story"].isin(stories)].reset_index(drop=True)
    return ReadingTimeCorpus("ns-part", frame)


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_word_surprisal_matches_one_context_per_pass_on_natural_stories(
    ns_corpus, ns_tokenizer, batch_size
):
    """Every word of 2 stories (~5,000 tokens, ~250 windows of 32): batching changes no score."""
    corpus = _first_stories(ns_corpus, 2)
    model = _model(len(ns_tokenizer), n_positions=32)
    bits, n_tokens = word_surprisal(
        model, ns_tokenizer, corpus, batch_size=batch_size, return_token_counts=True
    )
    for story in corpus.frame["story"].unique():
        rows = (corpus.frame["story"] == story).to_numpy()
        words = corpus.frame.loc[rows, "word"].astype(str).tolist()
        reference = _per_token_windowed_nll_bits(model, _sequence(ns_tokenizer, words), width=32)
        expected = _word_sums(reference, n_tokens[rows])
        assert np.abs(bits[rows] - expected).max() * LN2 < NATS_TOLERANCE
        assert bits[rows].sum() == pytest.approx(reference.sum(), abs=1e-3)  # chain rule


def test_padding_never_enters_a_score():
    """Twelve stories of 3 … 36 words, all shorter than the context, in one right-padded batch:
    each word's surprisal is that of its story run alone, unpadded."""
    tokenizer = _wrap(_tokenizer_object())
    model = _model(len(tokenizer), n_positions=128)
    stories = [LONG_WORDS[: 3 * (k + 1)] for k in range(12)]
    rows = [
        {"story": s + 1, "position": p + 1, "word": w, "rt": 300.0}
        for s, words in enumerate(stories)
        for p, w in enumerate(words)
    ]
    corpus = ReadingTimeCorpus("ragged", pd.DataFrame(rows))
    bits, n_tokens = word_surprisal(
        model, tokenizer, corpus, batch_size=12, return_token_counts=True
    )
    lengths = {len(_sequence(tokenizer, words)) for words in stories}
    assert len(lengths) == 12 and max(lengths) <= 128  # one batch, eleven rows padded
    for s, words in enumerate(stories):
        mine = (corpus.frame["story"] == s + 1).to_numpy()
        alone = _full_context_nll_bits(model, _sequence(tokenizer, words))
        expected = _word_sums(alone, n_tokens[mine])
        assert np.abs(bits[mine] - expected).max() * LN2 < NATS_TOLERANCE


def test_batches_never_mix_fully_scored_and_half_scored_windows():
    """A batch of later windows (each scores only its last W // 2 targets) holds no first window,
    so the model is asked only for those positions; first windows go longest first."""
    width = 100
    lengths = [2574, 2600, 40, 260, 77, 1003]  # BOS + tokens per story
    windows = [w for i, n in enumerate(lengths) for w in _plan_windows(i, n, width)]
    batches = list(_batches(windows, 8))
    batched = [w for b in batches for w in b]
    assert len(batched) == len(windows) and set(batched) == set(windows)  # each window once
    for batch in batches:
        whole = {w.first_target == w.start + 1 for w in batch}
        assert len(whole) == 1
        if whole == {False}:
            assert all(w.end - w.start == width for w in batch)
    first = [w for b in batches for w in b if w.first_target == w.start + 1]
    assert [w.end - w.start for w in first] == sorted(
        (w.end - w.start for w in first), reverse=True
    )


def test_logit_rows_computed_are_the_scored_ones(ns_corpus, ns_tokenizer):
    """Logits asked of the model (``logits_to_keep``) on 2 stories at context 32: the scored
    targets, one row per window (it predicts past the window), and at most W // 2 rows per story
    for its last window (it scores fewer targets than the later windows it shares a batch with).
    A first window batched with later ones would ask for their whole context: 15 rows each."""
    corpus = _first_stories(ns_corpus, 2)
    model = _model(len(ns_tokenizer), n_positions=32)
    rows_asked = []

    def count(_module, args, kwargs):
        ids = kwargs["input_ids"]
        rows_asked.append(ids.shape[0] * (kwargs.get("logits_to_keep") or ids.shape[1]))

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        _, n_tokens = word_surprisal(
            model, ns_tokenizer, corpus, batch_size=8, return_token_counts=True
        )
    finally:
        handle.remove()
    n_windows = sum(
        len(_plan_windows(0, int(n) + 1, 32))
        for n in pd.Series(n_tokens).groupby(corpus.frame["story"].to_numpy()).sum()
    )
    needed = int(n_tokens.sum()) + n_windows
    assert needed <= sum(rows_asked) <= needed + 2 * (32 // 2)

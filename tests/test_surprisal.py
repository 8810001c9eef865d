"""Word surprisal: chain rule vs independent forwards, alignment, windows, model kinds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import as_transformers_tokenizer, byte_level_bpe
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.surprisal import word_surprisal
from phasewatch.measures.tokenization import ByteTokenizer, tokenize_words

TRAINING_SENTENCES = [
    "The cat sat on the mat, and the dog didn't mind.",
    "“Don't go,” she said — but he went to the café anyway.",
    "It was a well-known story -- the kind people tell at night.",
    "A naïve reader isn't the same as a careless one.",
] * 4

SHORT_TEXT = "He said, “Don't go —” to the naïve café owner in Zürich; it isn't 日本."
LONG_TEXT = (
    "Once upon a time the old cat didn't sit on the mat -- it sat by the “window” and "
    "watched the well-known dog run — past the café, twice. "
) * 3
SHORT_WORDS, LONG_WORDS = SHORT_TEXT.split(" "), LONG_TEXT.strip().split(" ")


def _tokenizer_object(trim_offsets: bool | None = None) -> Tokenizer:
    return byte_level_bpe(TRAINING_SENTENCES, trim_offsets=trim_offsets)


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return as_transformers_tokenizer(tok)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return _wrap(_tokenizer_object())


def _model(vocab_size: int, n_positions: int, bos: int = 0, size: int = 2) -> GPT2LMHeadModel:
    """A random GPT-2 with ``size`` layers and heads, 16 dims per head."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=16 * size,
        n_layer=size,
        n_head=size,
        bos_token_id=bos,
        eos_token_id=bos,
        initializer_range=0.3,  # peaked, varied next-token distributions
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def model64(tokenizer) -> GPT2LMHeadModel:
    return _model(len(tokenizer), n_positions=64)


@pytest.fixture(scope="module")
def model512(tokenizer) -> GPT2LMHeadModel:
    return _model(len(tokenizer), n_positions=512)


def _corpus(*stories: list[str]) -> ReadingTimeCorpus:
    rows = [
        {"story": s + 1, "position": p + 1, "word": w, "rt": 300.0}
        for s, words in enumerate(stories)
        for p, w in enumerate(words)
    ]
    return ReadingTimeCorpus("toy", pd.DataFrame(rows))


def _sequence(tokenizer, words: list[str]) -> list[int]:
    return [tokenizer.bos_token_id, *tokenizer(" ".join(words), add_special_tokens=False).input_ids]


def _full_context_nll_bits(model, seq: list[int]) -> np.ndarray:
    """−log2 P(seq[t] | seq[:t]) for t = 1 … N from one plain forward."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq])).logits[0].double(), -1)
    return -logp[:-1].gather(-1, torch.tensor(seq[1:]).unsqueeze(-1)).squeeze(
        -1
    ).numpy() / math.log(2)


def _window_start(t: int, n_seq: int, width: int) -> int:
    """Documented window rule: first window [0, W); then windows of stride W // 2 ending at b(t)."""
    if n_seq <= width or t < width:
        return 0
    stride = width // 2
    end = min(width + stride * math.ceil((t - width + 1) / stride), n_seq)
    return end - width


def _per_token_windowed_nll_bits(model, seq: list[int], width: int) -> np.ndarray:
    """−log2 P(seq[t] | seq[start(t):t]) for every target t, from its documented context alone.

    Targets sharing a context start share one forward (the model is causal, so the logits at
    t − 1 of seq[start : last + 1] see exactly seq[start:t]).
    """
    targets = np.arange(1, len(seq))
    starts = np.array([_window_start(t, len(seq), width) for t in targets])
    out = np.zeros(len(targets))
    with torch.no_grad():
        for start in np.unique(starts):
            group = targets[starts == start]
            assert group.max() - start < width  # every input fits the model's window
            context = torch.tensor([seq[start : group.max() + 1]])
            logp = torch.log_softmax(model(context).logits[0].double(), -1)
            rows = torch.from_numpy(group - 1 - start)
            nll = -logp[rows, torch.tensor([seq[t] for t in group])]
            out[group - 1] = nll.numpy() / math.log(2)
    return out


def _word_sums(token_bits: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    return np.add.reduceat(token_bits, np.concatenate([[0], np.cumsum(n_tokens)[:-1]]))


def test_word_surprisal_sums_to_sequence_nll(model512, tokenizer):
    corpus = _corpus(SHORT_WORDS, LONG_WORDS)
    bits, n_tokens = word_surprisal(model512, tokenizer, corpus, return_token_counts=True)
    assert bits.dtype == np.float64 and bits.shape == (len(corpus),)
    for story, words in ((1, SHORT_WORDS), (2, LONG_WORDS)):
        rows = (corpus.frame["story"] == story).to_numpy()
        seq = _sequence(tokenizer, words)
        assert story == 1 or len(seq) > 64  # the long story would need windows at n_positions=64
        reference = _full_context_nll_bits(model512, seq)
        assert bits[rows].sum() == pytest.approx(reference.sum(), abs=1e-4)
        assert n_tokens[rows].sum() == len(seq) - 1
        np.testing.assert_allclose(bits[rows], _word_sums(reference, n_tokens[rows]), atol=1e-4)


@pytest.mark.parametrize("width_from", ["config", "option"])
def test_sliding_window_scores_every_token_once_with_half_window_context(
    model64, model512, tokenizer, width_from
):
    corpus = _corpus(LONG_WORDS, SHORT_WORDS)
    if width_from == "config":
        model, options = model64, {}
    else:
        model, options = model512, {"context_length": 64}
    bits, n_tokens = word_surprisal(
        model, tokenizer, corpus, batch_size=3, return_token_counts=True, **options
    )
    seq = _sequence(tokenizer, LONG_WORDS)
    assert len(seq) > 3 * 64  # several windows
    rows = (corpus.frame["story"] == 1).to_numpy()
    assert n_tokens[rows].sum() == len(seq) - 1
    reference = _per_token_windowed_nll_bits(model, seq, width=64)
    assert bits[rows].sum() == pytest.approx(reference.sum(), abs=1e-4)
    np.testing.assert_allclose(bits[rows], _word_sums(reference, n_tokens[rows]), atol=1e-4)
    # a narrower context changes the numbers: the windows really cut the context
    full = _full_context_nll_bits(model512, seq)
    if width_from == "option":
        assert abs(full.sum() - reference.sum()) > 1e-2


@pytest.mark.parametrize("trim_offsets", [None, True, False])
def test_alignment_gives_each_word_its_leading_space_and_punctuation(trim_offsets):
    tok = _wrap(_tokenizer_object(trim_offsets))
    words = [*SHORT_WORDS, "“Hello,”", "--", "—", "well-known", "n't", "éé", "“”"]
    tokens = tokenize_words(tok, words)
    assert np.all(np.diff(tokens.word_index) >= 0)
    assert len(tokens.ids) == len(tok(tokens.text, add_special_tokens=False).input_ids)
    for i, word in enumerate(words):
        ids = tokens.ids[tokens.word_index == i].tolist()
        assert tok.decode(ids) == (" " if i > 0 else "") + word


def test_output_follows_frame_row_order(model512, tokenizer):
    corpus = _corpus(SHORT_WORDS, LONG_WORDS[:20])
    shuffled = corpus.frame.sample(frac=1.0, random_state=1)
    in_order = pd.Series(word_surprisal(model512, tokenizer, corpus), index=corpus.frame.index)
    out = word_surprisal(model512, tokenizer, shuffled)
    np.testing.assert_allclose(out, in_order.loc[shuffled.index].to_numpy(), atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_model_mode_is_restored(tokenizer, training):
    model = _model(len(tokenizer), n_positions=64).train(training)
    bits = word_surprisal(model, tokenizer, _corpus(SHORT_WORDS))
    assert model.training is training
    reference = _full_context_nll_bits(model.eval(), _sequence(tokenizer, SHORT_WORDS))
    assert bits.sum() == pytest.approx(reference.sum(), abs=1e-4)  # scored without dropout


def test_every_sub_module_mode_is_restored(tokenizer):
    model = _model(len(tokenizer), n_positions=64).train()
    model.transformer.h[0].eval()  # a frozen part: its dropout must stay off
    modes = {name: m.training for name, m in model.named_modules()}
    word_surprisal(model, tokenizer, _corpus(SHORT_WORDS))
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_logits_of_the_last_position_only_are_a_clear_error(model64, tokenizer):
    def last_only(ids):  # what a nanoGPT-style forward returns without targets
        return model64(ids).logits[:, -1:]

    with pytest.raises(ValueError, match=r"logits at every position.*AttentionModel"):
        word_surprisal(last_only, tokenizer, _corpus(SHORT_WORDS), context_length=64)


def test_a_device_other_than_the_models_is_rejected(model64, tokenizer):
    with pytest.raises(ValueError, match="ids go to the model's own device"):
        word_surprisal(model64, tokenizer, _corpus(SHORT_WORDS), device="meta")


@pytest.mark.parametrize("returns", ["tensor", "tuple", "output"])
def test_callable_model_matches_hf_model(model64, tokenizer, returns):
    def call(ids):
        out = model64(ids)
        return {"tensor": out.logits, "tuple": (out.logits, None), "output": out}[returns]

    corpus = _corpus(LONG_WORDS, SHORT_WORDS)
    expected = word_surprisal(model64, tokenizer, corpus)
    got = word_surprisal(call, tokenizer, corpus, context_length=64)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_callable_without_context_length_asks_for_it(model64, tokenizer):
    with pytest.raises(ValueError, match="pass `context_length=`"):
        word_surprisal(lambda ids: model64(ids).logits, tokenizer, _corpus(SHORT_WORDS))


@pytest.mark.parametrize(
    ("context_length", "message"),
    [(65, "takes at most 64 positions; pass a value <= 64"), (1, "must be >= 2")],
)
def test_context_length_outside_the_model_is_rejected(model64, tokenizer, context_length, message):
    with pytest.raises(ValueError, match=message):
        word_surprisal(model64, tokenizer, _corpus(SHORT_WORDS), context_length=context_length)


def test_byte_tokenizer_counts_utf8_bytes_and_sums_to_nll():
    model = _model(257, n_positions=64, bos=256)
    corpus = _corpus(SHORT_WORDS)
    bits, n_tokens = word_surprisal(
        model, ByteTokenizer(bos_token_id=256), corpus, return_token_counts=True
    )
    expected_counts = [len(((" " if i else "") + w).encode()) for i, w in enumerate(SHORT_WORDS)]
    assert n_tokens.tolist() == expected_counts
    text = " ".join(SHORT_WORDS).encode()
    model512 = _model(257, n_positions=512, bos=256)
    bits512 = word_surprisal(model512, ByteTokenizer(256), corpus)
    reference = _full_context_nll_bits(model512, [256, *text])
    assert bits512.sum() == pytest.approx(reference.sum(), abs=1e-4)
    assert np.all(np.isfinite(bits)) and np.all(bits > 0)


def test_raw_tokenizers_tokenizer_needs_a_bos_id_and_then_matches(model64, tokenizer):
    raw = _tokenizer_object()
    corpus = _corpus(SHORT_WORDS)
    with pytest.raises(ValueError, match="pass `bos_token_id=`"):
        word_surprisal(model64, raw, corpus)
    got = word_surprisal(model64, raw, corpus, bos_token_id=tokenizer.bos_token_id)
    np.testing.assert_allclose(got, word_surprisal(model64, tokenizer, corpus), atol=1e-6)


class _IdsOnlyTokenizer:
    bos_token_id = 0

    def encode(self, text, add_special_tokens=False):
        return [ord(c) % 300 for c in text]


def test_tokenizer_without_offsets_is_rejected(model64):
    with pytest.raises(TypeError, match="must give character offsets"):
        word_surprisal(model64, _IdsOnlyTokenizer(), _corpus(SHORT_WORDS))


def test_missing_columns_are_named(model64, tokenizer):
    with pytest.raises(ValueError, match=r"lacks the columns \['word'\]"):
        word_surprisal(model64, tokenizer, pd.DataFrame({"story": [1], "position": [1]}))


def _boundary_ids(tokenizer) -> list[int]:
    whitespace = (" ", "\t", "\n", "\r", "\x0b", "\x0c")
    spaced = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith(whitespace)]
    return [*spaced, tokenizer.eos_token_id]


def test_whitespace_correction_moves_boundary_probability_onto_each_word(model512, tokenizer):
    corpus = _corpus(SHORT_WORDS, LONG_WORDS[:30])
    plain, n_tokens = word_surprisal(model512, tokenizer, corpus, return_token_counts=True)
    corrected = word_surprisal(model512, tokenizer, corpus, whitespace_correction=True)
    boundary = torch.tensor(_boundary_ids(tokenizer))
    for story, words in ((1, SHORT_WORDS), (2, LONG_WORDS[:30])):
        rows = (corpus.frame["story"] == story).to_numpy()
        seq = _sequence(tokenizer, words)
        with torch.no_grad():
            logp = torch.log_softmax(model512(torch.tensor([seq])).logits[0].double(), -1)
        # log2 P_B at the position predicting sequence index t (t = len(seq): after the text)
        log2_pb = torch.logsumexp(logp[:, boundary], -1).numpy() / math.log(2)
        first = 1 + np.concatenate([[0], np.cumsum(n_tokens[rows])])  # first token of each word
        after = log2_pb[first[1:] - 1]
        before = log2_pb[first[:-1] - 1]
        before[0] = 0.0
        np.testing.assert_allclose(corrected[rows], plain[rows] - after + before, atol=1e-4)
        # identity: Σ s' = Σ s − log2 P_B(after the last word) = sequence NLL − log2 P_B(end)
        nll = _full_context_nll_bits(model512, seq).sum()
        assert corrected[rows].sum() == pytest.approx(nll - log2_pb[-1], abs=1e-4)


def test_whitespace_correction_identity_holds_across_windows(model64, tokenizer):
    corpus = _corpus(LONG_WORDS)
    plain = word_surprisal(model64, tokenizer, corpus, batch_size=2)
    corrected = word_surprisal(model64, tokenizer, corpus, whitespace_correction=True, batch_size=2)
    seq = _sequence(tokenizer, LONG_WORDS)
    with torch.no_grad():  # P_B after the text, from the last window: the last 64 ids
        logp = torch.log_softmax(model64(torch.tensor([seq[-64:]])).logits[0, -1].double(), -1)
    log2_pb_end = torch.logsumexp(logp[_boundary_ids(tokenizer)], -1).item() / math.log(2)
    assert corrected.sum() == pytest.approx(plain.sum() - log2_pb_end, abs=1e-4)
    assert not np.allclose(corrected, plain)


# --- Natural Stories ------------------------------------------------------------------------------


def test_natural_stories_every_word_gets_its_own_tokens(ns_corpus, ns_tokenizer):
    frame = ns_corpus.frame
    assert len(frame) == 10_256
    tok = ns_tokenizer
    model = _model(len(tok), n_positions=256, bos=tok.bos_token_id, size=1)
    bits, n_tokens = word_surprisal(model, tok, ns_corpus, batch_size=16, return_token_counts=True)
    assert np.all(np.isfinite(bits)) and np.all(bits > 0) and np.all(n_tokens >= 1)
    for _, group in frame.groupby("story", sort=False):
        group = group.sort_values("position")
        words, rows = group["word"].tolist(), frame.index.get_indexer(group.index)
        tokens = tokenize_words(tok, words)
        assert n_tokens[rows].tolist() == np.bincount(tokens.word_index).tolist()
        assert n_tokens[rows].sum() == len(tok(tokens.text, add_special_tokens=False).input_ids)
        starts = np.concatenate([[0], np.cumsum(n_tokens[rows])])
        for i, word in enumerate(words):
            ids = tokens.ids[starts[i] : starts[i + 1]].tolist()
            assert tok.decode(ids) == (" " if i > 0 else "") + word

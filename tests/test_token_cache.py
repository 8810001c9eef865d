"""Stories are tokenized once per tokenizer: the second measurement reuses the first's tokens, a
different tokenizer (or the same object changed in place) tokenizes again, and the numbers are
those of tokenizing afresh."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from tiny_models import tiny_gpt2
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from phasewatch import keys
from phasewatch.measures import token_cache, tokenization
from phasewatch.measures.snapshot import HeadMeasure, PPPMeasure
from phasewatch.measures.surprisal import word_surprisal
from phasewatch.models import ProbeModel

N_STORIES, WORDS_PER_STORY = 3, 150


@pytest.fixture()
def frame(ns_corpus):
    """The first 150 words of 3 stories: small enough for a fast forward pass."""
    stories = ns_corpus.frame["story"].drop_duplicates().tolist()[:N_STORIES]
    rows = ns_corpus.frame[ns_corpus.frame["story"].isin(stories)]
    return rows[rows["position"] <= WORDS_PER_STORY].reset_index(drop=True)


@pytest.fixture()
def encodes(monkeypatch):
    """Counts the tokenizer encodes (every tokenization goes through ``encode_with_offsets``)."""
    calls = []
    real = tokenization.encode_with_offsets

    def counting(tokenizer, text):
        calls.append(text)
        return real(tokenizer, text)

    monkeypatch.setattr(tokenization, "encode_with_offsets", counting)
    token_cache.clear_cache()
    yield calls
    token_cache.clear_cache()


def _other_tokenizer(ns_corpus, vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(ns_corpus.texts.values()), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def test_the_second_measurement_tokenizes_nothing_and_gives_the_same_numbers(
    frame, ns_tokenizer, encodes
):
    probe = ProbeModel(tiny_gpt2(len(ns_tokenizer)))
    measure = PPPMeasure(frame, folds=3)
    first, _ = measure.measure(probe, ns_tokenizer)
    assert len(encodes) == N_STORIES
    second, _ = measure.measure(probe, ns_tokenizer)
    assert len(encodes) == N_STORIES  # a cache hit: no story encoded again
    assert second == first
    assert first[keys.PPP_N_WORDS] > 0
    # the same numbers as tokenizing afresh
    token_cache.clear_cache()
    fresh, _ = PPPMeasure(frame, folds=3).measure(probe, ns_tokenizer)
    assert len(encodes) == 2 * N_STORIES
    assert fresh == first


def test_another_tokenizer_misses_the_cache(frame, ns_corpus, ns_tokenizer, encodes):
    model = tiny_gpt2(len(ns_tokenizer))
    word_surprisal(model, ns_tokenizer, frame)
    other = _other_tokenizer(ns_corpus, 280)
    cached = word_surprisal(model, other, frame)
    assert len(encodes) == 2 * N_STORIES
    token_cache.clear_cache()
    np.testing.assert_array_equal(word_surprisal(model, other, frame), cached)


def test_a_tokenizer_changed_in_place_misses_the_cache(frame, ns_tokenizer, encodes):
    tokenizer = copy.deepcopy(ns_tokenizer)
    model = tiny_gpt2(len(tokenizer) + 1)
    before, before_counts = word_surprisal(model, tokenizer, frame, return_token_counts=True)
    assert len(tokenization.encode_with_offsets(tokenizer, " surrounded")[0]) > 1
    tokenizer.add_tokens([" surrounded"])  # same object, same id(); now one new token
    encodes.clear()
    after, after_counts = word_surprisal(model, tokenizer, frame, return_token_counts=True)
    assert len(encodes) == N_STORIES  # tokenized again, not served the stale tokens
    assert not np.array_equal(after_counts, before_counts)
    token_cache.clear_cache()
    np.testing.assert_array_equal(word_surprisal(model, tokenizer, frame), after)
    assert not np.array_equal(after, before)


def test_a_tokenizer_without_a_serialized_form_is_never_cached(frame, encodes):
    class Opaque(tokenization.ByteTokenizer):
        """Encodes like ByteTokenizer, but is not one: nothing says what decides its ids."""

    assert token_cache.tokenizer_fingerprint(Opaque(bos_token_id=0)) is None
    assert token_cache.tokenizer_fingerprint(tokenization.ByteTokenizer()) == "ByteTokenizer"
    model = tiny_gpt2(257)
    word_surprisal(model, Opaque(bos_token_id=256), frame)
    word_surprisal(model, Opaque(bos_token_id=256), frame)
    assert len(encodes) == 2 * N_STORIES


def test_the_entropy_probe_follows_a_changed_tokenizer(ns_corpus, ns_tokenizer):
    """HeadMeasure kept its first entropy probe for ever, whatever tokenizer came next."""
    tokenizer = copy.deepcopy(ns_tokenizer)
    measure = HeadMeasure(corpus=ns_corpus, entropy_stories=2, entropy_tokens=64)
    first = measure.entropy_probe(tokenizer, 128)
    assert measure.entropy_probe(tokenizer, 128) is first  # same tokenizer: kept, not encoded
    tokenizer.add_tokens([" you"])  # in place: same object
    changed = measure.entropy_probe(tokenizer, 128)
    new_id = len(tokenizer) - 1
    assert bool((changed == new_id).any())  # the new token's id is in the new probe
    assert not bool((first == new_id).any())
    assert measure.entropy_probe(tokenizer, 32).shape[1] == 32  # a shorter context: rebuilt

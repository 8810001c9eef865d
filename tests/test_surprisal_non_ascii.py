"""Surprisal of non-ASCII words (German, Greek, CJK) under a byte-level BPE that splits their
characters over several tokens: word surprisal = the sum of its tokens' surprisal (chain rule),
with word boundaries found without offsets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import as_transformers_tokenizer, byte_level_bpe
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.surprisal import word_surprisal

TEXT = (
    "Die Straße über dem Fluß führt nach Zürich, sagte Müller. "
    "Ο σκύλος τρέχει γρήγορα στην Αθήνα. "
    "東京は大きい都市です。 «Ça va?» — naïve café 日本語 ελληνικά 𝔘nicode😀 ok."
)
WORDS = TEXT.split(" ")
#: ASCII training text: every non-ASCII character stays split into its UTF-8 bytes; with the
#: multilingual text added, merges also join bytes of neighbouring characters (``(k, k+2)``).
ASCII = ["The dog ran to the river and back, said the old man."] * 8
MULTILINGUAL = [*ASCII, "Straße Fluß Zürich σκύλος Αθήνα 東京 都市 日本語 ελληνικά"] * 4


def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet inverted: printable bytes stand for themselves, the other
    bytes for the characters from U+0100 on, in byte order (Radford et al., 2019)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    chars = {b: chr(b) for b in printable} | {b: chr(256 + k) for k, b in enumerate(others)}
    return {c: b for b, c in chars.items()}


_BYTE_OF = _byte_of_char()


def _tokenizer(trim_offsets: bool | None, training: list[str]) -> PreTrainedTokenizerFast:
    return as_transformers_tokenizer(byte_level_bpe(training, trim_offsets=trim_offsets))


def _token_bytes(tokenizer, token_id: int) -> bytes:
    """A byte-level token's bytes, read from its vocabulary string (no decoder involved)."""
    return bytes(_BYTE_OF[c] for c in tokenizer.convert_ids_to_tokens(token_id))


def _tokens_per_word(tokenizer, words: list[str]) -> list[list[int]]:
    """Each word's tokens as the difference of the encodings of successive prefixes of the text
    (byte-level pre-tokens never cross the space before a word): no offsets used."""
    per_word, before = [], []
    for i in range(len(words)):
        ids = tokenizer(" ".join(words[: i + 1]), add_special_tokens=False).input_ids
        assert ids[: len(before)] == before  # the prefix property the rule relies on
        per_word.append(ids[len(before) :])
        before = ids
    return per_word


@pytest.mark.parametrize("training", [ASCII, MULTILINGUAL], ids=["ascii", "multilingual"])
@pytest.mark.parametrize("trim_offsets", [None, True])
def test_non_ascii_word_surprisal_is_the_sum_of_its_byte_tokens(trim_offsets, training):
    tokenizer = _tokenizer(trim_offsets, training)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.3,
    )
    model = GPT2LMHeadModel(config).eval()
    corpus = ReadingTimeCorpus(
        "multilingual",
        pd.DataFrame(
            {"story": 1, "position": range(1, len(WORDS) + 1), "word": WORDS, "rt": 300.0}
        ),
        language="de",
    )
    bits, n_tokens = word_surprisal(model, tokenizer, corpus, return_token_counts=True)

    per_word = _tokens_per_word(tokenizer, WORDS)
    for word, ids in zip(WORDS, per_word, strict=True):  # the bytes of each word, space included
        assert b"".join(_token_bytes(tokenizer, i) for i in ids).decode() in (word, " " + word)
    split = [
        w
        for w, ids in zip(WORDS, per_word, strict=True)
        if any(not _decodes(_token_bytes(tokenizer, i)) for i in ids)
    ]
    assert {"σκύλος", "東京は大きい都市です。", "ελληνικά", "𝔘nicode😀"} <= set(split)
    assert n_tokens.tolist() == [len(ids) for ids in per_word]

    sequence = [tokenizer.bos_token_id, *(i for ids in per_word for i in ids)]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([sequence])).logits[0].double(), -1)
    token_bits = -logp[:-1].gather(-1, torch.tensor(sequence[1:])[:, None])[:, 0] / math.log(2)
    expected = np.add.reduceat(token_bits.numpy(), np.cumsum([0, *n_tokens.tolist()[:-1]]))
    np.testing.assert_allclose(bits, expected, rtol=1e-5, atol=1e-5)
    assert bits.min() > 0 and np.ptp(bits) > 1


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

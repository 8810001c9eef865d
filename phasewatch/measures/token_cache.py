"""Stories tokenized once per tokenizer: a cache of :func:`tokenize_words` keyed by the tokenizer's
content and the words, so a measurement repeated during training does not re-tokenize the corpus.

The key holds a digest of the tokenizer's serialized form (Hugging Face ``tokenizer.json``: the
vocabulary, merges, normalizer, pre-tokenizer and added tokens), never just its ``id``: a tokenizer
changed in place (``add_tokens``) or another one at a recycled address misses the cache. A
tokenizer with no serialized form (other than :class:`ByteTokenizer`, whose encoding is fixed) is
not cached: it is tokenized every time, as before.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from phasewatch.measures import tokenization
from phasewatch.measures._lru import lru_get
from phasewatch.measures.tokenization import ByteTokenizer, TextTokenizer, TokenizedText

#: Most stories kept (least recently used dropped first); Natural Stories has 10.
MAX_STORIES = 256

_cache: OrderedDict[tuple[str, tuple[str, ...]], TokenizedText] = OrderedDict()


def tokenizer_fingerprint(tokenizer: Any) -> str | None:
    """A digest of everything that decides the tokenizer's ids, or None when it cannot be read.

    ``type name:blake2b(tokenizer.json)`` for a Hugging Face fast tokenizer or a
    ``tokenizers.Tokenizer`` (a few ms for a 50k vocabulary); ``"ByteTokenizer"`` for
    :class:`ByteTokenizer`.
    """
    if isinstance(tokenizer, TextTokenizer):
        tokenizer = tokenizer.tokenizer
    if type(tokenizer) is ByteTokenizer:  # a subclass may encode otherwise
        return "ByteTokenizer"
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    to_str = getattr(backend, "to_str", None)
    if not callable(to_str):
        return None
    try:
        serialized = to_str()
    except Exception:  # a backend that cannot serialize itself: no cache, never a stale one
        return None
    digest = hashlib.blake2b(serialized.encode("utf-8"), digest_size=16).hexdigest()
    return f"{type(tokenizer).__qualname__}:{digest}"


def tokenize_stories(tokenizer: Any, stories: Sequence[Sequence[str]]) -> list[TokenizedText]:
    """:func:`tokenize_words` of each story's words, from the cache when this tokenizer (same
    serialized content) has tokenized the same words before. The arrays are read-only."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    out = []
    for story in stories:
        words = tuple(str(w) for w in story)
        if fingerprint is None:
            out.append(tokenization.tokenize_words(tokenizer, list(words)))
            continue
        make = functools.partial(_read_only_tokens, tokenizer, words)
        out.append(lru_get(_cache, (fingerprint, words), make, MAX_STORIES))
    return out


def _read_only_tokens(tokenizer: Any, words: tuple[str, ...]) -> TokenizedText:
    tokenized = tokenization.tokenize_words(tokenizer, list(words))
    tokenized.ids.flags.writeable = False
    tokenized.word_index.flags.writeable = False
    return tokenized


def clear_cache() -> None:
    """Forget every cached tokenization."""
    _cache.clear()

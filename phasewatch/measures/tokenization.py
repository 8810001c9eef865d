"""Subword tokens ↔ corpus words: encode a story with character offsets, assign tokens to words.

A story is scored as one text, its words joined by single spaces. The space before a word and any
punctuation attached to it belong to that word, so word ``i > 0`` owns the characters
``[start_i - 1, end_i)`` and the first word owns ``[0, end_0)``: the words partition the text.

A token is assigned to the word that owns the character just before its *effective end*, the largest
end offset seen so far in the token sequence (``max(e_1, …, e_j)``). This one rule covers

- a token spanning a space and a word (``"Ġcat"``): it ends in ``cat``, so it belongs to ``cat``;
- a lone space token, whether its offsets include the space (``(k, k+1)``) or were trimmed to a
  zero-width ``(k+1, k+1)``: it belongs to the following word;
- the later bytes of a multi-byte character that byte-level BPE splits over several tokens, which
  carry the character's offsets or a zero-width offset: they belong to the word of the token before.

Every token gets exactly one word and word indices never decrease, so summing token surprisals per
word preserves the total: Σ_words surprisal = sequence negative log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Characters a byte-level / SentencePiece vocabulary uses to mark a token-initial space or newline.
WHITESPACE_MARKERS = ("Ġ", "▁", "Ċ", "ĉ", "č")

#: Unicode White_Space characters (Python's ``str.isspace`` also accepts the separators U+001C–1F).
WHITESPACE = frozenset(
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


@dataclass(frozen=True)
class ByteEncoding:
    """Token ids and character offsets of a text, as :class:`ByteTokenizer` returns them."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class ByteTokenizer:
    """Byte-level tokenizer for byte models: the UTF-8 bytes of a text are its token ids (0..255).

    Every byte of a character gets that character's offsets ``(k, k+1)`` (so the bytes of a
    multi-byte character all map to its word). ``bos_token_id`` / ``eos_token_id`` are ids the
    model reserves beyond the bytes (e.g. 256); they are optional here, but ``word_surprisal``
    needs a BOS id, from this tokenizer or from its ``bos_token_id=`` option.

    >>> ByteTokenizer().encode("é!").ids
    [195, 169, 33]
    """

    vocab_size = 256

    def __init__(self, bos_token_id: int | None = None, eos_token_id: int | None = None) -> None:
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id

    def encode(self, text: str, add_special_tokens: bool = False) -> ByteEncoding:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for k, char in enumerate(text):
            encoded = char.encode("utf-8")
            ids.extend(encoded)
            offsets.extend([(k, k + 1)] * len(encoded))
        return ByteEncoding(ids, offsets)

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"ByteTokenizer(bos_token_id={self.bos_token_id}, eos_token_id={self.eos_token_id})"


@dataclass(frozen=True)
class TokenizedText:
    """A story's text, its token ids (no BOS) and, per token, the index of its word."""

    text: str
    ids: np.ndarray
    word_index: np.ndarray
    n_words: int


class TextTokenizer:
    """One tokenizer, resolved once: ids with character offsets, BOS/EOS ids, vocabulary size.

    Every measure that tokenizes text (word surprisal, the entropy and syntactic probes) goes
    through this adapter, so they all put the same BOS in front of a text. Build it with
    :func:`as_text_tokenizer`.

    BOS rule: ``bos_token_id=`` if given, else the tokenizer's ``bos_token_id``, else its
    ``eos_token_id`` (GPT-2 and Pythia use one ``<|endoftext|>`` token for both; Aoyama & Wilcox's
    code puts ``eos_token_id`` in front of every story), else ``None`` (no BOS).

    Attributes:
        tokenizer: the wrapped tokenizer (Hugging Face fast, ``tokenizers.Tokenizer``,
            :class:`ByteTokenizer`, or anything :func:`encode_with_offsets` accepts).
        bos_token_id, eos_token_id: ids, or ``None``.
        vocab_size: ids the tokenizer can produce, added/special tokens included (``None`` if it
            does not say).
    """

    def __init__(
        self, tokenizer: Any, *, bos_token_id: int | None = None, eos_token_id: int | None = None
    ) -> None:
        if isinstance(tokenizer, TextTokenizer):
            bos_token_id = tokenizer._given_bos if bos_token_id is None else bos_token_id
            eos_token_id = tokenizer._given_eos if eos_token_id is None else eos_token_id
            tokenizer = tokenizer.tokenizer
        if tokenizer is None:
            raise TypeError("`tokenizer` is None; pass a tokenizer that gives character offsets")
        for name, value in (("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"`{name}` must be an int >= 0 or None, got {value!r}")
        self.tokenizer = tokenizer
        self._given_bos, self._given_eos = bos_token_id, eos_token_id
        self.eos_token_id = _first_id(eos_token_id, getattr(tokenizer, "eos_token_id", None))
        self.bos_token_id = _first_id(
            bos_token_id, getattr(tokenizer, "bos_token_id", None), self.eos_token_id
        )
        self.vocab_size = _vocab_size(tokenizer)

    def __repr__(self) -> str:
        return (
            f"TextTokenizer({type(self.tokenizer).__name__}, bos_token_id={self.bos_token_id}, "
            f"eos_token_id={self.eos_token_id}, vocab_size={self.vocab_size})"
        )

    def require_bos(self) -> int:
        """The BOS id; raises ``ValueError`` naming the fix when the tokenizer has none."""
        if self.bos_token_id is None:
            raise ValueError(
                f"the tokenizer ({type(self.tokenizer).__name__}) has no bos_token_id or "
                "eos_token_id; pass `bos_token_id=` (the id the model was trained to see at the "
                "start of a text) to the function or callback"
            )
        return self.bos_token_id

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and character offsets of ``text``, no special tokens added."""
        return encode_with_offsets(self.tokenizer, text)

    def tokenize_words(self, words: list[str]) -> TokenizedText:
        """Words joined by single spaces: ids (no BOS) and the word index of every token."""
        return tokenize_words(self.tokenizer, words)

    def whitespace_initial_mask(self, vocab_size: int) -> np.ndarray:
        """Mask of whitespace-initial ids (see :func:`whitespace_initial_mask`)."""
        return whitespace_initial_mask(self.tokenizer, vocab_size)


def as_text_tokenizer(
    tokenizer: Any, *, bos_token_id: int | None = None, eos_token_id: int | None = None
) -> TextTokenizer:
    """``tokenizer`` as a :class:`TextTokenizer` (as is when it is one and no id is given)."""
    if isinstance(tokenizer, TextTokenizer) and bos_token_id is None and eos_token_id is None:
        return tokenizer
    return TextTokenizer(tokenizer, bos_token_id=bos_token_id, eos_token_id=eos_token_id)


def _first_id(*candidates: Any) -> int | None:
    for candidate in candidates:
        if candidate is not None:
            return int(candidate)
    return None


def _vocab_size(tokenizer: Any) -> int | None:
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if hasattr(backend, "get_vocab_size"):
        return int(backend.get_vocab_size(with_added_tokens=True))
    if hasattr(tokenizer, "__len__"):
        return len(tokenizer)
    size = getattr(tokenizer, "vocab_size", None)
    return None if size is None else int(size)


def _unwrap(tokenizer: Any) -> Any:
    return tokenizer.tokenizer if isinstance(tokenizer, TextTokenizer) else tokenizer


def encode_with_offsets(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and character offsets of ``text``, without special tokens.

    Accepts a Hugging Face fast tokenizer (called with ``return_offsets_mapping=True``), a
    ``tokenizers.Tokenizer`` or any object whose ``encode(text)`` returns ``.ids`` and ``.offsets``
    (e.g. :class:`ByteTokenizer`), or a :class:`TextTokenizer` around one.
    """
    tokenizer = _unwrap(tokenizer)
    if callable(tokenizer):
        try:
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        except (NotImplementedError, KeyError, TypeError, ValueError) as err:
            raise _no_offsets_error(tokenizer) from err
    if hasattr(tokenizer, "encode"):
        try:
            enc = tokenizer.encode(text, add_special_tokens=False)
        except TypeError:
            enc = tokenizer.encode(text)
        if hasattr(enc, "ids") and hasattr(enc, "offsets"):
            return list(enc.ids), [tuple(o) for o in enc.offsets]
    raise _no_offsets_error(tokenizer)


def _no_offsets_error(tokenizer: Any) -> TypeError:
    return TypeError(
        f"`tokenizer` must give character offsets per token, got {type(tokenizer).__name__} "
        "which does not; word surprisal maps subword tokens to words by their offsets. Pass a "
        "Hugging Face fast tokenizer (PreTrainedTokenizerFast, offsets via "
        "return_offsets_mapping=True), a `tokenizers.Tokenizer`, or "
        "phasewatch.measures.tokenization.ByteTokenizer for byte-level models."
    )


def word_char_starts(words: list[str]) -> tuple[str, np.ndarray]:
    """The text (words joined by single spaces) and where each word's own characters start."""
    starts = np.empty(len(words), dtype=np.int64)
    cursor = 0
    for i, w in enumerate(words):
        starts[i] = cursor
        cursor += len(w) + 1
    return " ".join(words), starts


def assign_tokens_to_words(offsets: list[tuple[int, int]], word_starts: np.ndarray) -> np.ndarray:
    """Word index per token: the word owning the character before the token's effective end.

    ``word_starts[i]`` is where word ``i``'s own characters start; word ``i > 0`` also owns the
    space before it. See the module docstring for the rule.
    """
    if len(offsets) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.maximum.accumulate(np.asarray([e for _, e in offsets], dtype=np.int64))
    owned_from = word_starts - 1
    owned_from[0] = 0
    return np.maximum(np.searchsorted(owned_from, ends - 1, side="right") - 1, 0)


def tokenize_words(tokenizer: Any, words: list[str]) -> TokenizedText:
    """Tokenize words joined by single spaces; return ids and the word index of every token."""
    text, starts = word_char_starts(words)
    ids, offsets = encode_with_offsets(tokenizer, text)
    return TokenizedText(
        text=text,
        ids=np.asarray(ids, dtype=np.int64),
        word_index=assign_tokens_to_words(offsets, starts),
        n_words=len(words),
    )


def whitespace_initial_mask(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """Boolean mask over ``vocab_size`` ids: tokens whose text begins with whitespace.

    A token counts when its decoded text starts with a Unicode whitespace character
    (:data:`WHITESPACE`: space, tab, newline, CR, VT, FF, NBSP, …), or its raw vocabulary
    string starts with a space/newline marker (``Ġ``, ``▁``, ``Ċ``, ``ĉ``, ``č``: byte-level BPE and
    SentencePiece). Special tokens never count. Ids beyond the tokenizer's vocabulary do not count.
    """
    tokenizer = _unwrap(tokenizer)
    mask = np.zeros(vocab_size, dtype=bool)
    if isinstance(tokenizer, ByteTokenizer):
        mask[[i for i in (9, 10, 11, 12, 13, 32) if i < vocab_size]] = True
        return mask
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    n = min(vocab_size, _tokenizer_vocab_size(backend, tokenizer))
    raw = _raw_tokens(backend, tokenizer, n)
    decoded = _decoded_tokens(backend, tokenizer, n)
    special = _special_ids(tokenizer)
    for i in range(n):
        if i in special:
            continue
        mask[i] = decoded[i][:1] in WHITESPACE or (raw[i] or "").startswith(WHITESPACE_MARKERS)
    return mask


def _tokenizer_vocab_size(backend: Any, tokenizer: Any) -> int:
    if hasattr(backend, "get_vocab_size"):
        return int(backend.get_vocab_size(with_added_tokens=True))
    return len(tokenizer)


def _raw_tokens(backend: Any, tokenizer: Any, n: int) -> list[str | None]:
    if hasattr(backend, "id_to_token"):
        return [backend.id_to_token(i) for i in range(n)]
    return list(tokenizer.convert_ids_to_tokens(list(range(n))))


def _decoded_tokens(backend: Any, tokenizer: Any, n: int) -> list[str]:
    single = [[i] for i in range(n)]
    if hasattr(backend, "decode_batch"):
        return list(backend.decode_batch(single, skip_special_tokens=False))
    return [tokenizer.decode(ids) for ids in single]


def _special_ids(tokenizer: Any) -> set[int]:
    ids = getattr(tokenizer, "all_special_ids", None)
    if ids is not None:
        return set(ids)
    if hasattr(tokenizer, "get_added_tokens_decoder"):
        return {i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}
    return set()

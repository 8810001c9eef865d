"""A small byte-level BPE tokenizer for the demo, trained in seconds and cached on disk.

GPT-2's scheme (Radford et al., 2019): text is mapped to bytes, bytes to 256 printable symbols,
and BPE merges are learned on top, so any string can be encoded. ``<|endoftext|>`` is the only
special token and serves as BOS, EOS and padding. The smallest vocabulary is therefore
257 (256 byte symbols + ``<|endoftext|>``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"
MIN_VOCAB_SIZE = 257


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with ``vocab_size`` entries (``<|endoftext|>`` is id 0).

    Args:
        texts: training documents.
        vocab_size: total vocabulary including the 256 byte symbols and ``<|endoftext|>``;
            at least :data:`MIN_VOCAB_SIZE`.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``bos_token = eos_token = pad_token = "<|endoftext|>"``
        that supports ``return_offsets_mapping=True`` (character offsets, untrimmed as in GPT-2).
    """
    _check_vocab_size(vocab_size)
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return _wrap(core)


def load_or_train_tokenizer(
    texts: Sequence[str],
    vocab_size: int,
    cache_dir: str | os.PathLike[str] | None,
    *,
    corpus_key: str | None = None,
) -> PreTrainedTokenizerFast:
    """Load the tokenizer for ``(vocab_size, corpus)`` from ``cache_dir``, else train and save it.

    The file is ``cache_dir/bpe-<vocab_size>-<corpus_key>.json``, where ``corpus_key`` defaults to
    the SHA-256 (16 hex chars) of ``texts``; a second run on the same corpus reuses it.
    ``cache_dir=None`` trains without caching.
    """
    _check_vocab_size(vocab_size)
    if cache_dir is None:
        return train_bpe_tokenizer(texts, vocab_size)
    path = tokenizer_cache_path(cache_dir, vocab_size, corpus_key or texts_fingerprint(texts))
    if path.exists():
        return _wrap(Tokenizer.from_file(str(path)))
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tokenizer.backend_tokenizer.save(str(tmp))
    tmp.replace(path)  # atomic: a concurrent run never reads half a file
    return tokenizer


def tokenizer_cache_path(
    cache_dir: str | os.PathLike[str], vocab_size: int, corpus_key: str
) -> Path:
    """Where :func:`load_or_train_tokenizer` keeps the tokenizer for this vocabulary and corpus."""
    return Path(cache_dir) / f"bpe-{vocab_size}-{corpus_key}.json"


def texts_fingerprint(texts: Iterable[str]) -> str:
    """SHA-256 (first 16 hex chars) of the texts, separated so that ``["ab"] != ["a", "b"]``."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def _wrap(core: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        unk_token=None,
        model_max_length=int(1e30),
        clean_up_tokenization_spaces=False,
    )


def _check_vocab_size(vocab_size: int) -> None:
    if int(vocab_size) != vocab_size or vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"`vocab_size` must be an integer >= {MIN_VOCAB_SIZE} (256 byte symbols + "
            f"{END_OF_TEXT}), got {vocab_size!r}."
        )

"""Training data for the demo: crops of the novels, with a stated share of repeated random spans.

Each training sequence ``i`` is one of two kinds:

- *natural*: ``context_length`` consecutive tokens of the training novels (concatenated, with
  ``<|endoftext|>`` between novels), starting at an offset drawn uniformly at random;
- *repeated* (synthetic): a span of ``n`` tokens drawn uniformly from ``[1, vocab_size)``,
  ``n`` uniform in ``span_lengths``, tiled to ``context_length`` (``style="tile"``), or a span of
  ``context_length // 2`` tokens written twice (``style="twice"``, the induction probe's own
  distribution). The next token after the first repeat is predictable only by copying: an
  induction head (Olsson et al., 2022).

Sequence ``i`` is repeated iff ``floor((i + 1) f) > floor(i f)`` with ``f = repeat_fraction``, so
every run of ``k`` consecutive sequences holds ``floor(k f)`` or ``ceil(k f)`` repeated ones: the
share is exact in every batch (±1), not just on average. Everything else about sequence ``i`` is
drawn from ``numpy.random.default_rng([seed, i])``: the data do not depend on batch size,
workers or DDP rank, and a resumed run sees the same sequences.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from phasewatch.corpora import cache_root
from phasewatch.demo.novels import NovelSplits, load_novels, split_train_validation
from phasewatch.demo.tokenizer import load_or_train_tokenizer

REPEAT_STYLES = ("tile", "twice")


def is_repeated(index: int, repeat_fraction: float) -> bool:
    """Whether sequence ``index`` is a repeated random span: ``floor((i+1)f) > floor(i f)``."""
    return math.floor((index + 1) * repeat_fraction) > math.floor(index * repeat_fraction)


def repeated_span(
    rng: np.random.Generator,
    context_length: int,
    vocab_size: int,
    span_lengths: tuple[int, int],
    style: str = "tile",
) -> np.ndarray:
    """One synthetic sequence (int64, ``[context_length]``) of a random span repeated.

    Tokens are uniform on ``[1, vocab_size)`` (id 0, ``<|endoftext|>``, is never drawn).
    ``style="tile"``: span length uniform on ``span_lengths`` (inclusive), tiled and cut to
    ``context_length``. ``style="twice"``: a span of ``context_length // 2`` written twice
    (an odd ``context_length`` gets one more random token at the end).
    """
    if style == "tile":
        n = int(rng.integers(span_lengths[0], span_lengths[1] + 1))
        span = rng.integers(1, vocab_size, n)
        return np.tile(span, -(-context_length // n))[:context_length].astype(np.int64)
    if style == "twice":
        half = context_length // 2
        span = rng.integers(1, vocab_size, half)
        tail = rng.integers(1, vocab_size, context_length - 2 * half)
        return np.concatenate([span, span, tail]).astype(np.int64)
    raise ValueError(f"`style` can be one of {REPEAT_STYLES}, got {style!r}.")


class MixedSequences(Dataset):
    """Random crops of ``token_ids``, with a ``repeat_fraction`` of repeated random spans.

    As output, item ``i`` is ``{"input_ids": LongTensor[context_length], "is_repeated": bool}``.
    See the module docstring for how sequence ``i`` is drawn.

    Args:
        token_ids: 1-D token ids of the training text (at least ``context_length`` of them).
        context_length: tokens per sequence (``T``).
        vocab_size: synthetic tokens are drawn from ``[1, vocab_size)``.
        repeat_fraction: share of repeated sequences, in ``[0, 1]``.
        span_lengths: ``(min, max)`` span length for ``style="tile"``, inclusive.
        style: ``"tile"`` or ``"twice"``.
        num_samples: sequences per epoch (crops are random, so any number works).
        seed: seed of every draw.
    """

    def __init__(
        self,
        token_ids: np.ndarray,
        context_length: int,
        vocab_size: int,
        *,
        repeat_fraction: float,
        span_lengths: tuple[int, int] = (5, 50),
        style: str = "tile",
        num_samples: int = 1 << 20,
        seed: int = 0,
    ) -> None:
        token_ids = np.asarray(token_ids)
        if token_ids.ndim != 1 or len(token_ids) < context_length:
            raise ValueError(
                f"`token_ids` must be 1-D with at least context_length={context_length} tokens, "
                f"got shape {token_ids.shape}."
            )
        _check_repeat_options(repeat_fraction, span_lengths, style, context_length)
        self.token_ids = token_ids
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.repeat_fraction = float(repeat_fraction)
        self.span_lengths = (int(span_lengths[0]), int(span_lengths[1]))
        self.style = style
        self.num_samples = int(num_samples)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | bool]:
        rng = np.random.default_rng([self.seed, int(index)])
        repeated = is_repeated(int(index), self.repeat_fraction)
        if repeated:
            ids = repeated_span(
                rng, self.context_length, self.vocab_size, self.span_lengths, self.style
            )
        else:
            start = int(rng.integers(0, len(self.token_ids) - self.context_length + 1))
            ids = self.token_ids[start : start + self.context_length].astype(np.int64)
        return {"input_ids": torch.from_numpy(ids), "is_repeated": repeated}


class ValidationSequences(Dataset):
    """Consecutive non-overlapping windows of held-out text (natural text only).

    Item ``i`` is ``{"input_ids": token_ids[i*T : (i+1)*T], "is_repeated": False}``; at most
    ``max_sequences`` windows, spread evenly over the text when there are more.
    """

    def __init__(self, token_ids: np.ndarray, context_length: int, max_sequences: int) -> None:
        n_windows = len(token_ids) // context_length
        if n_windows < 1:
            raise ValueError(
                f"Validation text has {len(token_ids)} tokens, fewer than "
                f"context_length={context_length}; raise `val_fraction`."
            )
        picks = np.linspace(0, n_windows - 1, min(n_windows, max_sequences)).round()
        self.starts = (picks.astype(np.int64) * context_length).tolist()
        self.token_ids = np.asarray(token_ids)
        self.context_length = context_length

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | bool]:
        start = self.starts[index]
        ids = self.token_ids[start : start + self.context_length].astype(np.int64)
        return {"input_ids": torch.from_numpy(ids), "is_repeated": False}


class NovelsDataModule(L.LightningDataModule):
    """The novels, tokenized with a small byte-level BPE, as a Lightning data module.

    ``prepare_data`` (rank 0) trains or loads the tokenizer and tokenizes the novels once, caching
    both under ``cache_dir`` keyed by vocabulary size and corpus hash; ``setup`` reads the cache.
    Training batches mix natural crops with ``repeat_fraction`` repeated random spans (see
    :class:`MixedSequences`); validation is held-out natural text only.

    As output, a batch is ``{"input_ids": LongTensor[B, T], "is_repeated": BoolTensor[B]}``.

    Args:
        vocab_size: BPE vocabulary size (>= 257).
        context_length: tokens per sequence.
        batch_size: sequences per batch.
        repeat_fraction: share of training sequences that are repeated random spans, in [0, 1].
        span_lengths: ``(min, max)`` tokens of a repeated span (``style="tile"``).
        repeat_style: ``"tile"`` or ``"twice"``.
        val_fraction: share of each novel's paragraphs held out (its last paragraphs).
        val_sequences: at most this many validation windows (evenly spread).
        samples_per_epoch: training sequences per epoch (random crops; train with ``max_steps``).
        seed: seed of every draw.
        data_dir: folder holding ``english-novels-pd/`` (default ``$PHASEWATCH_DATA``).
        cache_dir: tokenizer and token-id cache (default ``<phasewatch cache>/demo``, i.e.
            ``$PHASEWATCH_CACHE/demo`` or ``~/.cache/phasewatch/demo``).
        num_workers: DataLoader workers.
        documents: train/validation documents to use instead of the novels (your own text, or
            a small corpus in tests); ``val_fraction`` and ``data_dir`` are then unused.
    """

    def __init__(
        self,
        vocab_size: int = 512,
        context_length: int = 100,
        batch_size: int = 32,
        *,
        repeat_fraction: float = 0.0,
        span_lengths: tuple[int, int] = (5, 50),
        repeat_style: str = "tile",
        val_fraction: float = 0.05,
        val_sequences: int = 256,
        samples_per_epoch: int = 1 << 20,
        seed: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        num_workers: int = 0,
        documents: NovelSplits | None = None,
    ) -> None:
        super().__init__()
        _check_repeat_options(repeat_fraction, span_lengths, repeat_style, context_length)
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.batch_size = batch_size
        self.repeat_fraction = repeat_fraction
        self.span_lengths = tuple(span_lengths)
        self.repeat_style = repeat_style
        self.val_fraction = val_fraction
        self.val_sequences = val_sequences
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.data_dir = data_dir
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "demo"
        self.num_workers = num_workers
        self.documents = documents
        self._tokenizer: PreTrainedTokenizerFast | None = None
        self._ids: dict[str, np.ndarray] | None = None

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The BPE tokenizer (trained on the training split, or loaded from the cache)."""
        if self._tokenizer is None:
            self._load()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def token_ids(self) -> dict[str, np.ndarray]:
        """``{"train": ids, "validation": ids}``: the novels, ``<|endoftext|>`` after each."""
        if self._ids is None:
            self._load()
        assert self._ids is not None
        return self._ids

    def prepare_data(self) -> None:
        self._load()

    def setup(self, stage: str | None = None) -> None:
        ids = self.token_ids
        self.train_dataset = MixedSequences(
            ids["train"],
            self.context_length,
            self.vocab_size,
            repeat_fraction=self.repeat_fraction,
            span_lengths=self.span_lengths,
            style=self.repeat_style,
            num_samples=self.samples_per_epoch,
            seed=self.seed,
        )
        self.val_dataset = ValidationSequences(
            ids["validation"], self.context_length, self.val_sequences
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            shuffle=False,  # the order is already random; keeps the repeat share exact per batch
            num_workers=self.num_workers,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_dataset, batch_size=self.batch_size, num_workers=self.num_workers
        )

    def _load(self) -> None:
        splits = self.documents
        if splits is None:
            splits = split_train_validation(load_novels(self.data_dir), self.val_fraction)
        key = splits.fingerprint()
        self._tokenizer = load_or_train_tokenizer(
            splits.train, self.vocab_size, self.cache_dir, corpus_key=key
        )
        path = self.cache_dir / f"ids-{self.vocab_size}-{key}.npz"
        if path.exists():
            with np.load(path) as cached:
                self._ids = {name: cached[name] for name in ("train", "validation")}
            return
        eos = self._tokenizer.eos_token_id
        self._ids = {
            "train": encode_documents(self._tokenizer, splits.train, eos),
            "validation": encode_documents(self._tokenizer, splits.validation, eos),
        }
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, **self._ids)
        tmp.replace(path)


def encode_documents(
    tokenizer: PreTrainedTokenizerFast, documents: Sequence[str], separator: int
) -> np.ndarray:
    """Token ids (int32) of ``documents``, each followed by ``separator`` (``<|endoftext|>``)."""
    pieces: list[np.ndarray] = []
    for ids in tokenizer(list(documents))["input_ids"]:
        pieces.append(np.asarray(ids, dtype=np.int32))
        pieces.append(np.array([separator], dtype=np.int32))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)


def _check_repeat_options(
    repeat_fraction: float, span_lengths: Sequence[int], style: str, context_length: int
) -> None:
    if not 0.0 <= repeat_fraction <= 1.0:
        raise ValueError(f"`repeat_fraction` must be in [0, 1], got {repeat_fraction!r}.")
    if style not in REPEAT_STYLES:
        raise ValueError(f"`repeat_style` can be one of {REPEAT_STYLES}, got {style!r}.")
    low, high = span_lengths
    if not 1 <= low <= high < context_length:
        raise ValueError(
            "`span_lengths` must be (min, max) with 1 <= min <= max < context_length="
            f"{context_length} so a span repeats at least once, got {tuple(span_lengths)!r}."
        )

"""Word surprisal (bits) of a causal language model over a reading-time corpus.

Surprisal of word ``w_i`` in its story: ``s(w_i) = −log2 P(tokens of w_i | BOS, w_1 … w_{i−1})``
= the sum of its subword tokens' surprisals (chain rule). Each story is one text, its words joined
by single spaces, with the model's BOS token in front; the space before a word and the punctuation
attached to it belong to that word (see :mod:`phasewatch.measures.tokenization`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.token_cache import tokenize_stories
from phasewatch.measures.tokenization import TextTokenizer, TokenizedText, as_text_tokenizer
from phasewatch.models import LogitsFunction, ProbeModel, as_probe_model

LN2 = math.log(2.0)
_WORD_COLUMNS = ("story", "position", "word")


@dataclass(frozen=True)
class _Window:
    """Model input ``seq[start:end]`` of one story; scores the targets ``first_target … end−1``."""

    story: int
    start: int
    end: int
    first_target: int


def word_surprisal(
    model: Any,
    tokenizer: Any,
    corpus: ReadingTimeCorpus | pd.DataFrame,
    *,
    bos_token_id: int | None = None,
    context_length: int | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    whitespace_correction: bool = False,
    boundary_token_ids: Any = None,
    return_token_counts: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Surprisal in bits of every corpus word under a causal language model.

    As input:
        model: anything :func:`phasewatch.models.as_probe_model` accepts (a Hugging Face causal
            LM, an object implementing :class:`~phasewatch.models.AttentionModel` — its
            ``forward_with_attentions`` gives the logits —, a ``ProbeModel``, or a
            ``LightningModule`` holding one), or else a plain callable mapping a LongTensor
            ``[B, T]`` of token ids to logits ``[B, T, V]`` (a tensor, an object with
            ``.logits``, or a tuple whose first element is the logits; wrapped in a
            :class:`~phasewatch.models.LogitsFunction`). Logits for fewer positions than the
            input (a nanoGPT-style ``forward`` returns only the last one) are a ``ValueError``.
        tokenizer: a Hugging Face fast tokenizer, a ``tokenizers.Tokenizer``,
            :class:`~phasewatch.measures.tokenization.ByteTokenizer`, or a
            :class:`~phasewatch.measures.tokenization.TextTokenizer` around one; it must give
            character offsets.
        corpus: a :class:`ReadingTimeCorpus` or a DataFrame with ``story``, ``position``, ``word``.
        bos_token_id: id put in front of every story; default ``tokenizer.bos_token_id``, else
            ``tokenizer.eos_token_id`` (the rule of :class:`TextTokenizer`).
        context_length: most tokens per forward pass; default the model's ``max_length`` as
            :class:`~phasewatch.models.ProbeModel` reads it (Hugging Face:
            ``max_position_embeddings``/``n_positions``; else ``.max_length``). Longer stories are
            scored with a
            sliding window of this length and stride ``W // 2``: the first window scores all its
            tokens, each later window only its last (up to) ``W // 2`` tokens, so every token is
            scored exactly once with at least ``W − W // 2`` tokens of left context. Windows after
            the first start with real context tokens, not BOS.
        batch_size: windows per forward pass.
        device: where the input ids go for a plain callable; default the device of its
            parameters, else its ``.device``, else CPU. A model's ids go to its own device; a
            ``device`` that differs from it is a ``ValueError``.
        whitespace_correction: move the probability of the word boundary onto the word it ends
            (Pimentel & Meister, 2024; Oh & Schuler, 2024):
            ``s'(w_i) = s(w_i) − log2 P_B(after w_i) + log2 P_B(before w_i)``, where ``P_B`` at a
            position is the total probability of the tokens that begin with whitespace, plus EOS.
            The first word of a story follows BOS and has no ``before`` term, so per story
            ``Σ_i s'(w_i) = Σ_i s(w_i) − log2 P_B(after the last word)``.
        boundary_token_ids: ids counted in ``P_B``; default: every token whose text begins with
            whitespace (found by decoding the vocabulary once), plus the EOS id.
        return_token_counts: also return the number of subword tokens of each word.

    As output:
        ``float64`` array of surprisal in bits, one per corpus row in ``corpus.frame`` row order;
        with ``return_token_counts=True`` a tuple ``(surprisal_bits, n_tokens)``, ``n_tokens`` int.
        Per story, ``Σ_words surprisal`` equals the story's negative log-likelihood in bits.

    The model runs through :class:`~phasewatch.models.ProbeModel` under ``torch.no_grad()`` in
    eval mode; every module's previous train/eval flag is restored afterwards.

    Raises:
        ValueError: a word tokenizes to no tokens (it would get a false 0 bits); a token id or
            the BOS id is beyond the model's vocabulary (checked before any forward pass); the
            surprisal of some word is not finite (NaN/inf logits, e.g. NaN weights). Each
            message names the words (story, position) or the sizes, and the fix.
    """
    frame = _word_frame(corpus)
    _check_positive_int("batch_size", batch_size)
    if len(frame) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return (empty, np.zeros(0, dtype=np.int64)) if return_token_counts else empty
    text_tokenizer = as_text_tokenizer(tokenizer, bos_token_id=bos_token_id)
    bos = text_tokenizer.require_bos()
    probe = _probe_model(model, device)
    width = _resolve_context_length(probe, context_length)

    row_groups, stories = _tokenize_stories(frame, text_tokenizer)
    _check_every_word_has_tokens(frame, row_groups, stories, text_tokenizer)
    _check_ids_fit_the_model(probe, stories, bos, text_tokenizer)
    sequences = [_sequence(st, bos) for st in stories]  # BOS + the story's ids
    windows = [w for i, seq in enumerate(sequences) for w in _plan_windows(i, len(seq), width)]
    token_nll = [np.zeros(len(st.ids) + 2) for st in stories]  # indexed by target t = 1 … N
    boundary_lp = [np.zeros(len(st.ids) + 2) for st in stories] if whitespace_correction else None

    with probe.probing(attention=False):  # eval + no_grad; every module's mode restored
        boundary_ids = None
        for batch in _batches(windows, batch_size):
            logits, offset = _batch_logits(probe, batch, sequences, bos)
            if whitespace_correction and boundary_ids is None:
                boundary_ids = _boundary_ids(
                    text_tokenizer, logits.shape[-1], boundary_token_ids, logits.device
                )
            _score_batch(logits, offset, batch, sequences, token_nll, boundary_lp, boundary_ids)

    surprisal_bits = np.zeros(len(frame), dtype=np.float64)
    n_tokens = np.zeros(len(frame), dtype=np.int64)
    for i, (rows, st) in enumerate(zip(row_groups, stories, strict=True)):
        per_word = np.bincount(st.word_index, weights=token_nll[i][1:-1], minlength=st.n_words)
        if whitespace_correction:
            per_word = per_word + _boundary_shift(st, boundary_lp[i])
        surprisal_bits[rows] = per_word / LN2
        n_tokens[rows] = np.bincount(st.word_index, minlength=st.n_words)
    _check_finite(frame, surprisal_bits)
    if return_token_counts:
        return surprisal_bits, n_tokens
    return surprisal_bits


# --- inputs ---------------------------------------------------------------------------------------


def _word_frame(corpus: ReadingTimeCorpus | pd.DataFrame) -> pd.DataFrame:
    frame = corpus.frame if isinstance(corpus, ReadingTimeCorpus) else corpus
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            "`corpus` must be a ReadingTimeCorpus or a pandas DataFrame with columns "
            f"{list(_WORD_COLUMNS)}, got {type(corpus).__name__}"
        )
    missing = [c for c in _WORD_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"`corpus` lacks the columns {missing}; word surprisal needs {list(_WORD_COLUMNS)} "
            f"(story id, 1-based position, displayed word), got {list(frame.columns)}"
        )
    if frame.duplicated(["story", "position"]).any():
        raise ValueError("`corpus` has repeated (story, position) pairs; each word needs its own")
    return frame


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")


def _probe_model(model: Any, device: str | torch.device | None) -> ProbeModel:
    """The model's :class:`ProbeModel`; a plain callable becomes a ``LogitsFunction``."""
    try:
        probe = as_probe_model(model)
    except TypeError:
        if not callable(model):
            raise
        return ProbeModel(LogitsFunction(model, device=device))
    if device is not None and not _same_device(torch.device(device), probe.device):
        raise ValueError(
            f"`device` is {device} but the model is on {probe.device}; its ids go to the model's "
            "own device: leave `device=None`, or move the model first"
        )
    return probe


def _same_device(asked: torch.device, actual: torch.device) -> bool:
    return asked.type == actual.type and asked.index in (None, actual.index)


def _resolve_context_length(probe: ProbeModel, context_length: int | None) -> int:
    limit = probe.max_length
    if context_length is None:
        context_length = limit
    if context_length is None:
        raise ValueError(
            f"cannot tell the context length of {probe.module!r} (no max_position_embeddings, "
            "n_positions or max_length); pass `context_length=`"
        )
    if isinstance(context_length, bool) or not isinstance(context_length, int):
        raise ValueError(f"`context_length` must be an int >= 2, got {context_length!r}")
    if context_length < 2:
        raise ValueError(f"`context_length` must be >= 2 (BOS and one token), got {context_length}")
    if limit is not None and context_length > limit:
        raise ValueError(
            f"`context_length` is {context_length} but the model takes at most {limit} positions; "
            f"pass a value <= {limit}"
        )
    return context_length


def _tokenize_stories(
    frame: pd.DataFrame, tokenizer: TextTokenizer
) -> tuple[list[np.ndarray], list[TokenizedText]]:
    """Per story (in order of first appearance): frame row numbers in position order, tokens
    (tokenized once per tokenizer and word list: :mod:`phasewatch.measures.token_cache`)."""
    positions = frame["position"].to_numpy()
    codes, _ = pd.factorize(frame["story"], sort=False)
    order = np.lexsort((positions, codes))
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    words = frame["word"].astype(str).to_numpy()
    return groups, tokenize_stories(tokenizer, [words[rows] for rows in groups])


def _named_words(frame: pd.DataFrame, rows: np.ndarray, limit: int = 5) -> str:
    """``'x' (story 2, position 5), …`` for the first ``limit`` rows, then how many more."""
    named = ", ".join(
        f"{frame['word'].iat[r]!r} (story {frame['story'].iat[r]}, position "
        f"{frame['position'].iat[r]})"
        for r in rows[:limit]
    )
    return named + (f", and {len(rows) - limit} more" if len(rows) > limit else "")


def _check_every_word_has_tokens(
    frame: pd.DataFrame,
    row_groups: list[np.ndarray],
    stories: list[TokenizedText],
    tokenizer: TextTokenizer,
) -> None:
    """A word with no tokens would get surprisal 0 bits and enter the regression: an error."""
    empty = np.concatenate(
        [
            rows[np.bincount(st.word_index, minlength=st.n_words) == 0]
            for rows, st in zip(row_groups, stories, strict=True)
        ]
    )
    if len(empty) == 0:
        return
    empty = np.sort(empty)
    vocab = "unknown" if tokenizer.vocab_size is None else tokenizer.vocab_size
    raise ValueError(
        f"{len(empty)} of {len(frame)} words tokenize to no tokens, so their surprisal would be "
        f"a false 0 bits: {_named_words(frame, empty)}. The tokenizer "
        f"({type(tokenizer.tokenizer).__name__}, vocabulary size {vocab}) drops them: a tokenizer "
        "without an unknown token drops characters outside its vocabulary (or its vocabulary is "
        "empty). Fix: pass the tokenizer the model was trained with, give it an unknown token or "
        "a byte-level alphabet, or remove these words from the corpus."
    )


def _check_ids_fit_the_model(
    probe: ProbeModel, stories: list[TokenizedText], bos: int, tokenizer: TextTokenizer
) -> None:
    """Every id (BOS included) below the model's vocabulary size, checked before any pass."""
    highest = max([bos, *(int(st.ids.max()) for st in stories if len(st.ids))])
    size = probe.logits_size()
    if size is None or highest < size:
        return
    vocab = "unknown" if tokenizer.vocab_size is None else tokenizer.vocab_size
    what = "the BOS id" if highest == bos else "the tokenizer produced id"
    raise ValueError(
        f"{what} {highest}, but the model has only {size} ids (0 … {size - 1}); the tokenizer's "
        f"vocabulary size is {vocab}. Tokenizer and model do not match: pass the tokenizer the "
        "model was trained with (or a model whose vocab_size covers the tokenizer's ids)."
    )


def _check_finite(frame: pd.DataFrame, surprisal_bits: np.ndarray) -> None:
    """NaN/inf surprisal (NaN weights, an overflow) is an error, never returned as a number."""
    bad = np.flatnonzero(~np.isfinite(surprisal_bits))
    if len(bad) == 0:
        return
    raise ValueError(
        f"surprisal is not finite (NaN or inf bits) for {len(bad)} of {len(frame)} words: "
        f"{_named_words(frame, bad)}. The model's logits hold NaN or inf — most often NaN "
        "weights after a diverged step (check the training loss; lower the learning rate, clip "
        "gradients, or train in bf16/fp32 instead of fp16)."
    )


# --- windows and forward passes -------------------------------------------------------------------


def _plan_windows(story: int, n_seq: int, width: int) -> list[_Window]:
    """Windows over a sequence of ``n_seq`` ids (BOS + N tokens); targets 1 … N each scored once."""
    if n_seq <= width:
        return [_Window(story, 0, n_seq, 1)]
    stride = width // 2
    windows = [_Window(story, 0, width, 1)]
    first = width
    while first < n_seq:
        end = min(first + stride, n_seq)
        windows.append(_Window(story, end - width, end, first))
        first = end
    return windows


def _batches(windows: list[_Window], batch_size: int) -> Iterator[list[_Window]]:
    """Batches of up to ``batch_size`` windows that waste no computation.

    Two groups never share a batch: windows scored from their first target (a story's first
    window, or its only one; any length) and later windows (always the full context, scoring
    only their last ``W // 2`` targets, a story's last window fewer). A batch of later windows
    asks the model for the logits of the positions it scores alone (``_batch_logits``); they go
    most targets first, so the stories' short last windows share batches. Within the first
    group the windows go longest first, so a batch pads its shorter windows to the length of
    similar ones only. Which targets a window scores, and their context, do not depend on the
    batching.
    """
    whole = sorted((w for w in windows if w.first_target == w.start + 1), key=_length, reverse=True)
    later = sorted((w for w in windows if w.first_target != w.start + 1), key=_scored, reverse=True)
    for group in (later, whole):
        for i in range(0, len(group), batch_size):
            yield group[i : i + batch_size]


def _length(window: _Window) -> int:
    return window.end - window.start


def _scored(window: _Window) -> int:
    return window.end - window.first_target


def _sequence(st: TokenizedText, bos: int) -> np.ndarray:
    return np.concatenate([[bos], st.ids])


def _batch_logits(
    probe: ProbeModel, batch: list[_Window], sequences: list[np.ndarray], bos: int
) -> tuple[torch.Tensor, int]:
    """Logits ``[B, T', V]`` (float32) for the batch, and the window position of their first row.

    When the windows are equally long, only the positions from the first one any window in the
    batch scores are asked for (later windows score only their last W // 2 tokens): Hugging Face
    models that accept ``logits_to_keep`` compute only those.
    """
    width = max(w.end - w.start for w in batch)
    ids = np.full((len(batch), width), bos, dtype=np.int64)  # right padding: causal, never seen
    for row, w in enumerate(batch):
        ids[row, : w.end - w.start] = sequences[w.story][w.start : w.end]
    input_ids = torch.from_numpy(ids)
    keep = width - min(w.first_target - 1 - w.start for w in batch)
    same_length = all(w.end - w.start == width for w in batch)
    logits = probe.logits(input_ids, keep=keep if same_length and keep < width else None)
    if int(input_ids.max()) >= logits.shape[-1]:
        raise ValueError(
            f"the tokenizer produced id {int(input_ids.max())} but the model's logits have only "
            f"{logits.shape[-1]} entries; tokenizer and model do not match"
        )
    return logits.float(), width - logits.shape[1]


def _boundary_ids(
    tokenizer: TextTokenizer, vocab_size: int, boundary_token_ids: Any, device: torch.device
) -> torch.Tensor:
    if boundary_token_ids is not None:
        ids = np.unique(np.asarray(boundary_token_ids, dtype=np.int64))
    else:
        mask = tokenizer.whitespace_initial_mask(vocab_size)
        eos = tokenizer.eos_token_id
        if eos is not None and 0 <= eos < vocab_size:
            mask[eos] = True
        ids = np.flatnonzero(mask)
    if len(ids) == 0 or ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(
            "whitespace correction needs boundary token ids within the model's vocabulary "
            f"(0 … {vocab_size - 1}); got {len(ids)} ids. Pass `boundary_token_ids=`."
        )
    return torch.from_numpy(ids).to(device)


def _score_batch(
    logits: torch.Tensor,
    offset: int,
    batch: list[_Window],
    sequences: list[np.ndarray],
    token_nll: list[np.ndarray],
    boundary_lp: list[np.ndarray] | None,
    boundary_ids: torch.Tensor | None,
) -> None:
    """Write −ln P(target) and ln P_B for each window's targets (and P_B after a story's end).

    Row ``j`` of ``logits`` is window position ``q = offset + j``, which predicts the target at
    sequence index ``w.start + q + 1``.
    """
    log_probs = torch.log_softmax(logits, dim=-1)  # [B, T', V]; ~3x faster than logsumexp on CPU
    nexts = np.zeros((len(batch), offset + logits.shape[1]), dtype=np.int64)
    for row, w in enumerate(batch):
        nexts[row, : w.end - w.start - 1] = sequences[w.story][w.start + 1 : w.end]
    targets = torch.from_numpy(nexts[:, offset:]).to(logits.device).unsqueeze(-1)
    nll = (-log_probs.gather(-1, targets).squeeze(-1)).cpu().double().numpy()
    if boundary_ids is not None:
        lp = torch.logsumexp(log_probs.index_select(-1, boundary_ids), dim=-1)
        lp = lp.cpu().double().numpy()
    for row, w in enumerate(batch):
        q0, q1 = w.first_target - 1 - w.start - offset, w.end - 1 - w.start - offset
        token_nll[w.story][w.first_target : w.end] = nll[row, q0:q1]
        if boundary_lp is not None:
            n_seq = len(sequences[w.story])
            last = q1 + 1 if w.end == n_seq else q1  # the last window also gives P_B at the end
            boundary_lp[w.story][w.first_target : w.first_target + last - q0] = lp[row, q0:last]


def _boundary_shift(st: TokenizedText, boundary_lp: np.ndarray) -> np.ndarray:
    """Whitespace correction per word in nats: −ln P_B(after w_i) + ln P_B(before w_i), i > 0.

    ``boundary_lp[t]`` is ln P_B at the position that predicts target ``t`` (``t = N + 1``: after
    the last token). The boundary before word ``i`` is at its first token; after it, at the first
    token of word ``i + 1`` (the end of the text for the last word).
    """
    first = 1 + np.searchsorted(st.word_index, np.arange(st.n_words + 1), side="left")
    before = boundary_lp[first[:-1]].copy()
    before[0] = 0.0  # the first word follows BOS: no boundary event to divide out
    return before - boundary_lp[first[1:]]

"""Head-specialisation scores on repeated random tokens: induction, previous-token, duplicate-token.

The probe (Olsson et al., 2022, "In-context learning and induction heads"): ``batch_size``
sequences of ``seq_len`` random tokens, each repeated once, ``[BOS] t_0 .. t_{n-1} t_0 .. t_{n-1}``
(the BOS only when ``bos_token_id`` is given). Tokens are distinct within a sequence, so every token
of the second repeat has exactly one earlier occurrence. Random tokens carry no meaning, so a head
that attends correctly here does it by mechanism (copying a pattern), not by knowledge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from phasewatch.head_kinds import REPEATED_TOKENS, head_kind, repeated_token_kinds
from phasewatch.measures.attention import probe_attentions
from phasewatch.measures.metrics import HeadScore
from phasewatch.models import as_probe_model


@dataclass(frozen=True)
class RepeatedTokenProbe:
    """A repeated-random-token batch and its layout.

    ``input_ids`` is ``[batch, prefix_length + 2 × seq_len]`` (CPU): ``prefix_length`` BOS tokens
    (0 or 1), then ``seq_len`` distinct random tokens, then the same tokens again.
    """

    input_ids: Tensor
    seq_len: int
    prefix_length: int

    def __repr__(self) -> str:
        batch, tokens = self.input_ids.shape
        return (
            f"RepeatedTokenProbe(batch={batch}, tokens={tokens}, seq_len={self.seq_len}, "
            f"prefix_length={self.prefix_length})"
        )


def repeated_token_probe(
    vocab_size: int,
    *,
    seq_len: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    exclude_ids: Iterable[int] | None = None,
    bos_token_id: int | None = None,
) -> RepeatedTokenProbe:
    """Sample the probe batch with a local ``torch.Generator`` (the global RNG is untouched).

    Tokens are drawn uniformly without replacement within each sequence from ``0 .. vocab_size-1``
    minus ``exclude_ids`` and ``bos_token_id``; the same ``seed`` gives the same batch.
    """
    if seq_len < 2 or batch_size < 1:
        raise ValueError(
            f"`seq_len` must be >= 2 and `batch_size` >= 1, got {seq_len} and {batch_size}"
        )
    excluded = set(exclude_ids or ())
    if bos_token_id is not None:
        excluded.add(int(bos_token_id))
    excluded = sorted(int(t) for t in excluded if 0 <= t < vocab_size)
    n_allowed = vocab_size - len(excluded)
    if n_allowed < seq_len:
        raise ValueError(
            f"`seq_len`={seq_len} distinct tokens are needed per sequence, but only {n_allowed} "
            f"of vocab_size={vocab_size} are allowed after exclude_ids/bos_token_id; lower seq_len"
        )
    generator = torch.Generator().manual_seed(seed)
    tokens = _distinct_draws(n_allowed, batch_size, seq_len, generator)
    for token in excluded:  # i-th allowed id: step over each excluded id at or below it
        tokens += tokens >= token
    parts = [tokens, tokens]
    if bos_token_id is not None:
        parts.insert(0, torch.full((batch_size, 1), int(bos_token_id), dtype=torch.long))
    return RepeatedTokenProbe(torch.cat(parts, dim=1), seq_len, int(bos_token_id is not None))


def _distinct_draws(n: int, rows: int, draws: int, generator: torch.Generator) -> Tensor:
    """``[rows, draws]`` uniform draws from ``0..n-1`` without replacement within each row."""
    if draws * draws > n:  # repeats are likely: rank random keys (O(rows·n))
        return torch.rand(rows, n, generator=generator).argsort(dim=1)[:, :draws]
    # repeats are rare (probability < 1/2 per row): draw with replacement, redraw rows that repeat
    out = torch.randint(n, (rows, draws), generator=generator)
    while True:
        ordered = out.sort(dim=1).values
        repeats = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)
        if not repeats.any():
            return out
        out[repeats] = torch.randint(n, (int(repeats.sum()), draws), generator=generator)


def all_head_scores(
    model: Any,
    *,
    seq_len: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    vocab_size: int | None = None,
    exclude_ids: Iterable[int] | None = None,
    bos_token_id: int | None = None,
    probe: RepeatedTokenProbe | None = None,
) -> dict[str, Tensor]:
    """Every repeated-token kind of :data:`phasewatch.head_kinds.HEAD_KINDS` from ONE forward pass.

    For every query ``s`` of the second repeat (``p + n <= s < p + 2n`` with ``n = seq_len`` and
    ``p`` = 1 with a BOS, else 0), the score of a head is the attention ``A[s, key(s)]`` averaged
    over the batch and those ``n`` queries, ``key(s)`` from the kind's row of the table:

    - ``"induction"``: ``key(s) = s - n + 1``, the token after the earlier occurrence of the
      current token (prefix matching, Olsson et al., 2022). Every query of the second repeat has
      one: for its first, ``s = p + n``, it is ``p + 1``; for its last, the second repeat's start.
    - ``"previous_token"``: ``key(s) = s - 1``.
    - ``"duplicate_token"``: ``key(s) = s - n``, the earlier occurrence itself.

    A head attending uniformly scores ``mean_s 1/(s+1)``; a perfect head scores 1. Computed on
    the calling process alone (no DDP sync; see :class:`phasewatch.measures.metrics.HeadScore`).

    Args:
        model: anything :func:`phasewatch.models.as_probe_model` accepts.
        seq_len: random tokens per repeat ``n``.
        batch_size: sequences in the probe batch.
        seed: seed of the local generator that draws the tokens.
        vocab_size: draw tokens below this id (default: the model's vocab_size).
        exclude_ids: token ids never drawn (e.g. special tokens).
        bos_token_id: if given, every sequence starts with this token (recommended for models
            trained with a BOS/document separator, where heads park attention on it).
        probe: a prebuilt :class:`RepeatedTokenProbe`; the sampling arguments are then ignored.

    Returns:
        kind name (``"induction"``, ``"previous_token"``, ``"duplicate_token"``, and any kind
        added to the table) → ``Tensor[L, H]`` (float32, CPU) in ``[0, 1]``.
    """
    model = as_probe_model(model)
    if probe is not None:
        seq_len, prefix_length = probe.seq_len, probe.prefix_length
    else:
        prefix_length = int(bos_token_id is not None)
    tokens = prefix_length + 2 * seq_len
    if model.max_length is not None and tokens > model.max_length:
        raise ValueError(
            f"the probe has {tokens} tokens (prefix + 2 × seq_len={seq_len}), more than the "
            f"model's max_length={model.max_length}; use seq_len <= "
            f"{(model.max_length - prefix_length) // 2}"
        )
    if probe is None:
        probe = repeated_token_probe(
            _probe_vocab_size(model, vocab_size),
            seq_len=seq_len,
            batch_size=batch_size,
            seed=seed,
            exclude_ids=exclude_ids,
            bos_token_id=bos_token_id,
        )
    _, attentions = probe_attentions(model, probe.input_ids)
    scores = {}
    for kind in repeated_token_kinds():
        metric = HeadScore(
            kind,
            model.num_layers,
            model.num_heads,
            seq_len=probe.seq_len,
            prefix_length=probe.prefix_length,
            sync_on_compute=False,
        )
        metric.update(attentions)
        scores[kind] = metric.compute().float().cpu()
    return scores


def head_scores(
    model: Any,
    kind: str = "induction",
    *,
    seq_len: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    vocab_size: int | None = None,
    exclude_ids: Iterable[int] | None = None,
    bos_token_id: int | None = None,
    probe: RepeatedTokenProbe | None = None,
) -> Tensor:
    """One repeated-token kind of head score (``"induction"``, ``"previous_token"``, ...).

    Same probe, formulas and arguments as :func:`all_head_scores`; returns ``Tensor[L, H]``.
    The syntactic kind needs a parsed corpus: use :func:`phasewatch.measures.syntactic_scores`.
    """
    if head_kind(kind).probe != REPEATED_TOKENS:
        raise ValueError(
            f"`kind` {kind!r} is not read off the repeated-token probe: `kind` can be "
            f"{', '.join(repeated_token_kinds())} (use syntactic_scores for 'syntactic')"
        )
    scores = all_head_scores(
        model,
        seq_len=seq_len,
        batch_size=batch_size,
        seed=seed,
        vocab_size=vocab_size,
        exclude_ids=exclude_ids,
        bos_token_id=bos_token_id,
        probe=probe,
    )
    return scores[kind]


def _probe_vocab_size(model: Any, vocab_size: int | None) -> int:
    if vocab_size is None:
        if model.vocab_size is None:
            raise ValueError(
                f"{type(model.module).__name__} does not report a vocab_size; pass `vocab_size=`"
            )
        return int(model.vocab_size)
    if model.vocab_size is not None and vocab_size > model.vocab_size:
        raise ValueError(
            f"`vocab_size`={vocab_size} exceeds the model's vocab_size={model.vocab_size}"
        )
    return int(vocab_size)

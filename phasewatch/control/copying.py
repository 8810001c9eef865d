"""The copying regularizer: penalise the attention that induction (copying) heads pay.

Aoyama & Wilcox (2025) suppress induction heads by penalising, on a batch of random token spans
tiled to the context length, the attention each position pays to the token after every earlier
occurrence of its own token (their ``trainer_with_smooth_copying_regularizer.py``). Here:

- :func:`copying_penalty` — the penalty of given attention probabilities (a plain function);
- :func:`tiled_random_spans` — the regularization batch;
- :class:`CopyingRegularizer` — the callback that runs a separate eager-attention pass on its own
  batch at every training step and adds ``λ · penalty`` through
  :class:`~phasewatch.control.RegularizedModule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from phasewatch import keys
from phasewatch.callbacks._args import int_arg
from phasewatch.control.regularizer import Regularizer, attentions_with_grad
from phasewatch.models import as_probe_model


def copying_mask(input_ids: Tensor) -> Tensor:
    """``[B, T, T]`` bool: ``M[b, i, j]`` is true when key ``j`` follows an earlier occurrence of
    query ``i``'s token, i.e. ``1 <= j <= i`` and ``input_ids[b, j-1] == input_ids[b, i]``."""
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` must be [batch, tokens], got shape {list(input_ids.shape)}")
    tokens = input_ids.shape[1]
    previous = torch.roll(input_ids, 1, dims=1)  # previous[b, j] = input_ids[b, j-1]
    same = input_ids[:, :, None] == previous[:, None, :]  # [B, i, j]
    i = torch.arange(tokens, device=input_ids.device)
    causal = (i[None, :] >= 1) & (i[None, :] <= i[:, None])  # 1 <= j <= i
    return same & causal


def copying_penalty(attentions: Sequence[Tensor], input_ids: Tensor) -> Tensor:
    """The smooth copying penalty, a scalar tensor (attention mass per position, in ``[0, n]``).

    With ``A[b, i, j] = max over layers l and heads h of attentions[l][b, h, i, j]`` and ``M`` from
    :func:`copying_mask` (key ``j`` is the token after an earlier occurrence of query ``i``'s
    token)::

        penalty = Σ_{b,i,j} A[b,i,j] · M[b,i,j]  /  |{(b, i) : Σ_j M[b,i,j] > 0}|

    the paper's sum divided by the number of query positions that have an earlier occurrence, so
    that ``λ`` does not depend on batch size or context length. ``n`` is the most earlier
    occurrences of one position's token. Zero (with gradient) when no token repeats.

    Args:
        attentions: ``L`` tensors ``[B, H, T, T]`` of attention probabilities (rows: queries).
        input_ids: ``[B, T]`` token ids of the same batch.
    """
    if len(attentions) == 0:
        raise ValueError("`attentions` is empty: pass one [B, H, T, T] tensor per layer")
    shape = (input_ids.shape[0], input_ids.shape[1], input_ids.shape[1])
    top = None
    for layer, tensor in enumerate(attentions):
        if tensor.dim() != 4 or (tensor.shape[0], tensor.shape[2], tensor.shape[3]) != shape:
            raise ValueError(
                f"attentions[{layer}] has shape {list(tensor.shape)}; expected [B, H, T, T] with "
                f"[B, T] = {list(input_ids.shape)} from `input_ids`"
            )
        layer_max = tensor.float().amax(dim=1)
        top = layer_max if top is None else torch.maximum(top, layer_max)
    assert top is not None
    mask = copying_mask(input_ids.to(top.device))
    queries = mask.any(dim=2).sum()
    total = (top * mask).sum()
    return total / queries.clamp(min=1)


def tiled_random_spans(
    batch_size: int,
    length: int,
    vocab_size: int,
    span: tuple[int, int] = (20, 50),
    generator: torch.Generator | None = None,
) -> Tensor:
    """``[batch_size, length]`` token ids: per row a random span of ``span[0]..span[1]`` tokens
    (inclusive, uniform ids in ``0..vocab_size-1``) repeated to fill ``length`` tokens."""
    rows = []
    for _ in range(batch_size):
        n = int(torch.randint(span[0], span[1] + 1, (1,), generator=generator))
        tokens = torch.randint(0, vocab_size, (n,), generator=generator)
        rows.append(tokens.repeat(length // n + 1)[:length])
    return torch.stack(rows)


class CopyingRegularizer(Regularizer):
    """Suppress induction heads: ``λ ·`` :func:`copying_penalty` on a batch of tiled random spans.

    At every training step (every micro-batch under gradient accumulation) it draws its own
    regularization batch and runs a separate forward pass of the model on it with eager attention
    (Hugging Face models switch back afterwards), in the model's train/eval mode; the training
    batch is not used. Logs the unweighted penalty as ``reg/copying``.

    Args:
        weight: ``λ`` (loss units per unit of penalty; 0 = off, no extra pass).
        span: shortest and longest span, tokens (inclusive).
        batch_size: sequences in the regularization batch.
        length: tokens per sequence; ``None`` = the model's context length (``max_length``).
            Memory of the pass grows as ``batch_size · layers · heads · length²``.
        vocab_size: ids drawn from ``0..vocab_size-1``; ``None`` = the model's vocabulary.
        seed: batch ``k`` on rank ``r`` is drawn from a generator seeded with
            ``(seed · 1000003 + k) · 1024 + r``: reproducible, different per rank, and resumed
            from a checkpoint by the count ``k`` alone.
        strict: raise when the penalty fails (default: log once, train on the plain loss).
    """

    key = keys.REG_COPYING

    def __init__(
        self,
        weight: float,
        *,
        span: tuple[int, int] = (20, 50),
        batch_size: int = 8,
        length: int | None = None,
        vocab_size: int | None = None,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        super().__init__(weight, strict=strict)
        if not isinstance(span, Sequence) or len(span) != 2:
            raise TypeError(f"`span` must be (shortest, longest) in tokens, got {span!r}")
        low = int_arg("span[0]", span[0], 1, "tokens")
        high = int_arg("span[1]", span[1], low, "tokens, >= span[0]")
        self.span = (low, high)
        self.batch_size = int_arg("batch_size", batch_size, 1, "sequences")
        self.length = None if length is None else int_arg("length", length, 2, "tokens")
        self.vocab_size = None if vocab_size is None else int_arg("vocab_size", vocab_size, 1)
        self.seed = int_arg("seed", seed, 0)
        #: Regularization batches drawn so far on this rank.
        self.draws = 0

    def regularization_batch(self, pl_module: Any) -> Tensor:
        """The next ``[batch_size, length]`` batch for this rank (advances :attr:`draws`)."""
        probe = as_probe_model(pl_module)
        length = self.length if self.length is not None else probe.max_length
        vocab = self.vocab_size if self.vocab_size is not None else probe.vocab_size
        if length is None or vocab is None:
            raise ValueError(
                f"{type(probe.module).__name__} does not say its context length or vocabulary "
                "size: pass CopyingRegularizer(length=..., vocab_size=...)"
            )
        trainer = getattr(pl_module, "_trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        generator = torch.Generator().manual_seed((self.seed * 1000003 + self.draws) * 1024 + rank)
        self.draws += 1
        return tiled_random_spans(self.batch_size, length, vocab, self.span, generator)

    def penalty(self, pl_module: pl.LightningModule, batch: Any) -> Tensor:
        ids = self.regularization_batch(pl_module)
        attentions = attentions_with_grad(pl_module, ids)
        return copying_penalty(attentions, ids.to(attentions[0].device))

    def state_dict(self) -> dict[str, Any]:
        return {"draws": self.draws, "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.draws = int(state_dict["draws"])

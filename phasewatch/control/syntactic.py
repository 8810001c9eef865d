"""Syntactic regularizer: penalise, or promote, attention along gold dependency arcs.

An arc joins a dependent ``d`` and its head ``h`` (tokens, or words when the batch gives each
token's word: then the syntactic score's word attention is read, key words summing their tokens and
query words averaging them). Each arc is read the way the syntactic score predicts heads
(``rule="directed"`` of :func:`phasewatch.measures.metrics.predict_dependency_heads`), so that
promoting raises the score:

- head left of the dependent (``h < d``): the score takes the argmax of ``d``'s row, which sums
  to 1, so the value is ``a = A[d, h]``;
- head right (``h > d``): the score takes the argmax of ``d``'s column over later units, which
  does not sum to 1, so the value is the head's share of it, ``a = A[h, d] / Σ_{q > d} A[q, d]``.

With ``N`` arcs and ``m = (1/N) · Σ_arcs max_{l,h} a_{l,h}`` (in ``[0, 1]``):
``penalty = m`` (``mode="penalise"``) or ``penalty = 1 − m`` (``mode="promote"``). Both are ``>= 0``
and ``λ`` (``weight``) stays ``>= 0``, so ``weight=0`` is off in either mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from phasewatch import keys
from phasewatch.control.arcs import NO_HEAD
from phasewatch.control.regularizer import Regularizer, attentions_with_grad

MODES = ("penalise", "promote")
_TINY = 1e-6


def arc_attention(
    attentions: list[Tensor] | tuple[Tensor, ...],
    token_heads: Tensor,
    token_word: Tensor | None = None,
) -> Tensor:
    """Attention along each arc, maxed over layers and heads: ``Tensor[N]`` in ``[0, 1]``.

    Args:
        attentions: ``L`` tensors ``[B, H, T, T]`` of attention probabilities (query × key).
        token_heads: ``LongTensor[B, T]``: the head token of each token, ``-1`` for none.
        token_word: optional ``LongTensor[B, T]``, each token's word (``-1`` for none, e.g. BOS):
            arcs are then read between words, on the syntactic score's word-level attention
            (:func:`phasewatch.measures.syntactic.word_attention`: key words sum their tokens,
            query words average them), one arc per dependent word.

    Returns:
        ``A[later, earlier]`` of each arc (tokens, or words with ``token_word``), maxed over
        layers and heads.
    """
    if not attentions:
        raise ValueError("`attentions` is empty; pass one [B, H, T, T] tensor per layer")
    stacked = torch.stack(list(attentions), dim=1)  # [B, L, H, T, T]
    if stacked.dim() != 5 or stacked.shape[-1] != stacked.shape[-2]:
        raise ValueError(
            f"each attention must be [B, H, T, T], got {list(attentions[0].shape)} for layer 0"
        )
    batch, _, _, tokens, _ = stacked.shape
    token_heads = _check_tokens("token_heads", token_heads, batch, tokens, stacked.device)
    if bool(((token_heads < NO_HEAD) | (token_heads >= tokens)).any()):
        raise ValueError(f"`token_heads` must hold token indices in 0..{tokens - 1} or -1")
    b, t = torch.nonzero(token_heads >= 0, as_tuple=True)
    j = token_heads[b, t]
    if bool((j == t).any()):
        raise ValueError("`token_heads` names a token as its own head; use -1 for no arc")
    if token_word is not None:
        token_word = _check_tokens("token_word", token_word, batch, tokens, stacked.device)
        t, j = token_word[b, t], token_word[b, j]
        if bool(((t < 0) | (j < 0) | (t == j)).any()):
            raise ValueError(
                "with `token_word`, every arc must join tokens of two different words (>= 0)"
            )
        b, t, j = torch.unique(torch.stack([b, t, j]), dim=1)  # one arc per dependent word
        stacked = _word_attention(stacked, token_word)
    query, key = torch.maximum(t, j), torch.minimum(t, j)
    per_head = stacked[b, :, :, query, key]  # [N, L, H]
    # Head right of the dependent: the score's argmax runs down the column (which later unit pays
    # the dependent most attention), and columns do not sum to 1: read the head's share of it.
    units = stacked.shape[-1]
    later = torch.arange(units, device=stacked.device)
    later = (later[:, None] > later[None, :]).to(stacked.dtype)  # [query, key]: query > key
    column = (stacked * later[None, None, None]).sum(dim=-2)  # [B, L, H, units]
    share = per_head / column[b, :, :, key].clamp(min=_TINY)
    per_head = torch.where((j > t)[:, None, None], share, per_head)
    return per_head.flatten(1).amax(dim=1)


def _check_tokens(name: str, value: Tensor, batch: int, tokens: int, device) -> Tensor:
    if tuple(value.shape) != (batch, tokens):
        raise ValueError(
            f"`{name}` must be [B, T] = [{batch}, {tokens}] like the attention, got "
            f"{list(value.shape)}"
        )
    return value.to(device=device, dtype=torch.long)


def _word_attention(stacked: Tensor, token_word: Tensor) -> Tensor:
    """``[B, L, H, W, W]`` word attention from ``[B, L, H, T, T]``, as the syntactic score reads it
    (:func:`phasewatch.measures.syntactic.word_attention`, batched)."""
    words = torch.arange(int(token_word.max()) + 1, device=stacked.device)
    membership = (token_word[:, None, :] == words[None, :, None]).to(stacked.dtype)  # [B, W, T]
    query_mean = membership / membership.sum(dim=-1, keepdim=True).clamp(min=1)
    return torch.einsum("bwt,blhts,bvs->blhwv", query_mean, stacked, membership)


def syntactic_penalty(
    attentions: list[Tensor] | tuple[Tensor, ...],
    token_heads: Tensor,
    token_word: Tensor | None = None,
    *,
    mode: str = "penalise",
) -> Tensor:
    """Syntactic penalty (a scalar, unweighted): mean over arcs of the max attention along them.

    See the module docstring for the formula. ``mode="penalise"`` returns ``m``,
    ``mode="promote"`` returns ``1 − m``; multiply by ``λ`` and add it to the loss. A batch
    without arcs gives ``0`` (still attached to the graph, so DDP sees every parameter used).

    Args:
        attentions: ``L`` tensors ``[B, H, T, T]`` (eager attention, with gradients).
        token_heads: ``LongTensor[B, T]`` head token per token, ``-1`` for none (see
            :class:`phasewatch.control.ArcWindows`).
        mode: ``"penalise"`` or ``"promote"``.

    Returns:
        0-d tensor in ``[0, 1]`` (attention probability, no unit).

    Example::

        _, att = model(ids, output_attentions=True)[:2]   # eager attention
        loss = lm_loss + 0.5 * syntactic_penalty(att, batch["token_heads"], mode="promote")
    """
    if mode not in MODES:
        raise ValueError(f"`mode` can be {', '.join(MODES)}, got {mode!r}")
    values = arc_attention(attentions, token_heads, token_word)
    if values.numel() == 0:
        return attentions[0].sum() * 0.0
    mean = values.mean()
    return mean if mode == "penalise" else 1.0 - mean


class SyntacticRegularizer(Regularizer):
    """Penalise (or promote) attention along gold dependency arcs: adds ``λ · penalty`` to the loss.

    The penalty is :func:`syntactic_penalty` on a separate eager-attention pass over the training
    batch's ``input_ids`` (see :func:`phasewatch.control.regularizer.attentions_with_grad`); the
    batch must carry the arcs as ``token_heads`` (``LongTensor[B, T]``, ``-1`` = no arc), e.g. a
    ``DataLoader`` over :class:`phasewatch.control.ArcWindows` with ``collate_fn=
    ArcWindows.collate``. The LightningModule must mix in
    :class:`~phasewatch.control.RegularizedModule`. Logs the unweighted penalty as
    ``reg/syntactic`` (attention probability in ``[0, 1]``) at every step.

    Args:
        weight: ``λ >= 0`` (loss units per unit of penalty); ``0`` = off (no extra pass, a
            bit-identical run). The direction is ``mode``, not the sign of ``λ``.
        mode: ``"penalise"`` (penalty ``m``, lowers attention along arcs) or ``"promote"``
            (penalty ``1 − m``, raises it).
        input_ids_key, token_heads_key: where the batch (a dict) holds the token ids and heads.
        strict: raise when the penalty fails (e.g. a batch without ``token_heads``); by default
            the failure is logged once and the step trains on the plain loss.

    Example::

        class MyLM(RegularizedModule, L.LightningModule): ...
        trainer = L.Trainer(callbacks=[SyntacticRegularizer(1.0, mode="promote")])
        trainer.fit(MyLM(), DataLoader(ArcWindows(corpus, tok, max_tokens=128),
                                       batch_size=16, collate_fn=ArcWindows.collate))
    """

    key = keys.REG_SYNTACTIC

    def __init__(
        self,
        weight: float,
        *,
        mode: str = "penalise",
        input_ids_key: str = "input_ids",
        token_heads_key: str = "token_heads",
        token_word_key: str | None = "token_word",
        strict: bool = False,
    ) -> None:
        super().__init__(weight, strict=strict)
        if self.weight < 0:
            raise ValueError(
                f"`weight` must be >= 0, got {weight}; to raise attention along the arcs pass "
                'mode="promote" with a positive weight'
            )
        if mode not in MODES:
            raise ValueError(f"`mode` can be {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.input_ids_key, self.token_heads_key = input_ids_key, token_heads_key
        self.token_word_key = token_word_key

    def penalty(self, pl_module: Any, batch: Any) -> Tensor:
        if not isinstance(batch, dict) or self.token_heads_key not in batch:
            found = list(batch) if isinstance(batch, dict) else type(batch).__name__
            raise KeyError(
                f"SyntacticRegularizer needs a dict batch with `{self.input_ids_key}` and "
                f"`{self.token_heads_key}` (got {found}); build batches with "
                "phasewatch.control.ArcWindows and collate_fn=ArcWindows.collate, or pass "
                "input_ids_key=/token_heads_key="
            )
        attentions = attentions_with_grad(pl_module, batch[self.input_ids_key])
        token_word = batch.get(self.token_word_key) if self.token_word_key else None
        return syntactic_penalty(
            attentions, batch[self.token_heads_key], token_word, mode=self.mode
        )

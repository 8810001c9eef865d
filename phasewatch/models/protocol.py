"""The protocol a custom (non-Hugging Face) model implements to expose its attention."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class AttentionModel(Protocol):
    """A causal language model that can return its attention probabilities.

    Implement two attributes and one method (see ``docs/models.md`` for a complete example):

    - ``num_layers``: number of attention layers ``L``;
    - ``num_heads``: attention heads per layer ``H``;
    - ``forward_with_attentions(input_ids)``: for ``input_ids`` of shape ``[B, T]`` (long), return
      ``(logits, attentions)`` with ``logits`` of shape ``[B, T, V]`` and ``attentions`` a list of
      ``L`` tensors of shape ``[B, H, T, T]``: row ``i`` of head ``h`` holds the softmax attention
      probabilities of query position ``i`` over key positions ``0..T-1`` (zero for ``j > i``,
      rows sum to 1), taken without dropout.

    Optional attributes ``vocab_size`` and ``max_length`` (longest input in tokens) are read when
    present. phasewatch calls the method in ``eval()`` mode under ``torch.no_grad()`` and restores
    the previous mode afterwards; the method must not change the model's state.

    One optional method enables head ablation (:func:`phasewatch.control.ablate_heads`):
    ``ablate_heads(heads, *, mode, mean_over)`` with ``heads`` a sorted list of 0-based
    ``(layer, head)`` pairs (already checked against ``num_layers`` × ``num_heads``), ``mode``
    ``"zero"`` or ``"mean"`` and ``mean_over`` ``None`` or ``[B, T]`` token ids, returning a context
    manager inside which every forward pass runs without those heads' outputs (their context
    vectors set to 0, or to their mean over ``mean_over``, else over the batch itself) and after
    which the model is exactly as before. It is not part of the runtime check: a model without it
    is measured as usual, and ablating it raises a ``TypeError`` that names the method.
    """

    num_layers: int
    num_heads: int

    def forward_with_attentions(self, input_ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``[B, T]`` token ids → (logits ``[B, T, V]``, ``L`` tensors ``[B, H, T, T]``)."""
        ...

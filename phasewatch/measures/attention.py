"""Probe forward helpers shared by the attention measures, and per-head summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from phasewatch.models import ProbeModel, as_probe_model


def probe_attentions(
    model: Any, input_ids: Tensor, *, attention_mask: Tensor | None = None
) -> tuple[ProbeModel, list[Tensor]]:
    """Attention probabilities of ``model`` on ``input_ids`` (no logits computed where avoidable).

    ``model`` is anything :func:`phasewatch.models.as_probe_model` accepts. Returns the
    ``ProbeModel`` and a list of ``L`` tensors ``[B, H, T, T]`` on the model's device.
    """
    probe = as_probe_model(model)
    _, attentions = probe.forward(
        input_ids, attention=True, attention_mask=attention_mask, logits=False
    )
    return probe, attentions


@dataclass(frozen=True)
class HeadSummary:
    """The largest per-head value and where it is: ``max`` at ``(layer, head)`` (0-based)."""

    max: float
    layer: int
    head: int

    def __repr__(self) -> str:
        return f"HeadSummary(max={self.max:.4g} at L{self.layer}H{self.head})"


def summarize(scores: Tensor) -> HeadSummary:
    """Maximum of a ``[layers, heads]`` score tensor and the (layer, head) holding it.

    NaN entries are ignored; ties go to the lowest layer, then the lowest head.
    """
    if scores.dim() != 2 or scores.numel() == 0:
        raise ValueError(
            f"`scores` must be a non-empty [layers, heads] tensor, got {list(scores.shape)}"
        )
    flat = scores.detach().float().cpu().nan_to_num(nan=float("-inf")).flatten()
    index = int(flat.argmax())
    layer, head = divmod(index, scores.shape[1])
    return HeadSummary(max=float(flat[index]), layer=layer, head=head)

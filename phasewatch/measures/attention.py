"""Probe forward helpers shared by the attention measures, and per-head summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
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
    """The largest per-head value and where it is: ``max`` at ``(layer, head)`` (0-based).

    ``max`` is NaN when some head's value is not finite: then ``(layer, head)`` is the first such
    head and ``nonfinite`` lists every one (a maximum over heads that skipped them would look like
    a real score).
    """

    max: float
    layer: int
    head: int
    nonfinite: tuple[tuple[int, int], ...] = ()

    def __repr__(self) -> str:
        where = f"L{self.layer}H{self.head}"
        if self.nonfinite:
            return f"HeadSummary(max=nan: {len(self.nonfinite)} non-finite head(s), first {where})"
        return f"HeadSummary(max={self.max:.4g} at {where})"


def nonfinite_heads(scores: Tensor) -> tuple[tuple[int, int], ...]:
    """The ``(layer, head)`` pairs of a ``[layers, heads]`` tensor whose value is NaN or ±inf."""
    bad = ~torch.isfinite(scores.detach().float().cpu())
    return tuple((int(layer), int(head)) for layer, head in bad.nonzero().tolist())


def summarize(scores: Tensor) -> HeadSummary:
    """Maximum of a ``[layers, heads]`` score tensor and the (layer, head) holding it.

    Ties go to the lowest layer, then the lowest head. If any entry is NaN or ±inf the maximum is
    NaN, located at the first such head (see :class:`HeadSummary`); it is never taken over the
    finite heads alone.
    """
    if scores.dim() != 2 or scores.numel() == 0:
        raise ValueError(
            f"`scores` must be a non-empty [layers, heads] tensor, got {list(scores.shape)}"
        )
    bad = nonfinite_heads(scores)
    if bad:
        layer, head = bad[0]
        return HeadSummary(max=float("nan"), layer=layer, head=head, nonfinite=bad)
    flat = scores.detach().float().cpu().flatten()
    index = int(flat.argmax())
    layer, head = divmod(index, scores.shape[1])
    return HeadSummary(max=float(flat[index]), layer=layer, head=head)

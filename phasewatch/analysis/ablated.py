"""Offline analysis with heads ablated: the context, the label the table carries, and the head
scores read without the ablated heads (whose attention patterns no longer reach the output)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch

from phasewatch import keys
from phasewatch.head_kinds import HEAD_KINDS

Heads = str | Sequence[tuple[int, int] | str]


def ablation_label(heads: Heads | None, mode: str) -> str | None:
    """``"L1H0,L1H2 (zero)"`` for the table's ``ablated`` column and the cache settings (``None``:
    no ablation). Checks the heads' syntax and the mode before any checkpoint is loaded."""
    from phasewatch.control.ablation import MODES, format_heads, parse_heads

    if mode not in MODES:
        raise ValueError(f"`ablate_mode` must be one of {', '.join(MODES)}, got {mode!r}")
    if heads is None:
        return None
    return f"{format_heads(parse_heads(heads))} ({mode})"


def ablation_context(probe: Any, heads: Heads, mode: str) -> AbstractContextManager:
    """The ``with`` block measuring ``probe`` without ``heads`` (mean over each probe batch)."""
    from phasewatch.control.ablation import ablate_heads

    return ablate_heads(probe, heads, mode=mode)


def ablated_scalars(
    scalars: dict[str, float], per_head: dict[str, torch.Tensor], heads: Heads
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Per-head scores with the ablated heads NaN; each kind's max over the other heads, the
    entropy mean (nats) over them; ``heads/sas`` (best head per relation, not recomputable
    from per-head scores) dropped."""
    from phasewatch.control.ablation import mask_ablated, nanmax, parse_heads

    per_head = mask_ablated(per_head, parse_heads(heads))
    scalars = dict(scalars)
    for name, kind in HEAD_KINDS.items():
        if name in per_head and kind.key in scalars:
            scalars[kind.key] = nanmax(per_head[name])
    if "entropy" in per_head and keys.ATTN_ENTROPY_MEAN in scalars:
        scalars[keys.ATTN_ENTROPY_MEAN] = float(per_head["entropy"].nanmean())
    scalars.pop(keys.HEADS_SAS, None)
    return scalars, per_head

"""Per-head heatmaps: one panel per measure, layers down, heads across."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from phasewatch.head_kinds import HEAD_KINDS

#: Title of the attention-entropy panel (not a head-score kind: nats, its own colour scale).
ENTROPY_TITLE = "attention entropy (nats)"


def panel_title(name: str) -> str:
    """A measure's panel title: its head-kinds row's title, entropy's, or the name itself."""
    if name == "entropy":
        return ENTROPY_TITLE
    kind = HEAD_KINDS.get(name)
    return kind.title if kind is not None else name


def head_heatmaps(per_head: Mapping[str, object], title: str = "", *, axes=None):
    """A figure of [layers, heads] heatmaps, one per measure; scores on a fixed 0–1 colour scale.

    ``per_head`` maps a measure name (a kind of :data:`phasewatch.head_kinds.HEAD_KINDS`,
    ``"entropy"``, or any other) to a [L, H] array or tensor; scores share the 0–1 scale.
    Returns a matplotlib ``Figure`` (no pyplot state: nothing to close).
    """
    names = [k for k in per_head if per_head[k] is not None]
    own_figure = axes is None
    if own_figure:
        fig = Figure(figsize=(2.6 * len(names) + 0.6, 2.6))
        axes = fig.subplots(1, len(names), squeeze=False)[0]
    else:
        fig = axes[0].figure
    for ax, name in zip(axes, names, strict=False):
        values = np.asarray(_as_numpy(per_head[name]), dtype=float)
        is_score = name != "entropy"
        image = ax.imshow(
            values,
            cmap="viridis" if is_score else "magma",
            vmin=0.0 if is_score else None,
            vmax=1.0 if is_score else None,
            aspect="auto",
        )
        ax.set_title(panel_title(name), fontsize=8)
        ax.set_xlabel("head", fontsize=7)
        ax.set_ylabel("layer", fontsize=7)
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
        ax.tick_params(labelsize=6)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    if own_figure:
        fig.tight_layout()
    return fig


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)

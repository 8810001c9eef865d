"""Offline analysis of a saved checkpoint series: the same measures and detectors as online.

The code lives in :mod:`phasewatch.analysis`; this module keeps the names it always had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phasewatch.analysis import Analysis, analyze_checkpoints, read_table
from phasewatch.analysis.sources import (
    CheckpointSource,
    checkpoint_sources,
    load_lightning,
    step_from_name,
)

__all__ = [
    "Analysis",
    "CheckpointSource",
    "analyze_checkpoints",
    "load_checkpoint",
    "read_table",
    "step_from_name",
]


def load_checkpoint(
    path: str | Path, module: str | type | None = None
) -> tuple[Any, int, int | None]:
    """A model from a Lightning ``.ckpt`` (needs its LightningModule class) or a Hugging Face
    model directory; returns ``(model, step, tokens)`` (tokens: phasewatch's callback state in a
    ``.ckpt``, the HF Trainer's ``num_input_tokens_seen`` in a folder, else None)."""
    path = Path(path)
    if not path.is_dir():
        return load_lightning(path, module)
    (source,) = checkpoint_sources([path])
    return source.load()

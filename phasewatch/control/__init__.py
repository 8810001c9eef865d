"""Acting on the transition: regularizers added to the training loss (see docs/control.md)."""

from phasewatch.control.arcs import ArcWindows, word_arcs_to_token_heads
from phasewatch.control.copying import (
    CopyingRegularizer,
    copying_mask,
    copying_penalty,
    tiled_random_spans,
)
from phasewatch.control.regularizer import RegularizedModule, Regularizer, attentions_with_grad
from phasewatch.control.syntactic import SyntacticRegularizer, arc_attention, syntactic_penalty

__all__ = [
    "ArcWindows",
    "CopyingRegularizer",
    "RegularizedModule",
    "Regularizer",
    "SyntacticRegularizer",
    "arc_attention",
    "attentions_with_grad",
    "copying_mask",
    "copying_penalty",
    "syntactic_penalty",
    "tiled_random_spans",
    "word_arcs_to_token_heads",
]

"""Acting on the transition: regularizers added to the training loss, and head ablation (see
docs/control.md)."""

from phasewatch.control.ablation import ablate_heads, format_heads, parse_heads
from phasewatch.control.arcs import (
    ArcWindows,
    dependencies_from_conllu,
    word_arcs_to_token_heads,
)
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
    "ablate_heads",
    "arc_attention",
    "attentions_with_grad",
    "copying_mask",
    "copying_penalty",
    "dependencies_from_conllu",
    "format_heads",
    "parse_heads",
    "syntactic_penalty",
    "tiled_random_spans",
    "word_arcs_to_token_heads",
]

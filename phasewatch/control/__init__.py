"""Acting on the transition: regularizers added to the training loss (see docs/control.md)."""

from phasewatch.control.copying import (
    CopyingRegularizer,
    copying_mask,
    copying_penalty,
    tiled_random_spans,
)
from phasewatch.control.regularizer import RegularizedModule, Regularizer, attentions_with_grad

__all__ = [
    "CopyingRegularizer",
    "RegularizedModule",
    "Regularizer",
    "attentions_with_grad",
    "copying_mask",
    "copying_penalty",
    "tiled_random_spans",
]

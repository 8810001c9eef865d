"""The experiment's model: the demo's :class:`TinyGPT2` with the regularizer mixin."""

from __future__ import annotations

from phasewatch.control import RegularizedModule
from phasewatch.demo.model import TinyGPT2


class RegularizedTinyGPT2(RegularizedModule, TinyGPT2):
    """:class:`TinyGPT2` whose training loss gets ``Σ λ · penalty`` of the trainer's regularizers.

    Without a :class:`~phasewatch.control.Regularizer` on the trainer it trains exactly as
    :class:`TinyGPT2` (same loss tensor). ``train/loss`` stays the language-model loss
    (nats/token); the penalty is logged by the regularizer (``reg/<name>``).
    """

    @classmethod
    def like(cls, model: TinyGPT2) -> RegularizedTinyGPT2:
        """A fresh model with ``model``'s hyperparameters (and so, with its seed, its weights)."""
        return cls(**dict(model.hparams), tokenizer=model.tokenizer)

"""Regularizers that add a penalty on the model's attention to the training loss.

Two pieces (a callback cannot change the loss ``training_step`` returns):

- :class:`Regularizer`, a Lightning callback that holds the weight ``λ`` and computes an unweighted
  scalar penalty; subclasses implement :meth:`Regularizer.penalty`.
- :class:`RegularizedModule`, a mixin for the user's LightningModule
  (``class MyLM(RegularizedModule, L.LightningModule)``) that wraps the user's ``training_step``:
  the returned loss becomes ``loss + Σ_r λ_r · penalty_r`` over the regularizers on the trainer.
  The penalty is inside the loss Lightning back-propagates, so gradient accumulation (the loss is
  divided by ``accumulate_grad_batches``) and DDP's gradient all-reduce cover it.

With ``weight=0`` a regularizer does nothing at all: no extra pass, nothing logged, the loss is the
user's own tensor (the run is bit-identical to one without the regularizer).
"""

from __future__ import annotations

import functools
import logging
import traceback
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from phasewatch import keys
from phasewatch.callbacks._args import bool_arg, float_arg
from phasewatch.models import as_probe_model
from phasewatch.models._huggingface import (
    eager_attention,
    huggingface_forward,
    no_new_hooks,
    register_output_capture,
)

log = logging.getLogger(__name__)

_WRAPPED = "_phasewatch_regularized"


class Regularizer(pl.Callback):
    """Base class: a penalty on the model, added to the loss with weight ``λ`` by
    :class:`RegularizedModule`.

    Args:
        weight: ``λ``, the penalty's weight in the loss (loss units per penalty unit; ``0`` = off:
            no extra pass, nothing logged, a bit-identical run). Negative values promote what the
            penalty measures.
        strict: raise when the penalty fails; by default the failure is logged once (with its
            traceback) and that step trains on the plain loss.

    Subclasses set :attr:`key` (a constant from :mod:`phasewatch.keys`, logged with the unweighted
    penalty at every step it is computed) and implement :meth:`penalty`.
    """

    #: Metric key of the unweighted penalty (``reg/<name>``).
    key: str = keys.REG_PREFIX

    def __init__(self, weight: float, *, strict: bool = False) -> None:
        self.weight = float_arg("weight", weight, -float("inf"), meaning="λ, loss units")
        self.strict = bool_arg("strict", strict)
        #: Steps whose penalty failed and was skipped (``strict=False``).
        self.failures = 0
        self._warned = False

    def penalty(self, pl_module: pl.LightningModule, batch: Any) -> Tensor:
        """The unweighted penalty, a scalar tensor with gradient to the model's parameters."""
        raise NotImplementedError(f"{type(self).__name__} must implement penalty()")

    # -- Lightning hooks ---------------------------------------------------------------------------

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(pl_module, RegularizedModule):
            raise TypeError(
                f"{type(self).__name__} adds its penalty through the LightningModule: declare "
                f"`class {type(pl_module).__name__}(RegularizedModule, L.LightningModule)` "
                "(from phasewatch.control import RegularizedModule), or drop the callback and add "
                "the plain penalty function to your loss yourself"
            )
        if not pl_module.automatic_optimization and self.weight != 0:
            raise ValueError(
                f"{type(self).__name__} needs automatic optimization (the penalty is added to the "
                "loss training_step returns); with manual optimization call the plain penalty "
                "function and add it to the loss you back-propagate"
            )

    # -- used by RegularizedModule -----------------------------------------------------------------

    def weighted_penalty(self, pl_module: pl.LightningModule, batch: Any) -> Tensor | None:
        """``λ · penalty`` (logging the penalty under :attr:`key`), or ``None`` when off or when
        the penalty failed with ``strict=False``."""
        if self.weight == 0:
            return None
        try:
            value = self.penalty(pl_module, batch)
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise TypeError(
                    f"{type(self).__name__}.penalty must return a scalar tensor, got "
                    f"{type(value).__name__}"
                    + (f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
                )
            if not torch.isfinite(value.detach()).all():
                raise FloatingPointError(f"{self.key} is {float(value):.4g} (not finite)")
        except Exception:
            if self.strict:
                raise
            self.failures += 1
            if not self._warned:
                self._warned = True
                log.warning(
                    "%s failed at step %d; this step trains on the plain loss (further failures "
                    "are counted in .failures, not logged; strict=True raises):\n%s",
                    type(self).__name__,
                    getattr(pl_module.trainer, "global_step", -1),
                    traceback.format_exc(),
                )
            return None
        value = value.reshape(())
        pl_module.log(self.key, value.detach().float(), on_step=True, on_epoch=False)
        return self.weight * value


class RegularizedModule:
    """Mixin for a LightningModule: adds ``Σ λ · penalty`` of the trainer's regularizers to the
    loss its ``training_step`` returns.

    Put it first: ``class MyLM(RegularizedModule, L.LightningModule)``. Your ``training_step`` stays
    as it is; it may return the loss tensor, a dict with ``"loss"``, or ``None`` (skip the step,
    then nothing is added). Without regularizers (or all with ``weight=0``) the returned object is
    exactly yours.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The training_step this class resolves to: its own, or one it inherits from a
        # LightningModule it is mixed into (``class RegTiny(RegularizedModule, TinyLM)``).
        step = getattr(cls, "training_step", None)
        if step is not None and not getattr(step, _WRAPPED, False):
            cls.training_step = _regularized(step)  # type: ignore[method-assign]

    def regularizers(self) -> list[Regularizer]:
        """The :class:`Regularizer` callbacks on the attached trainer (empty without one)."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None:
            return []
        return [cb for cb in trainer.callbacks if isinstance(cb, Regularizer)]


def _regularized(step: Any) -> Any:
    @functools.wraps(step)
    def training_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_phasewatch_in_step", False):  # a subclass calling super()
            return step(self, *args, **kwargs)
        self.__dict__["_phasewatch_in_step"] = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self.__dict__["_phasewatch_in_step"] = False
        if out is None:
            return out
        batch = args[0] if args else kwargs.get("batch")
        terms = [r.weighted_penalty(self, batch) for r in self.regularizers() if r.weight != 0]
        terms = [t for t in terms if t is not None]
        if not terms:
            return out
        loss = out["loss"] if isinstance(out, dict) else out
        total = loss + sum(t.to(loss.dtype) for t in terms)
        if isinstance(out, dict):
            return {**out, "loss": total}
        return total

    setattr(training_step, _WRAPPED, True)
    return training_step


def attentions_with_grad(model: Any, input_ids: Tensor) -> list[Tensor]:
    """Attention probabilities of ``model`` on ``input_ids`` with gradient, one ``[B, H, T, T]``
    tensor per layer.

    ``model`` is a LightningModule holding the model (found as :func:`phasewatch.models.
    as_probe_model` finds it), a Hugging Face causal LM, or an
    :class:`~phasewatch.models.AttentionModel`. The pass runs in the model's current train/eval
    mode (in train mode Hugging Face returns the weights after attention dropout). A Hugging Face
    model is switched to eager attention for this pass only and back afterwards; the
    output-capturing hooks transformers adds are removed again, so the training forward is
    untouched.
    """
    probe = as_probe_model(model)
    if not probe.has_attention:
        raise TypeError(f"{probe!r} returns no attention probabilities; a regularizer needs them")
    inner = probe.module
    input_ids = probe._check_input_ids(input_ids)
    if probe._huggingface:
        register_output_capture(inner)
        with no_new_hooks(inner), eager_attention(inner):
            _, attentions = huggingface_forward(
                inner, input_ids, attention=True, attention_mask=None, logits=False
            )
    else:
        _, attentions = inner.forward_with_attentions(input_ids)
    attentions = list(attentions or [])
    probe._check_attentions(attentions, input_ids.shape)
    return attentions

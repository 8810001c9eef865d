"""``ProbeModel``: one way to run any supported model for a measurement pass.

A probe pass runs under ``eval()`` and ``torch.no_grad()``, returns attention probabilities, and
leaves the model exactly as it found it: every module's train/eval mode, the Hugging Face
attention implementation, and its forward hooks are restored, so training is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from phasewatch.models._huggingface import (
    eager_attention,
    huggingface_dimensions,
    huggingface_forward,
    is_huggingface_model,
    no_new_hooks,
)
from phasewatch.models.protocol import AttentionModel

# Attributes of a LightningModule (or any container) that may hold the model, tried in order.
CONTAINER_ATTRIBUTES = (
    "model",
    "net",
    "network",
    "lm",
    "language_model",
    "transformer",
    "backbone",
)
# Attributes that may hold the tokenizer, on the LightningModule then on its datamodule.
TOKENIZER_ATTRIBUTE = "tokenizer"


class ProbeModel:
    """Adapter that gives phasewatch logits and attention probabilities from a model.

    Wraps a Hugging Face causal LM (``PreTrainedModel``: GPT-2, GPT-NeoX/Pythia, Llama, ...) or an
    object implementing :class:`~phasewatch.models.AttentionModel`. Build it with
    :func:`as_probe_model`, which also finds the model inside a ``LightningModule``.

    Attributes:
        module: the wrapped model.
        num_layers: attention layers ``L``.
        num_heads: heads per layer ``H``.
        vocab_size: vocabulary size ``V`` (``None`` if the model does not say).
        max_length: longest input in tokens (``None`` if the model does not say).

    For Hugging Face models on SDPA or flash attention (which return no probabilities), the probe
    pass switches to ``"eager"`` with ``set_attn_implementation`` and switches back afterwards;
    ``output_attentions=True`` is passed only for the probe; the output-capturing hooks transformers
    installs on that first call are removed again.
    """

    def __init__(self, model: Any) -> None:
        if is_huggingface_model(model):
            self._huggingface = True
            dims = huggingface_dimensions(model)
            self.num_layers, self.num_heads, self.vocab_size, self.max_length = dims
        elif isinstance(model, AttentionModel):
            self._huggingface = False
            self.num_layers = int(model.num_layers)
            self.num_heads = int(model.num_heads)
            self.vocab_size = getattr(model, "vocab_size", None)
            self.max_length = getattr(model, "max_length", None)
        else:
            raise TypeError(
                f"ProbeModel needs a transformers PreTrainedModel or an object implementing "
                f"phasewatch.models.AttentionModel (num_layers, num_heads, "
                f"forward_with_attentions), got {type(model).__name__}; use as_probe_model() to "
                "find the model inside a LightningModule."
            )
        self.module = model
        self._active = False

    def __repr__(self) -> str:
        return (
            f"ProbeModel({type(self.module).__name__}, layers={self.num_layers}, "
            f"heads={self.num_heads}, vocab_size={self.vocab_size}, max_length={self.max_length})"
        )

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter or buffer (CPU if it has none)."""
        if isinstance(self.module, nn.Module):
            for tensor in (*self.module.parameters(), *self.module.buffers()):
                return tensor.device
        return torch.device("cpu")

    @contextmanager
    def probing(self) -> Iterator[None]:
        """Hold the probe state (eval, no_grad, eager attention) over several ``forward`` calls.

        Everything is restored on exit. ``forward`` enters it by itself; use it explicitly to
        switch once around a loop of probe passes.
        """
        if self._active:
            yield
            return
        with self._probe_state(attention=True):
            yield

    @contextmanager
    def _probe_state(self, *, attention: bool) -> Iterator[None]:
        modes = _training_modes(self.module)
        self._active = True
        try:
            with ExitStack() as stack:
                stack.enter_context(torch.no_grad())
                if self._huggingface and attention:
                    stack.enter_context(no_new_hooks(self.module))
                    stack.enter_context(eager_attention(self.module))
                if isinstance(self.module, nn.Module):
                    self.module.eval()
                yield
        finally:
            self._active = False
            _restore_training_modes(modes)

    def forward(
        self,
        input_ids: Tensor,
        attention: bool = True,
        *,
        attention_mask: Tensor | None = None,
        logits: bool = True,
    ) -> tuple[Tensor | None, list[Tensor] | None]:
        """Run one probe pass.

        Args:
            input_ids: ``[B, T]`` (or ``[T]``) token ids; moved to the model's device.
            attention: return the attention probabilities.
            attention_mask: optional ``[B, T]`` 1/0 padding mask (Hugging Face models only).
            logits: return the logits; ``False`` skips a Hugging Face model's LM head.

        Returns:
            ``(logits [B, T, V] or None, list of L tensors [B, H, T, T] or None)``, on the
            model's device; attention rows are softmax probabilities.
        """
        input_ids = self._check_input_ids(input_ids)
        if attention_mask is not None:
            attention_mask = attention_mask.reshape(input_ids.shape).to(input_ids.device)
        if self._active:
            out_logits, attentions = self._run(input_ids, attention, attention_mask, logits)
        else:
            with self._probe_state(attention=attention):
                out_logits, attentions = self._run(input_ids, attention, attention_mask, logits)
        if attentions is not None:
            self._check_attentions(attentions, input_ids.shape)
        return out_logits, attentions

    __call__ = forward

    def _run(
        self, input_ids: Tensor, attention: bool, attention_mask: Tensor | None, logits: bool
    ) -> tuple[Tensor | None, list[Tensor] | None]:
        if self._huggingface:
            return huggingface_forward(
                self.module,
                input_ids,
                attention=attention,
                attention_mask=attention_mask,
                logits=logits,
            )
        if attention_mask is not None:
            raise ValueError(
                f"{type(self.module).__name__} implements AttentionModel, whose "
                "forward_with_attentions takes no attention_mask; pass unpadded sequences, or "
                "right-pad them (causal attention never looks ahead) and leave attention_mask=None."
            )
        out_logits, attentions = self.module.forward_with_attentions(input_ids)
        return (out_logits if logits else None), (list(attentions) if attention else None)

    def _check_input_ids(self, input_ids: Tensor) -> Tensor:
        if not isinstance(input_ids, Tensor):
            input_ids = torch.as_tensor(input_ids)
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"`input_ids` must be an integer tensor of shape [batch, tokens], got "
                f"{input_ids.dtype} of shape {list(input_ids.shape)}"
            )
        if self.max_length is not None and input_ids.shape[1] > self.max_length:
            raise ValueError(
                f"`input_ids` has {input_ids.shape[1]} tokens, more than the model's "
                f"max_length={self.max_length}; shorten the probe or split it into windows"
            )
        if input_ids.numel() and self.vocab_size is not None:
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"`input_ids` holds ids from {low} to {high}, outside the model's vocabulary "
                    f"0..{self.vocab_size - 1}; was it tokenized with another tokenizer?"
                )
        return input_ids.long().to(self.device)

    def _check_attentions(self, attentions: list[Tensor], shape: torch.Size) -> None:
        batch, tokens = shape
        expected = (batch, self.num_heads, tokens, tokens)
        if len(attentions) != self.num_layers:
            raise RuntimeError(
                f"{type(self.module).__name__} returned {len(attentions)} attention tensors for "
                f"num_layers={self.num_layers}; it must return one [B, H, T, T] tensor per layer"
            )
        for layer, tensor in enumerate(attentions):
            if tuple(tensor.shape) != expected:
                raise RuntimeError(
                    f"{type(self.module).__name__} returned attention of shape "
                    f"{list(tensor.shape)} at layer {layer}; expected [B, H, T, T] = "
                    f"{list(expected)}"
                )


def as_probe_model(obj: Any) -> ProbeModel:
    """Find the model in ``obj`` and wrap it in a :class:`ProbeModel`.

    Accepts, in this order: a ``ProbeModel`` (returned as is); a transformers ``PreTrainedModel``;
    an object implementing :class:`~phasewatch.models.AttentionModel`; a ``torch.compile`` wrapper
    of either; or an ``nn.Module`` container such as a ``LightningModule`` holding one, looked up
    in the attributes ``model``, ``net``, ``network``, ``lm``, ``language_model``, ``transformer``,
    ``backbone`` (first match wins), else by a search over its child modules for exactly one
    outermost ``PreTrainedModel`` or ``AttentionModel``.

    Raises:
        TypeError: nothing usable found; the message lists what was looked for.
        ValueError: the search found several candidate models.
    """
    if isinstance(obj, ProbeModel):
        return obj
    obj = _unwrap_compiled(obj)
    if _is_supported(obj):
        return ProbeModel(obj)
    if isinstance(obj, nn.Module):
        for name in CONTAINER_ATTRIBUTES:
            child = _unwrap_compiled(_safe_getattr(obj, name))
            if child is not obj and _is_supported(child):
                return ProbeModel(child)
        found = _outermost_supported_children(obj)
        if len(found) == 1:
            return ProbeModel(found[0][1])
        if len(found) > 1:
            names = ", ".join(f"`{name}` ({type(m).__name__})" for name, m in found)
            raise ValueError(
                f"{type(obj).__name__} holds several models phasewatch could measure: {names}; "
                f"store the one to measure as `{type(obj).__name__}.model`, or pass it directly"
            )
    raise TypeError(
        f"cannot find a model to measure in {type(obj).__name__}: phasewatch looked for a "
        "transformers PreTrainedModel or an object implementing phasewatch.models.AttentionModel "
        f"(num_layers, num_heads, forward_with_attentions), itself, in its attributes "
        f"{', '.join(CONTAINER_ATTRIBUTES)}, and among its child modules. Store the model as "
        "`self.model` in your LightningModule, or implement AttentionModel (see docs/models.md)."
    )


def find_tokenizer(pl_module: Any, *, required: bool = True) -> Any:
    """The tokenizer stored on a ``LightningModule`` as ``tokenizer``, else on its datamodule.

    Looks at ``pl_module.tokenizer``, then ``pl_module.trainer.datamodule.tokenizer``. Returns
    ``None`` when nothing is found and ``required`` is false.

    Raises:
        AttributeError: none found and ``required``.
    """
    tokenizer = _safe_getattr(pl_module, TOKENIZER_ATTRIBUTE)
    if tokenizer is None:
        trainer = getattr(pl_module, "_trainer", None)
        datamodule = _safe_getattr(trainer, "datamodule") if trainer is not None else None
        tokenizer = _safe_getattr(datamodule, TOKENIZER_ATTRIBUTE)
    if tokenizer is None and required:
        raise AttributeError(
            f"no tokenizer found: phasewatch looked for `{TOKENIZER_ATTRIBUTE}` on "
            f"{type(pl_module).__name__} and on its trainer's datamodule; set "
            f"`self.{TOKENIZER_ATTRIBUTE} = tokenizer` in your LightningModule, or pass the "
            "tokenizer to the callback"
        )
    return tokenizer


def _is_supported(obj: Any) -> bool:
    return obj is not None and (is_huggingface_model(obj) or isinstance(obj, AttentionModel))


def _unwrap_compiled(obj: Any) -> Any:
    """The original module behind a ``torch.compile`` wrapper (``OptimizedModule``)."""
    return getattr(obj, "_orig_mod", obj) if isinstance(obj, nn.Module) else obj


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except RuntimeError:  # e.g. LightningModule.trainer before it is attached
        return None


def _outermost_supported_children(root: nn.Module) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            child = _unwrap_compiled(child)
            if _is_supported(child):
                found.append((path, child))
            else:
                visit(child, f"{path}.")

    visit(root, "")
    return found


def _training_modes(model: Any) -> list[tuple[nn.Module, bool]]:
    if not isinstance(model, nn.Module):
        return []
    return [(module, module.training) for module in model.modules()]


def _restore_training_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    for module, training in modes:
        module.training = training

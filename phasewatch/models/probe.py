"""``ProbeModel``: the one way phasewatch runs a model for a measurement pass.

Every measurement goes through it: the attention probes of the head measures (``forward``) and the
logits of word surprisal (``logits``). A pass runs under ``eval()`` and ``torch.no_grad()`` and
leaves the model exactly as it found it: every module's train/eval mode, the Hugging Face
attention implementation, and its forward hooks are restored, so training is untouched. It alone
knows Hugging Face vs protocol models, context length and device.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from phasewatch.models._huggingface import (
    eager_attention,
    huggingface_dimensions,
    huggingface_forward,
    huggingface_logits,
    is_huggingface_model,
    no_new_hooks,
    register_output_capture,
)
from phasewatch.models.logits_function import LogitsFunction, logits_of
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

    Wraps a Hugging Face causal LM (``PreTrainedModel``: GPT-2, GPT-NeoX/Pythia, Llama, ...), an
    object implementing :class:`~phasewatch.models.AttentionModel`, or a
    :class:`~phasewatch.models.LogitsFunction` (logits only, for surprisal). Build it with
    :func:`as_probe_model`, which also finds the model inside a ``LightningModule``.

    Attributes:
        module: the wrapped model.
        num_layers: attention layers ``L``.
        num_heads: heads per layer ``H``.
        vocab_size: vocabulary size ``V`` (``None`` if the model does not say).
        max_length: longest input in tokens (``None`` if the model does not say).
        has_attention: whether the model can return attention probabilities (``False`` only for
            a ``LogitsFunction``, whose ``num_layers`` and ``num_heads`` are 0).

    For Hugging Face models on SDPA or flash attention (which return no probabilities), the probe
    pass switches to ``"eager"`` with ``set_attn_implementation`` and switches back afterwards;
    ``output_attentions=True`` is passed only for the probe; the output-capturing hooks transformers
    installs on that first call are removed again.
    """

    def __init__(self, model: Any) -> None:
        self._huggingface = False
        self.has_attention = True
        if isinstance(model, LogitsFunction):
            self.has_attention = False
            self.num_layers = self.num_heads = 0
            self.vocab_size, self.max_length = None, model.max_length
        elif is_huggingface_model(model):
            self._huggingface = True
            dims = huggingface_dimensions(model)
            self.num_layers, self.num_heads, self.vocab_size, self.max_length = dims
        elif isinstance(model, AttentionModel):
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
        self._active: bool | None = None  # None: no probe state; else whether it has attention
        self._logits_size: int | None = None  # measured by logits_size() when vocab_size is None

    def __repr__(self) -> str:
        return (
            f"ProbeModel({type(self.module).__name__}, layers={self.num_layers}, "
            f"heads={self.num_heads}, vocab_size={self.vocab_size}, max_length={self.max_length})"
        )

    @property
    def torch_module(self) -> nn.Module | None:
        """The ``nn.Module`` whose modes a pass saves and restores (``None``: plain function)."""
        module = self.module.function if isinstance(self.module, LogitsFunction) else self.module
        return module if isinstance(module, nn.Module) else None

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter or buffer (a ``LogitsFunction``'s own; CPU)."""
        module = self.torch_module
        if module is not None:  # the first one only: unpacking all of them cost ~0.1 ms a pass
            for tensor in itertools.chain(module.parameters(), module.buffers()):
                return tensor.device
        if isinstance(self.module, LogitsFunction):
            return self.module.device
        return torch.device("cpu")

    def logits_size(self) -> int | None:
        """Entries ``V`` of the logits, i.e. the ids the model accepts: ``vocab_size`` if the
        model says, else read once from a one-token pass of id 0 (``None`` if that pass fails).

        Lets a caller check its token ids before the real forward pass (an id ``>= V`` is an
        ``IndexError`` deep inside the embedding otherwise).
        """
        if self.vocab_size is not None:
            return int(self.vocab_size)
        if self._logits_size is None:
            try:
                out = self.logits(torch.zeros(1, 1, dtype=torch.long))
            except Exception:  # the real pass will raise its own, clearer error
                return None
            self._logits_size = int(out.shape[-1])
        return self._logits_size

    @contextmanager
    def probing(self, attention: bool = True) -> Iterator[None]:
        """Hold the probe state over several passes: eval, no_grad (and eager attention if asked).

        Every module's train/eval flag (and, for Hugging Face models, the attention implementation
        and forward hooks) is restored on exit. ``forward`` and ``logits`` enter it by themselves;
        use it explicitly to switch once around a loop of passes (``attention=False`` for a loop
        of ``logits`` calls).
        """
        if self._active is not None and (self._active or not attention):
            yield
            return
        with self._probe_state(attention=attention):
            yield

    @contextmanager
    def _probe_state(self, *, attention: bool) -> Iterator[None]:
        module = self.torch_module
        modes = _training_modes(module)
        outer, self._active = self._active, attention
        try:
            with ExitStack() as stack:
                stack.enter_context(torch.no_grad())
                if self._huggingface and attention:
                    register_output_capture(self.module)  # unpickled in this process: ddp_spawn
                    stack.enter_context(no_new_hooks(self.module))
                    stack.enter_context(eager_attention(self.module))
                if module is not None:
                    module.eval()
                yield
        finally:
            self._active = outer
            _restore_training_modes(modes)

    def logits(self, input_ids: Tensor, *, keep: int | None = None) -> Tensor:
        """Next-token logits of a probe pass, without attention probabilities.

        Args:
            input_ids: ``[B, T]`` (or ``[T]``) token ids; moved to the model's device.
            keep: return only the last ``keep`` positions (a Hugging Face model that accepts
                ``logits_to_keep`` computes only those; others are sliced).

        Returns:
            ``[B, keep or T, V]`` logits on the model's device.

        Raises:
            ValueError: the model returned logits of another shape, e.g. only the last
                position's, as a nanoGPT-style ``forward`` does without targets.
        """
        input_ids = self._check_input_ids(input_ids)
        batch, tokens = input_ids.shape
        if keep is not None and not 0 < keep <= tokens:
            raise ValueError(f"`keep` must be in 1..{tokens} (the input's tokens), got {keep}")
        with self.probing(attention=False):
            if self._huggingface:  # computes (or slices to) the last `keep` positions itself
                out = huggingface_logits(self.module, input_ids, keep=keep)
                self._check_logits(out, batch, tokens, keep or tokens)
                return out
            if isinstance(self.module, LogitsFunction):
                out = self.module(input_ids)
            else:
                out = logits_of(self.module.forward_with_attentions(input_ids)[0])
        self._check_logits(out, batch, tokens, tokens)
        return out if keep is None else out[:, tokens - keep :]

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
        if attention and not self.has_attention:
            raise TypeError(
                f"{self.module!r} gives logits only, no attention probabilities; attention "
                "measures need a transformers PreTrainedModel or an object implementing "
                "phasewatch.models.AttentionModel (see docs/models.md)"
            )
        input_ids = self._check_input_ids(input_ids)
        if attention_mask is not None:
            attention_mask = attention_mask.reshape(input_ids.shape).to(input_ids.device)
        with self.probing(attention=attention):
            out_logits, attentions = self._run(input_ids, attention, attention_mask, logits)
        if out_logits is not None:
            self._check_logits(out_logits, *input_ids.shape, input_ids.shape[1])
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
        if isinstance(self.module, LogitsFunction):
            return self.module(input_ids), None
        if attention_mask is not None:
            raise ValueError(
                f"{type(self.module).__name__} implements AttentionModel, whose "
                "forward_with_attentions takes no attention_mask; pass unpadded sequences, or "
                "right-pad them (causal attention never looks ahead) and leave attention_mask=None."
            )
        out_logits, attentions = self.module.forward_with_attentions(input_ids)
        out_logits = logits_of(out_logits) if logits else None
        return out_logits, (list(attentions) if attention else None)

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

    def _check_logits(self, logits: Tensor, batch: int, tokens: int, positions: int) -> None:
        """Logits must be ``[batch, positions, V]``: one row per input position asked for."""
        if logits.ndim == 3 and tuple(logits.shape[:2]) == (batch, positions):
            return
        where = (
            "forward_with_attentions"
            if isinstance(self.module, AttentionModel) and not self._huggingface
            else "the model"
        )
        raise ValueError(
            f"{type(self.module).__name__}: {where} returned logits of shape "
            f"{list(logits.shape)} for input ids [B, T] = [{batch}, {tokens}]; phasewatch needs "
            f"logits at every position, [B, T, V] = [{batch}, {positions}, V]. A nanoGPT-style "
            "forward returns only the last position's logits when called without targets: "
            "implement phasewatch.models.AttentionModel, whose forward_with_attentions returns "
            "the logits of all positions (see docs/models.md), or pass a function that does."
        )

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

    Accepts, in this order: a ``ProbeModel`` (returned as is); a
    :class:`~phasewatch.models.LogitsFunction`; a transformers ``PreTrainedModel``;
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
    if isinstance(obj, LogitsFunction):
        return ProbeModel(obj)
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


def _training_modes(model: nn.Module | None) -> list[tuple[nn.Module, bool]]:
    if not isinstance(model, nn.Module):
        return []
    return [(module, module.training) for module in model.modules()]


def _restore_training_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    for module, training in modes:
        module.training = training

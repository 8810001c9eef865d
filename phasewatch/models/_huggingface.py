"""Hugging Face specifics: dimensions, switching to eager attention for one probe, leaving no hooks.

Verified on transformers 5.24 (see ``docs/facts.md``): models built from a config default to
``config._attn_implementation == "sdpa"``, which returns an empty ``attentions`` tuple; switching to
``"eager"`` and back with ``set_attn_implementation`` works at run time (it only logs a warning for
classes that cannot switch, so the value is checked afterwards); and the first call with
``output_attentions=True`` installs persistent output-capturing forward hooks, which are removed
again here. What those hooks capture is looked up in a process-wide registry that a model's
constructor fills: a model unpickled in another process (``ddp_spawn``, ``multiprocessing``) was
never constructed there, so it is registered again before a probe.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn
from transformers import PreTrainedModel

try:  # transformers >= 5: output capture is registered per class when a model is constructed
    from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY
except ImportError:  # pragma: no cover - older transformers return attentions without it
    _CAN_RECORD_REGISTRY = None

EAGER = "eager"
# Attribute transformers sets on a model once its output-capturing hooks are installed.
_HOOKS_INSTALLED_FLAG = "_output_capturing_hooks_installed"
_MISSING = object()


def is_huggingface_model(obj: object) -> bool:
    """Whether ``obj`` is a transformers ``PreTrainedModel``."""
    return isinstance(obj, PreTrainedModel)


def huggingface_dimensions(model: PreTrainedModel) -> tuple[int, int, int | None, int | None]:
    """``(num_layers, num_heads, vocab_size, max_length)`` from the model's (text) config."""
    config = model.config.get_text_config()
    num_layers = getattr(config, "num_hidden_layers", None)
    num_heads = getattr(config, "num_attention_heads", None)
    if num_layers is None or num_heads is None:
        raise ValueError(
            f"{type(model).__name__}'s config has no `num_hidden_layers`/`num_attention_heads`; "
            "phasewatch cannot tell its layer and head counts. Wrap it in an object implementing "
            "phasewatch.models.AttentionModel (see docs/models.md)."
        )
    vocab_size = getattr(config, "vocab_size", None)
    max_length = getattr(config, "max_position_embeddings", None)
    return int(num_layers), int(num_heads), vocab_size, max_length


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Switch ``model`` to eager attention (which returns probabilities) and back on exit."""
    previous = model.config._attn_implementation
    if previous == EAGER:
        yield
        return
    model.set_attn_implementation(EAGER)
    try:
        now = model.config._attn_implementation
        if now != EAGER:
            raise RuntimeError(
                f"{type(model).__name__} stayed on attn_implementation={now!r} after "
                "set_attn_implementation('eager') (this class cannot switch at run time), so it "
                "returns no attention probabilities. Load it with attn_implementation='eager', "
                "or implement phasewatch.models.AttentionModel (see docs/models.md)."
            )
        yield
    finally:
        if model.config._attn_implementation != previous:
            model.set_attn_implementation(previous)


def register_output_capture(model: nn.Module) -> int:
    """Register each ``PreTrainedModel`` in ``model`` for output capture; returns how many were new.

    transformers 5 records ``output_attentions`` through forward hooks whose targets it looks up,
    by class, in a process-wide registry that ``PreTrainedModel.__init__`` fills. A model built in
    one process and unpickled in another (a ``ddp_spawn`` worker) was never constructed there: its
    class is missing, no hook is installed and ``attentions`` comes back empty although the model
    is on eager attention. This does what the constructor does, for each class not yet registered
    (a no-op in the process that built the model, and with transformers < 5).
    """
    if _CAN_RECORD_REGISTRY is None:
        return 0
    registered = 0
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and str(type(module)) not in _CAN_RECORD_REGISTRY:
            _CAN_RECORD_REGISTRY[module] = module._can_record_outputs
            registered += 1
    return registered


@contextmanager
def no_new_hooks(model: nn.Module) -> Iterator[None]:
    """Remove on exit every forward (pre-)hook that appeared on ``model``'s modules meanwhile.

    transformers installs output-capturing hooks on the first call with ``output_attentions=True``
    and marks the model with a flag; both are undone, so the training forward runs exactly as
    before the probe.
    """
    modules = list(model.modules())
    before = [(set(m._forward_hooks), set(m._forward_pre_hooks)) for m in modules]
    flags = [m.__dict__.get(_HOOKS_INSTALLED_FLAG, _MISSING) for m in modules]
    try:
        yield
    finally:
        for module, (hooks, pre_hooks), flag in zip(modules, before, flags, strict=True):
            for hook_id in set(module._forward_hooks) - hooks:
                del module._forward_hooks[hook_id]
                module._forward_hooks_with_kwargs.pop(hook_id, None)
                module._forward_hooks_always_called.pop(hook_id, None)
            for hook_id in set(module._forward_pre_hooks) - pre_hooks:
                del module._forward_pre_hooks[hook_id]
                module._forward_pre_hooks_with_kwargs.pop(hook_id, None)
            if flag is _MISSING:
                module.__dict__.pop(_HOOKS_INSTALLED_FLAG, None)
            else:
                module.__dict__[_HOOKS_INSTALLED_FLAG] = flag


def huggingface_forward(
    model: PreTrainedModel,
    input_ids: Tensor,
    *,
    attention: bool,
    attention_mask: Tensor | None,
    logits: bool,
) -> tuple[Tensor | None, list[Tensor] | None]:
    """One forward pass; the caller has set eval mode, no_grad and (if ``attention``) eager.

    Without ``logits`` the backbone (``model.base_model``) runs alone, skipping the ``[B, T, V]``
    language-model head.
    """
    runner = model if logits else model.base_model
    outputs = runner(
        input_ids=input_ids,
        attention_mask=attention_mask,
        output_attentions=attention,
        use_cache=False,
        return_dict=True,
    )
    out_logits = None
    if logits:
        out_logits = getattr(outputs, "logits", None)
        if out_logits is None:
            raise ValueError(
                f"{type(model).__name__} returned no `logits`: phasewatch needs a causal language "
                "model with a head (e.g. GPT2LMHeadModel, not GPT2Model)."
            )
    if not attention:
        return out_logits, None
    attentions = outputs.attentions
    if not attentions or any(a is None for a in attentions):
        raise RuntimeError(_no_attentions_message(model, attentions))
    return out_logits, list(attentions)


def _no_attentions_message(model: PreTrainedModel, attentions: object) -> str:
    implementation = model.config._attn_implementation
    said = (
        f"{type(model).__name__} returned no attention probabilities (attentions="
        f"{_describe(attentions)}) with attn_implementation={implementation!r}. "
    )
    if implementation != EAGER:
        return said + (
            "SDPA and flash attention never return them: load the model with "
            "attn_implementation='eager', or implement phasewatch.models.AttentionModel "
            "(see docs/models.md)."
        )
    return said + (
        "Eager attention returns them when transformers has registered the model's output "
        "capture in this process (its constructor does; phasewatch re-registers a model "
        "unpickled from another process). If the model's class has no `_can_record_outputs` or "
        "its forward ignores `output_attentions`, implement phasewatch.models.AttentionModel "
        "(see docs/models.md)."
    )


def huggingface_logits(model: PreTrainedModel, input_ids: Tensor, *, keep: int | None) -> Tensor:
    """Logits ``[B, keep or T, V]``; the caller has set eval mode and no_grad.

    A model whose ``forward`` accepts ``logits_to_keep`` computes only the last ``keep`` positions
    (the LM head is the costly part for a large vocabulary); others are sliced.
    """
    options: dict = {"use_cache": False, "return_dict": True}
    if keep is not None and _accepts_logits_to_keep(model):
        options["logits_to_keep"] = keep
    logits = getattr(model(input_ids=input_ids, **options), "logits", None)
    if logits is None:
        raise ValueError(
            f"{type(model).__name__} returned no `logits`: phasewatch needs a causal language "
            "model with a head (e.g. GPT2LMHeadModel, not GPT2Model)."
        )
    if keep is not None and logits.ndim == 3 and logits.shape[1] == input_ids.shape[1]:
        logits = logits[:, input_ids.shape[1] - keep :]
    return logits


def _accepts_logits_to_keep(model: PreTrainedModel) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep``; read once per forward function (the
    signature costs ~0.15 ms, paid at every batch of word surprisal before)."""
    forward = model.forward
    forward = getattr(forward, "__func__", forward)
    try:
        return _takes_logits_to_keep(forward)
    except TypeError:  # an unhashable callable: read its signature every time
        return _takes_logits_to_keep.__wrapped__(forward)


@functools.lru_cache(maxsize=64)
def _takes_logits_to_keep(forward: Any) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


def _describe(attentions: object) -> str:
    if isinstance(attentions, tuple | list) and len(attentions) == 0:
        return "()"
    if isinstance(attentions, tuple | list):
        return f"{len(attentions)} tensors, some None"
    return repr(attentions)

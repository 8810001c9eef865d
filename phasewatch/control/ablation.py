"""Head ablation: zero (or mean-ablate) chosen attention heads' outputs inside a ``with`` block.

A head's output is its context vector — the attention-weighted values, the head's slice of the
input of the attention output projection (GPT-2 ``attn.c_proj``, GPT-NeoX ``attention.dense``,
Llama ``self_attn.o_proj``). :func:`ablate_heads` installs one forward pre-hook per ablated layer
that replaces the chosen slices, and removes the hooks on exit: no parameter is touched, so the
model is bit-identical afterwards. A custom model (:class:`~phasewatch.models.AttentionModel`)
implements the one optional method ``ablate_heads(heads, *, mode, mean_over)`` instead.

The attention pattern of an ablated head is unchanged (only what it writes is removed); the
offline analysis therefore reports an ablated head's own scores as NaN (:func:`mask_ablated`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from phasewatch.models import ProbeModel, as_probe_model
from phasewatch.models.logits_function import LogitsFunction

#: Ablation modes: ``"zero"`` sets the head's output to 0; ``"mean"`` to its mean output.
MODES = ("zero", "mean")
# Names of the attention module in a Hugging Face decoder block, and of its output projection.
_ATTENTION_NAMES = ("attn", "attention", "self_attn")
_OUTPUT_NAMES = ("c_proj", "dense", "o_proj", "out_proj")
_HEAD_RE = re.compile(r"^\s*L(\d+)\s*H(\d+)\s*$", re.IGNORECASE)

Heads = str | Sequence[tuple[int, int] | str]


def parse_heads(
    heads: Heads, num_layers: int | None = None, num_heads: int | None = None
) -> list[tuple[int, int]]:
    """``"L1H0,L1H2"`` (or ``[(1, 0), (1, 2)]``, or ``["L1H0", "L1H2"]``) → sorted unique
    ``[(layer, head), ...]`` (0-based), checked against ``num_layers`` × ``num_heads`` if given.

    Raises:
        ValueError: an entry that is not ``L<layer>H<head>`` or a pair of ints, an index out of
            range, or no head at all.
    """
    items = heads.split(",") if isinstance(heads, str) else list(heads)
    parsed: set[tuple[int, int]] = set()
    for item in items:
        if isinstance(item, str):
            match = _HEAD_RE.match(item)
            if match is None:
                raise ValueError(
                    f"cannot read head {item!r}: write heads as 'L<layer>H<head>' separated by "
                    "commas, 0-based, e.g. 'L1H0,L1H2' (or a list of (layer, head) pairs)"
                )
            pair = (int(match[1]), int(match[2]))
        elif (
            isinstance(item, Sequence)
            and len(item) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) for i in item)
        ):
            pair = (int(item[0]), int(item[1]))
        else:
            raise ValueError(
                f"cannot read head {item!r}: give (layer, head) pairs of ints or 'L<layer>H<head>' "
                "strings, e.g. [(1, 0), (1, 2)] or 'L1H0,L1H2'"
            )
        layer, head = pair
        if layer < 0 or head < 0:
            raise ValueError(f"head {item!r}: layer and head are 0-based indices, got {pair}")
        if num_layers is not None and layer >= num_layers:
            raise ValueError(
                f"head {item!r}: layer {layer} does not exist; the model has {num_layers} layers "
                f"(0..{num_layers - 1})"
            )
        if num_heads is not None and head >= num_heads:
            raise ValueError(
                f"head {item!r}: head {head} does not exist; the model has {num_heads} heads per "
                f"layer (0..{num_heads - 1})"
            )
        parsed.add(pair)
    if not parsed:
        raise ValueError(f"no head to ablate in {heads!r}: give e.g. 'L1H0,L1H2'")
    return sorted(parsed)


def format_heads(heads: Sequence[tuple[int, int]]) -> str:
    """``[(1, 0), (1, 2)]`` → ``"L1H0,L1H2"`` (the form the table and the CLI use)."""
    return ",".join(f"L{layer}H{head}" for layer, head in heads)


@contextmanager
def ablate_heads(
    model: Any,
    heads: Heads,
    *,
    mode: str = "zero",
    mean_over: Tensor | None = None,
) -> Iterator[list[tuple[int, int]]]:
    """Ablate ``heads`` of ``model`` for the duration of the ``with`` block.

    Every forward pass inside the block — training steps, :class:`~phasewatch.models.ProbeModel`
    passes, ``PPPMeasure.measure``, ``HeadMeasure.measure`` — runs without the heads' outputs.

    Args:
        model: a Hugging Face GPT-2 / GPT-NeoX / Llama causal LM, an
            :class:`~phasewatch.models.AttentionModel` with an ``ablate_heads`` method, or anything
            :func:`~phasewatch.models.as_probe_model` finds one in (a ``LightningModule``).
        heads: ``"L1H0,L1H2"`` or ``[(1, 0), (1, 2)]`` (0-based layer, head).
        mode: ``"zero"``: the head's output (its context vector, before the output projection)
            is 0; ``"mean"``: it is the head's mean output over the probe batch (every batch and
            position, padding included), per dimension.
        mean_over: with ``mode="mean"``, ``[B, T]`` token ids whose mean output is used for every
            pass in the block (one extra eval pass at entry); ``None``: each pass uses the mean
            over its own batch.

    Yields:
        The parsed ``[(layer, head), ...]``.

    Raises:
        ValueError: an unreadable or out-of-range head, an unknown ``mode``, ``mean_over`` with
            ``mode="zero"``.
        TypeError: a model that cannot be ablated (a logits-only function; a custom model
            without ``ablate_heads``; a Hugging Face model whose attention output projection
            phasewatch does not find).
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {', '.join(MODES)}, got {mode!r}")
    if mean_over is not None and mode != "mean":
        raise ValueError("`mean_over` is the batch of mode='mean'; with mode='zero' leave it None")
    if isinstance(model, LogitsFunction) or (
        isinstance(model, ProbeModel) and not model.has_attention
    ):
        raise TypeError(
            "a LogitsFunction has no heads to ablate; pass the model itself (a transformers "
            "PreTrainedModel or an AttentionModel with ablate_heads, see docs/models.md)"
        )
    probe = as_probe_model(model)
    parsed = parse_heads(heads, probe.num_layers, probe.num_heads)
    if not probe._huggingface:
        method = getattr(probe.module, "ablate_heads", None)
        if not callable(method):
            raise TypeError(
                f"{type(probe.module).__name__} implements AttentionModel without the optional "
                "method ablate_heads(heads, *, mode, mean_over) that returns a context manager; "
                "add it to ablate heads of a custom model (see docs/models.md)"
            )
        with method(parsed, mode=mode, mean_over=mean_over):
            yield parsed
        return
    projections = output_projections(probe.module, probe.num_layers)
    by_layer: dict[int, list[int]] = {}
    for layer, head in parsed:
        by_layer.setdefault(layer, []).append(head)
    means = None
    if mean_over is not None:
        means = _head_means(probe, projections, by_layer, mean_over)
    with ExitStack() as stack:
        for layer, layer_heads in by_layer.items():
            hook = _replacement_hook(
                layer_heads, probe.num_heads, mode, None if means is None else means[layer]
            )
            handle = projections[layer].register_forward_pre_hook(hook)
            stack.callback(handle.remove)
        yield parsed


def output_projections(model: nn.Module, num_layers: int) -> list[nn.Module]:
    """Per layer, the attention output projection of a Hugging Face decoder (its input holds the
    heads' context vectors, head-major: ``[..., H·d]``).

    Raises:
        TypeError: no list of ``num_layers`` blocks, or a block without ``attn``/``attention``/
            ``self_attn`` holding ``c_proj``/``dense``/``o_proj``/``out_proj``.
    """
    blocks = next(
        (
            m
            for m in model.modules()
            if isinstance(m, nn.ModuleList) and len(m) == num_layers and num_layers > 0
        ),
        None,
    )
    found = []
    for block in blocks if blocks is not None else []:
        attention = next((getattr(block, n) for n in _ATTENTION_NAMES if hasattr(block, n)), None)
        projection = next(
            (getattr(attention, n) for n in _OUTPUT_NAMES if hasattr(attention, n)), None
        )
        if not isinstance(projection, nn.Module):
            break
        found.append(projection)
    if len(found) != num_layers:
        raise TypeError(
            f"cannot find the attention output projection of each of the {num_layers} layers of "
            f"{type(model).__name__} (looked for a block list holding "
            f"{'/'.join(_ATTENTION_NAMES)}.{'/'.join(_OUTPUT_NAMES)}); head ablation supports "
            "GPT-2, GPT-NeoX and Llama-style models, else wrap the model in an AttentionModel "
            "with ablate_heads (see docs/models.md)"
        )
    return found


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    if x.shape[-1] % num_heads:
        raise RuntimeError(
            f"the attention output projection's input has width {x.shape[-1]}, not a multiple "
            f"of {num_heads} heads: cannot split it per head"
        )
    return x.reshape(*x.shape[:-1], num_heads, x.shape[-1] // num_heads)


def _replacement_hook(
    heads: list[int], num_heads: int, mode: str, means: dict[int, Tensor] | None
) -> Any:
    def hook(module: nn.Module, args: tuple) -> tuple:
        x, *rest = args
        split = _split_heads(x, num_heads).clone()  # never write into the caller's tensor
        for head in heads:
            if mode == "zero":
                split[..., head, :] = 0.0
            elif means is not None:
                split[..., head, :] = means[head].to(split.dtype)
            else:
                flat = split[..., head, :].reshape(-1, split.shape[-1])
                split[..., head, :] = flat.mean(dim=0)
        return (split.reshape(x.shape), *rest)

    return hook


def _head_means(
    probe: ProbeModel,
    projections: list[nn.Module],
    by_layer: dict[int, list[int]],
    mean_over: Tensor,
) -> dict[int, dict[int, Tensor]]:
    """Mean output ``[d]`` of each ablated head over the batch ``mean_over`` (one eval pass)."""
    means: dict[int, dict[int, Tensor]] = {}

    def capture(layer: int) -> Any:
        def hook(module: nn.Module, args: tuple) -> None:
            split = _split_heads(args[0], probe.num_heads).detach()
            means[layer] = {
                h: split[..., h, :].reshape(-1, split.shape[-1]).mean(dim=0)
                for h in by_layer[layer]
            }

        return hook

    with ExitStack() as stack:
        for layer in by_layer:
            handle = projections[layer].register_forward_pre_hook(capture(layer))
            stack.callback(handle.remove)
        probe.logits(mean_over)
    return means


def mask_ablated(
    per_head: dict[str, Tensor], heads: Sequence[tuple[int, int]]
) -> dict[str, Tensor]:
    """Per-head ``[L, H]`` scores with the ablated heads set to NaN (an ablated head writes
    nothing, so its attention pattern's score says nothing about the model); other shapes pass."""
    masked = {}
    for name, scores in per_head.items():
        if isinstance(scores, Tensor) and scores.dim() == 2:
            scores = scores.clone().float()
            for layer, head in heads:
                if layer < scores.shape[0] and head < scores.shape[1]:
                    scores[layer, head] = math.nan
        masked[name] = scores
    return masked


def nanmax(scores: Tensor) -> float:
    """Largest finite entry (NaN if none): the max over the heads not ablated."""
    finite = scores[torch.isfinite(scores)]
    return float(finite.max()) if finite.numel() else math.nan


__all__ = [
    "MODES",
    "ablate_heads",
    "format_heads",
    "mask_ablated",
    "nanmax",
    "output_projections",
    "parse_heads",
]

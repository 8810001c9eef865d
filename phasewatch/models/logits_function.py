"""A plain logits function as a model: token ids in, next-token logits out, no attention.

:func:`phasewatch.measures.surprisal.word_surprisal` accepts one (a documented decision: scoring a
model you can only call, e.g. behind an API of your own, needs nothing else). It is wrapped in
:class:`LogitsFunction` so that a :class:`~phasewatch.models.ProbeModel` runs it like any other
model: eval mode and ``torch.no_grad()`` for the pass, every module's mode restored afterwards when
the function is an ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


class LogitsFunction:
    """A callable mapping token ids ``[B, T]`` (long) to logits ``[B, T, V]``.

    The callable may return the logits as a tensor, as an object with ``.logits``, or as a tuple
    whose first element is the logits. It gives no attention probabilities, so only surprisal can
    be measured with it.

    Args:
        function: the callable.
        max_length: longest input in tokens; default ``function.max_length`` if it has one.
        device: where the ids go; default the device of ``function``'s parameters (an
            ``nn.Module``), else ``function.device`` (a ``torch.device``), else CPU.
    """

    def __init__(
        self,
        function: Callable[[Tensor], Any],
        *,
        max_length: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        if not callable(function):
            raise TypeError(
                f"a logits function must be callable (ids [B, T] -> logits [B, T, V]), got "
                f"{type(function).__name__}"
            )
        self.function = function
        self.max_length = max_length if max_length is not None else _int_or_none(function)
        self.device = torch.device(device) if device is not None else _device_of(function)

    def __call__(self, input_ids: Tensor) -> Tensor:
        return logits_of(self.function(input_ids))

    def __repr__(self) -> str:
        return f"LogitsFunction({_name(self.function)}, max_length={self.max_length})"


def logits_of(out: Any) -> Tensor:
    """The logits in a model's output: a tensor, ``.logits``, or the first element of a tuple."""
    if isinstance(out, Tensor):
        return out
    if isinstance(getattr(out, "logits", None), Tensor):
        return out.logits
    if isinstance(out, tuple | list) and out and isinstance(out[0], Tensor):
        return out[0]
    raise TypeError(
        f"the model returned {type(out).__name__}; expected logits [B, T, V] as a tensor, an "
        "object with `.logits`, or a tuple with the logits first"
    )


def _int_or_none(function: Any) -> int | None:
    value = getattr(function, "max_length", None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _device_of(function: Any) -> torch.device:
    if isinstance(function, nn.Module):
        for tensor in (*function.parameters(), *function.buffers()):
            return tensor.device
    device = getattr(function, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")


def _name(function: Any) -> str:
    return getattr(function, "__qualname__", None) or type(function).__name__

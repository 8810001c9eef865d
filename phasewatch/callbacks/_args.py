"""Checks of constructor arguments: the message names the argument, what it allows and what it got.

Types are checked too (``every_n_steps='100'`` or ``2.5`` is refused at construction), so a
configuration file with a quoted number fails before training rather than at the first step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


def int_arg(name: str, value: Any, minimum: int, meaning: str = "") -> int:
    """``value`` as an int ``>= minimum``; ``ValueError``/``TypeError`` naming ``name`` otherwise.

    An integral float (``100.0``) is accepted; a bool, a string or ``2.5`` is not.
    """
    unit = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be an int >= {minimum}{unit}, got {value!r} of type "
            f"{type(value).__name__}" + (" (unquote the number)" if isinstance(value, str) else "")
        )
    if not isinstance(value, numbers.Integral) and not float(value).is_integer():
        raise TypeError(f"`{name}` must be a whole number >= {minimum}{unit}, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}{unit}")
    return int(value)


def float_arg(
    name: str, value: Any, low: float, high: float | None = None, meaning: str = ""
) -> float:
    """``value`` as a finite float in ``[low, high)`` (``high=None``: no upper bound)."""
    span = f"in [{low}, {high})" if high is not None else f">= {low}"
    unit = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number {span}{unit}, got {value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value) or value < low or (high is not None and value >= high):
        raise ValueError(f"`{name}` must be a number {span}{unit}, got {value!r}")
    return value


def bool_arg(name: str, value: Any) -> bool:
    """``value`` if it is a bool (``'false'`` would be true: refused)."""
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be True or False, got {value!r} of type {type(value).__name__}"
        )
    return value


def steps_arg(name: str, value: Any) -> list[int] | None:
    """A sorted list of distinct step numbers >= 0, or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | set | frozenset | range):
        raise TypeError(
            f"`{name}` must be a list of step numbers (ints >= 0) or None, got {value!r}"
        )
    wrong = [s for s in value if isinstance(s, bool) or not isinstance(s, numbers.Integral)]
    if wrong:
        raise TypeError(
            f"`{name}` must hold step numbers (ints >= 0), got {wrong[0]!r} of type "
            f"{type(wrong[0]).__name__} in {list(value)}"
        )
    if any(s < 0 for s in value):
        raise ValueError(f"`{name}` must be non-negative step numbers, got {list(value)}")
    return sorted({int(s) for s in value})


def optional_str_arg(name: str, value: Any) -> str | None:
    """``value`` if it is None or a string."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string or None, got {value!r}")
    return value

"""Checks of a Trainer's callbacks that phasewatch runs once: before training, or when first seen.

- two monitors that would write the same keys, or save their state under one checkpoint key;
- a built-in ``EarlyStopping`` / ``ModelCheckpoint`` reading, at a validation, a key last measured
  at another step (a stale value; ``ModelCheckpoint`` saves other weights), at that validation;
- a watched key that no producer logs (a misspelt key), after the first validation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

#: Lightning's callbacks that read a monitored key from ``trainer.callback_metrics``.
BUILTINS = (EarlyStopping, ModelCheckpoint)


def duplicate_outputs(monitors: Sequence[Any]) -> str | None:
    """Why two of ``monitors`` cannot run together (same keys or same state key); None if fine."""
    for i, first in enumerate(monitors):
        for second in monitors[i + 1 :]:
            shared = sorted(set(_produces(first)) & set(_produces(second)))
            if shared:
                return (
                    f"two phasewatch monitors would write the same keys ({_few(shared)}): "
                    f"{_name(first)} and {_name(second)}. Give each PPPMonitor its own "
                    "`prefix=` (keys become ppp/<prefix>/...), or remove one"
                )
            if first.state_key == second.state_key:
                return (
                    f"two phasewatch callbacks would save their checkpoint state under one key "
                    f"{first.state_key!r}: {_name(first)} and {_name(second)}; a resume would "
                    "restore one state into both. Give them different settings (for PPPMonitor: "
                    "`prefix=`), or remove one"
                )
    return None


def stale_builtins(
    monitor: Any, callbacks: Iterable[Any], measured: int | None, step: int
) -> list[str]:
    """One message per built-in that reads, at the validation of ``step``, a key ``monitor`` last
    measured at step ``measured`` (a stale value); none when the two steps agree.

    Called at each validation of a monitor on its step schedule (``on_validation=False``).
    """
    if measured == step:
        return []
    when = "never yet" if measured is None else f"last at step {measured}"
    messages = []
    for callback in callbacks:
        key = getattr(callback, "monitor", None)
        if isinstance(callback, BUILTINS) and key in monitor.produces:
            saves = (
                " ModelCheckpoint saves the weights of this validation under that older value."
                if isinstance(callback, ModelCheckpoint)
                else ""
            )
            messages.append(
                f"{type(callback).__name__}(monitor={key!r}) reads {key} at the validation of "
                f"step {step}, but {type(monitor).__name__} measured it {when}, on its own step "
                f"schedule ({monitor.schedule!r}): the value it reads is stale.{saves} Fix: "
                f"{type(monitor).__name__}(on_validation=True) measures at each validation "
                "(see docs/callbacks.md, 'With Lightning's own callbacks'). Said once per run."
            )
    return messages


def unknown_key_message(owner: str, key: str, known: Iterable[str]) -> str:
    """The message for a watched ``key`` that no producer logs, naming the keys that exist."""
    known = sorted(set(known))
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"{owner} watches {key!r}, but no phasewatch monitor produces it and it was not logged "
        f"by the first validation.{hint} Keys that exist: {', '.join(known) or 'none'}"
    )


def _produces(callback: Any) -> tuple[str, ...]:
    return tuple(getattr(callback, "produces", ()))


def _name(monitor: Any) -> str:
    prefix = getattr(monitor, "prefix", None)
    return f"{type(monitor).__name__}(prefix={prefix!r})" if prefix else type(monitor).__name__


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")

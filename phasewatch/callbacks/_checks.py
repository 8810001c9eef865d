"""Checks of a Trainer's callbacks that phasewatch runs once, before training.

- two monitors that would write the same keys, or save their state under one checkpoint key;
- a built-in ``EarlyStopping`` / ``ModelCheckpoint`` monitoring a key measured on a step schedule
  (it reads a stale value at validation, and ``ModelCheckpoint`` saves other weights);
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


def stale_builtins(monitor: Any, callbacks: Iterable[Any]) -> list[str]:
    """One warning per built-in monitoring a key ``monitor`` measures on its step schedule.

    ``on_validation=True`` measures at each validation, just before the built-ins read the key:
    nothing to warn about then.
    """
    if monitor.on_validation:
        return []
    messages = []
    for callback in callbacks:
        key = getattr(callback, "monitor", None)
        if isinstance(callback, BUILTINS) and key in monitor.produces:
            saves = (
                " and saves the weights of that validation, not those measured"
                if isinstance(callback, ModelCheckpoint)
                else ""
            )
            messages.append(
                f"{type(callback).__name__}(monitor={key!r}) reads {key} at each validation, "
                f"but {type(monitor).__name__} measures it on its own step schedule "
                f"({monitor.schedule!r}): it sees the value of the last measurement, up to "
                f"{_stale_steps(monitor)} optimizer steps old,{saves}. Fix: "
                f"{type(monitor).__name__}(on_validation=True) measures at each validation "
                "(see docs/callbacks.md, 'With Lightning's own callbacks')"
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


def _stale_steps(monitor: Any) -> str:
    schedule = monitor.schedule
    if schedule.steps is not None:
        return "any number of"
    return str(schedule.every_n_steps)


def _name(monitor: Any) -> str:
    prefix = getattr(monitor, "prefix", None)
    return f"{type(monitor).__name__}(prefix={prefix!r})" if prefix else type(monitor).__name__


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")

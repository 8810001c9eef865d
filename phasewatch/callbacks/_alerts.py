"""Alerts from the monitors to whoever listens: one text per event, handed to every
:class:`AlertListener` in ``trainer.callbacks`` (the webhook notifier) in the hook that fired
it."""

from __future__ import annotations

import logging

from lightning.pytorch import Trainer

from phasewatch.detect.alert_text import alert_text
from phasewatch.detect.events import PeakEvent, TransitionEvent

log = logging.getLogger("phasewatch")


class AlertListener:
    """Mixin of a callback that receives each transition and confirmed-peak alert.

    :meth:`on_alert` is called on every rank, once per event, right after the monitor logged it;
    it must not raise (an exception is logged and training goes on).
    """

    def on_alert(self, trainer: Trainer, event: TransitionEvent | PeakEvent, text: str) -> None:
        """``event`` and its alert ``text`` (:func:`phasewatch.detect.alert_text.alert_text`)."""


def text_for(
    event: TransitionEvent | PeakEvent,
    *,
    checkpoint: str | None = None,
    peak_checkpoint: str | None = None,
    peak_step: int | None = None,
) -> str:
    """The alert text of ``event`` (:func:`~phasewatch.detect.alert_text.alert_text`)."""
    return alert_text(
        event, checkpoint=checkpoint, peak_checkpoint=peak_checkpoint, peak_step=peak_step
    )


def publish(trainer: Trainer, event: TransitionEvent | PeakEvent, text: str) -> None:
    """Hand ``event`` and ``text`` to every :class:`AlertListener` among ``trainer.callbacks``."""
    for callback in trainer.callbacks:
        if isinstance(callback, AlertListener):
            try:
                callback.on_alert(trainer, event, text)
            except Exception:
                log.exception("%s.on_alert raised; training goes on", type(callback).__name__)

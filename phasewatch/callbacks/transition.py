"""TransitionMonitor: detect the phase transition as it happens and act on it."""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks import _alerts, _logging
from phasewatch.callbacks._args import bool_arg, float_arg, optional_str_arg
from phasewatch.callbacks.base import (
    MeasurementListener,
    count_tokens,
    state_with_defaults,
    take_history,
)
from phasewatch.callbacks.peak import PeakMonitor
from phasewatch.callbacks.schedule import MeasureSchedule
from phasewatch.detect import DEFAULT_WATCH, PAPER_WATCH, TransitionDetector, TransitionEvent
from phasewatch.detect.transition import RULES

log = logging.getLogger("phasewatch")

__all__ = [
    "DEFAULT_WATCH",
    "LOSS_KEY",
    "PAPER_WATCH",
    "PhaseTransitionWarning",
    "TransitionMonitor",
]

#: The pseudo-key of the training loss (nats/token), smoothed, read from ``training_step``'s output.
LOSS_KEY = keys.LOSS
# Per-head scores kept per watched key when no candidate is pending (a pending candidate keeps
# every evaluation since its first, so that the event's step can be reached back to).
_PER_HEAD_KEPT = 2
_DETECTOR_ARGS = tuple(
    name for name in inspect.signature(TransitionDetector).parameters if name != "metric"
)


class PhaseTransitionWarning(UserWarning):
    """Warned once per detected phase transition."""


class TransitionMonitor(MeasurementListener, Callback):
    """Watch logged series and raise an alert when one changes abruptly and stays changed.

    The rule is :class:`phasewatch.detect.TransitionDetector` (see docs/transition.md). By default
    (``rule="abrupt"``) a change of at least ``max(min_change, noise_factor * noise)`` past the
    level of the evaluations a factor 2 to 4 back in tokens, held until 1.2 times the tokens of
    its first evaluation, fires one :class:`TransitionEvent`, whatever the measuring cadence.
    ``rule="threshold"`` is Aoyama & Wilcox's (2025) transition point: the first evaluation of
    the max induction score above 0.1.

    Series come from phasewatch's monitors the moment they measure (e.g. ``heads/induction_max``
    from :class:`AttentionMonitor`), from ``"loss"``: the training loss of ``training_step``'s
    output (an exponential moving average, ``loss_ema`` per step) read on the monitor's own
    schedule, or, for any other key, from ``trainer.callback_metrics`` at each validation.

    On an event (one text for all, :func:`phasewatch.detect.alert_text.alert_text`, also what
    :class:`WebhookNotifier` sends): a ``PhaseTransitionWarning`` and a log line, text
    ``transition/events`` in every TensorBoard, CSV, W&B and MLflow logger (docs/callbacks.md)
    and a scalar marker ``transition/<metric>`` = 1 at the event's step,
    :meth:`on_transition` (override it, or pass ``on_transition=``), and, if asked, a checkpoint
    (``transition-<metric>-step<k>.ckpt``, saved when the event is confirmed) and a stop.

    Args:
        watch: metric key → detector arguments (``direction``, ``min_change``, ``noise_factor``,
            ``reference_span``, ``min_reference``, ``confirm_span``, ``confirm``,
            ``hysteresis``, ``detrend``, ``start_step``, ``rule``, ``level``; units and defaults
            in :class:`~phasewatch.detect.TransitionDetector`). Default :data:`DEFAULT_WATCH`:
            the induction score (``min_change`` 0.05), and the loss (0.25 nats/token, along its
            own trend) from step 300 on: its initial descent from ln(vocabulary size) is not a
            transition.
        rule: ``"abrupt"`` or ``"threshold"`` for every watched key that does not set its own
            (default None: each key's own, else ``"abrupt"``). ``rule="threshold"`` without
            ``watch`` watches :data:`PAPER_WATCH`: the induction score crossing 0.1.
        checkpoint: save a checkpoint when a transition is confirmed.
        stop: stop training once a transition is confirmed.
        dirpath: where checkpoints go (default: the logger's directory).
        on_transition: a callable ``(trainer, pl_module, event)`` called on every rank per event.
        loss_ema: smoothing of the per-step training loss, 0 (none) to <1 (default 0.9). A NaN
            or inf loss is left out of the average, warned (naming the step) and makes the next
            reading of ``"loss"`` NaN.
        every_n_steps, log_spaced, per_decade: the schedule on which the loss is read.
        strict: raise on errors in acting on events instead of logging them, on a non-finite
            training loss, and on a watched
            key that no producer logs (a misspelt key, checked before training for phasewatch's
            keys and at the first validation for others); by default one loud warning names the
            keys that exist.
    """

    def __init__(
        self,
        watch: dict[str, dict[str, Any]] | None = None,
        *,
        checkpoint: bool = False,
        stop: bool = False,
        dirpath: str | None = None,
        on_transition: Callable | None = None,
        rule: str | None = None,
        loss_ema: float = 0.9,
        every_n_steps: int = 100,
        log_spaced: bool = True,
        per_decade: int = 10,
        strict: bool = False,
    ) -> None:
        loss_ema = float_arg("loss_ema", loss_ema, 0.0, 1.0, "0 = no smoothing")
        optional_str_arg("dirpath", None if dirpath is None else str(dirpath))
        if on_transition is not None and not callable(on_transition):
            raise TypeError(
                "`on_transition` must be a callable (trainer, pl_module, event) or None, got "
                f"{on_transition!r}"
            )
        if rule is not None and rule not in RULES:
            raise ValueError(f"`rule` can be {' or '.join(RULES)} or None, got {rule!r}")
        if watch is None:
            watch = PAPER_WATCH if rule == "threshold" else DEFAULT_WATCH
        if not isinstance(watch, dict) or not watch:
            raise ValueError(
                f"`watch` must map metric keys to detector arguments, got {watch!r}: name at "
                "least one key, e.g. {'heads/induction_max': {}}"
            )
        self.watch = {key: _with_rule(key, params, rule) for key, params in watch.items()}
        self.detectors = {key: _detector(key, params) for key, params in self.watch.items()}
        self.checkpoint = bool_arg("checkpoint", checkpoint)
        self.stop = bool_arg("stop", stop)
        self.dirpath = dirpath
        self._user_hook = on_transition
        self.loss_ema = float(loss_ema)
        self.schedule = MeasureSchedule(every_n_steps, log_spaced=log_spaced, per_decade=per_decade)
        self.strict = bool_arg("strict", strict)
        self.events: list[TransitionEvent] = []
        self.checkpoints: list[str] = []
        self._loss: float | None = None
        self._tokens = 0
        self._last_loss_step: int | None = None
        self._nonfinite_losses = 0  # non-finite training losses since the last loss reading
        self._loss_diverged = False  # the latest loss was non-finite (warned once per run of them)
        self._per_head: dict[str, dict[int, list]] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(watch=sorted(self.watch))

    # -- user hook ---------------------------------------------------------------------------------

    def on_transition(
        self, trainer: Trainer, pl_module: LightningModule, event: TransitionEvent
    ) -> None:
        """Called on every rank for each transition; override it, or pass ``on_transition=``."""
        if self._user_hook is not None:
            self._user_hook(trainer, pl_module, event)

    # -- inputs ------------------------------------------------------------------------------------

    def watched_keys(self) -> tuple[str, ...]:
        return tuple(self.detectors)

    def own_keys(self) -> tuple[str, ...]:
        return (LOSS_KEY,)

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras) -> None:
        if key not in self.detectors:
            return
        per_head = extras.get("per_head", {}).get(key)
        if per_head is not None:
            self._per_head.setdefault(key, {})[step] = per_head
        self._update(trainer, pl_module, key, step, tokens, value)
        self._forget_per_head(key)

    def _forget_per_head(self, key: str) -> None:
        """Drop per-head scores no event can reach: before a pending candidate, else all but 2."""
        kept = self._per_head.get(key)
        if not kept:
            return
        since = self.detectors[key].pending_step
        ordered = sorted(kept)
        stale = ordered[:-_PER_HEAD_KEPT] if since is None else [s for s in ordered if s < since]
        for step in stale:
            del kept[step]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tokens += count_tokens(batch) * trainer.world_size
        if LOSS_KEY not in self.detectors:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        step = trainer.global_step
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = float(loss.detach())
            if math.isfinite(loss):
                a = self.loss_ema if self._loss is not None else 0.0
                self._loss = a * (self._loss or 0.0) + (1 - a) * loss
                self._loss_diverged = False
            else:
                self._nonfinite_loss(trainer, step, loss)
        reading = self._loss is not None or self._nonfinite_losses > 0
        if reading and step != self._last_loss_step and self.schedule.due(step):
            self._last_loss_step = step
            # A non-finite loss since the last reading is logged as NaN, not as the last finite
            # EMA (the detector ignores NaN, so it never looks like a transition).
            value = float("nan") if self._nonfinite_losses else self._loss
            self._nonfinite_losses = 0
            # Every rank has its own loss; decide on rank zero's so the verdict agrees.
            value = trainer.strategy.broadcast(value, src=0)
            _logging.append_history(
                trainer,
                {
                    "kind": "measurement",
                    "step": step,
                    "tokens": self._tokens,
                    "values": {LOSS_KEY: value},
                },
            )
            self._update(trainer, pl_module, LOSS_KEY, step, self._tokens, value)

    def _nonfinite_loss(self, trainer: Trainer, step: int, loss: float) -> None:
        """Count a NaN/inf loss; warn at the first of a run of them (strict: raise)."""
        message = (
            f"TransitionMonitor: the training loss is {loss} at step {step}; it is left out of the "
            f"loss EMA and {LOSS_KEY!r} is logged as NaN at its next reading (not as the last "
            "finite value). A non-finite loss usually means the weights diverged: lower the "
            "learning rate, clip gradients, or check the precision"
        )
        if self.strict:
            raise RuntimeError(message + " (strict=True; strict=False warns and trains on)")
        if not self._loss_diverged and trainer.is_global_zero:
            log.warning(message)
        self._loss_diverged = True
        self._nonfinite_losses += 1

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.check_watched_keys(trainer, final=True)
        for key in self.detectors:
            if key == LOSS_KEY:
                continue
            value = self.validation_value(trainer, key)
            if value is not None:
                self._update(trainer, pl_module, key, trainer.global_step, self._tokens, value)

    # -- decisions ---------------------------------------------------------------------------------

    def _update(self, trainer, pl_module, key, step, tokens, value) -> None:
        detector = self.detectors[key]
        event = detector.update(step, value, tokens=tokens)
        if event is not None:
            event = self._with_heads(event)
            detector.events[-1] = event
            self._act(trainer, pl_module, event)

    def _with_heads(self, event: TransitionEvent) -> TransitionEvent:
        """Name the heads that carry the change at the event's step.

        Rule "abrupt": each head whose own change from ``before`` is at least half the largest
        head's (and half the threshold). Rule "threshold": each head past the level.
        """
        scores = self._per_head.get(event.metric, {}).get(event.step)
        if scores is None or event.heads:
            return event
        sign = 1.0 if event.direction == "rise" else -1.0
        scores = torch.as_tensor(scores, dtype=torch.float64)
        if event.rule == "threshold":  # the paper's head list: every head past the level
            crossed = (sign * (scores - event.threshold) > 0).nonzero().tolist()
        else:
            change = sign * (scores - event.before)
            needed = 0.5 * max(float(change.max()), event.threshold)
            crossed = (change >= needed).nonzero().tolist()
        return replace(event, heads=tuple((int(layer), int(head)) for layer, head in crossed))

    def _act(self, trainer: Trainer, pl_module: LightningModule, event: TransitionEvent) -> None:
        self.events.append(event)
        checkpoint = None
        if self.checkpoint:
            name = f"transition-{event.metric.replace('/', '_')}-step{event.confirmed_step}.ckpt"
            checkpoint = (Path(self.dirpath) if self.dirpath else _logging.run_dir(trainer)) / name
        # the same text in the log, the warning, the loggers and the webhook (docs/alerts.md)
        path = None if checkpoint is None else str(checkpoint.absolute())
        peak_path, peak_step = _best_ppp_checkpoint(trainer)
        message = _alerts.text_for(
            event, checkpoint=path, peak_checkpoint=peak_path, peak_step=peak_step
        )
        if trainer.is_global_zero:
            log.warning(message)
            warnings.warn(message, PhaseTransitionWarning, stacklevel=2)
        _logging.log_text(trainer, keys.TRANSITION_EVENTS, message, event.step)
        _logging.log_scalars(trainer, {keys.transition_marker_key(event.metric): 1.0}, event.step)
        _logging.append_history(trainer, {"kind": "transition", **event.to_dict()})
        _alerts.publish(trainer, event, message)
        try:
            self.on_transition(trainer, pl_module, event)
        except Exception:
            if self.strict:
                raise
            log.exception("on_transition raised; training goes on (strict=False)")
        if checkpoint is not None:
            _logging.save_checkpoint(trainer, checkpoint)  # atomic: temporary file, os.replace
            self.checkpoints.append(str(checkpoint))
        if self.stop:
            should_stop = trainer.strategy.reduce_boolean_decision(True, all=False)
            trainer.should_stop = trainer.should_stop or should_stop

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "detectors": {k: d.state_dict() for k, d in self.detectors.items()},
            "events": [e.to_dict() for e in self.events],
            "checkpoints": list(self.checkpoints),
            "loss": self._loss,
            "tokens": self._tokens,
            "last_loss_step": self._last_loss_step,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_with_defaults(
            "TransitionMonitor",
            state_dict,
            {
                "detectors": {},
                "events": [],
                "checkpoints": [],
                "loss": None,
                "tokens": 0,
                "last_loss_step": None,
            },
        )
        for key, detector_state in state["detectors"].items():
            if key in self.detectors:
                self.detectors[key].load_state_dict(detector_state)
        self.events = [TransitionEvent.from_dict(e) for e in state["events"]]
        self.checkpoints = list(state["checkpoints"])
        self._loss = state["loss"]
        self._tokens = int(state["tokens"])
        self._last_loss_step = state["last_loss_step"]
        take_history(self, state_dict)


def _with_rule(key: str, params: Any, rule: str | None) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ValueError(
            f"`watch[{key!r}]` must be a dict of detector arguments, got {params!r} "
            "(use {} for the defaults)"
        )
    params = dict(params)
    if rule is not None:
        params.setdefault("rule", rule)
    return params


def _detector(key: str, params: dict[str, Any]) -> TransitionDetector:
    unknown = sorted(set(params) - set(_DETECTOR_ARGS))
    if unknown:
        raise ValueError(
            f"`watch[{key!r}]` has unknown detector argument(s) {', '.join(unknown)}; "
            f"known: {', '.join(_DETECTOR_ARGS)}"
        )
    try:
        return TransitionDetector(key, **params)
    except ValueError as err:
        raise ValueError(f"`watch[{key!r}]`: {err}") from None


def _best_ppp_checkpoint(trainer: Trainer) -> tuple[str | None, int | None]:
    """The best-PPP checkpoint so far and its step: the first PeakMonitor's that saved one."""
    for callback in trainer.callbacks:
        if isinstance(callback, PeakMonitor) and callback.peak_path is not None:
            return callback.peak_path, callback.best_step
    return None, None

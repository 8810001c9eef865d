"""Machinery shared by phasewatch's measuring callbacks.

A monitor measures on its schedule (rank zero computes, every rank receives the same numbers by
broadcast, so every decision taken from them agrees across ranks), records a history, logs scalars,
and hands each measurement to the listening callbacks (transition and peak monitors) at once, in the
same hook, whatever their order in ``trainer.callbacks``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from phasewatch.callbacks import _logging
from phasewatch.callbacks.schedule import MeasureSchedule

log = logging.getLogger("phasewatch")


def count_tokens(batch: Any) -> int:
    """Tokens in one training batch: the attention mask's sum, else the ids' element count."""
    if isinstance(batch, torch.Tensor):
        return int(batch.numel())
    if isinstance(batch, dict):
        mask = batch.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            return int(mask.sum())
        ids = batch.get("input_ids")
        return int(ids.numel()) if isinstance(ids, torch.Tensor) else 0
    if isinstance(batch, (list, tuple)) and batch:
        return count_tokens(batch[0])
    return 0


class MeasurementListener:
    """Mixin of callbacks that act on phasewatch measurements as soon as they are taken.

    Keys no phasewatch monitor produces (a user's own metric) are read from
    ``trainer.callback_metrics`` at each validation instead, via :meth:`validation_value`.
    """

    @staticmethod
    def validation_value(trainer: Trainer, key: str) -> float | None:
        """Rank zero's value of a user-logged ``key`` at validation, on every rank; else None.

        None when a phasewatch monitor produces ``key`` (it arrives through
        :meth:`on_measurement`) or when ``key`` was not logged.
        """
        if any(
            isinstance(cb, PhasewatchMonitor) and key in cb.produces for cb in trainer.callbacks
        ):
            return None
        value = trainer.callback_metrics.get(key)
        # every rank calls the collective, whatever its own callback_metrics hold
        return trainer.strategy.broadcast(None if value is None else float(value), src=0)

    def on_measurement(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        key: str,
        step: int,
        tokens: int,
        value: float,
        extras: dict,
    ) -> None:
        raise NotImplementedError


class PhasewatchMonitor(Callback):
    """Base of the measuring callbacks: schedule, token count, safe measurement, history, logging.

    Args:
        every_n_steps, log_spaced, per_decade, steps: the :class:`MeasureSchedule`.
        on_validation: measure at the end of each validation epoch instead of on the step schedule.
        strict: raise when a measurement fails; by default the failure is logged with its
            traceback, and training goes on.
    """

    #: The scalar keys this monitor logs (set by each concrete monitor).
    produces: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        every_n_steps: int = 100,
        log_spaced: bool = True,
        per_decade: int = 10,
        steps: Sequence[int] | None = None,
        on_validation: bool = False,
        strict: bool = False,
    ) -> None:
        self.schedule = MeasureSchedule(
            every_n_steps, log_spaced=log_spaced, per_decade=per_decade, steps=steps
        )
        self.on_validation = bool(on_validation)
        self.strict = bool(strict)
        self.history: dict[str, list[list[float]]] = {}
        self.tokens_seen = 0
        self.failures = 0
        self._last_measured_step: int | None = None

    # -- what a concrete monitor implements ------------------------------------------------------

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict, dict]:
        """Return ``(scalars, extras)``: {key: float} to log and track, and anything else."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Settings that qualify the numbers (written once into the run's history)."""
        return {}

    def after_measurement(
        self, trainer: Trainer, pl_module: LightningModule, step: int, scalars: dict, extras: dict
    ) -> None:
        """Hook for figures and text (rank zero writes them); runs on every rank."""

    # -- Lightning hooks ---------------------------------------------------------------------------

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        _logging.append_history(
            trainer, {"kind": "config", "monitor": type(self).__name__, **self.describe()}
        )
        if not self.on_validation and trainer.global_step == 0 and self.schedule.due(0):
            self._measure_now(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.tokens_seen += count_tokens(batch) * trainer.world_size
        step = trainer.global_step
        if not self.on_validation and step != self._last_measured_step and self.schedule.due(step):
            self._measure_now(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.on_validation:
            self._measure_now(trainer, pl_module)
            return
        # Keep the latest values in callback_metrics at every validation, so that EarlyStopping
        # and ModelCheckpoint monitoring them never find the key missing.
        _logging.log_to_callback_metrics(
            pl_module, {key: rows[-1][2] for key, rows in self.history.items()}
        )

    # -- measurement -------------------------------------------------------------------------------

    def _measure_now(self, trainer: Trainer, pl_module: LightningModule) -> None:
        step = trainer.global_step
        self._last_measured_step = step
        payload: tuple | str | None = None
        if trainer.is_global_zero:
            try:
                payload = self.measure(trainer, pl_module)
            except Exception:
                payload = traceback.format_exc()
        payload = trainer.strategy.broadcast(payload, src=0)
        if isinstance(payload, str):
            self.failures += 1
            message = f"{type(self).__name__} failed to measure at step {step}:\n{payload}"
            if self.strict:
                raise RuntimeError(message + "\n(strict=True; set strict=False to log and go on)")
            log.warning(message + "\nTraining goes on; this measurement is skipped.")
            return
        scalars, extras = payload
        self._record(trainer, pl_module, step, scalars, extras)

    def _record(
        self, trainer: Trainer, pl_module: LightningModule, step: int, scalars: dict, extras: dict
    ) -> None:
        tokens = self.tokens_seen
        for key, value in scalars.items():
            self.history.setdefault(key, []).append([step, tokens, float(value)])
        _logging.log_to_callback_metrics(pl_module, scalars)
        _logging.log_scalars(trainer, scalars, step)
        _logging.append_history(
            trainer, {"kind": "measurement", "step": step, "tokens": tokens, "values": scalars}
        )
        self.after_measurement(trainer, pl_module, step, scalars, extras)
        for callback in trainer.callbacks:
            if isinstance(callback, MeasurementListener):
                for key, value in scalars.items():
                    callback.on_measurement(
                        trainer, pl_module, key, step, tokens, float(value), extras
                    )

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "history": {k: [list(r) for r in v] for k, v in self.history.items()},
            "tokens_seen": self.tokens_seen,
            "failures": self.failures,
            "last_measured_step": self._last_measured_step,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = {k: [list(r) for r in v] for k, v in state_dict["history"].items()}
        self.tokens_seen = int(state_dict["tokens_seen"])
        self.failures = int(state_dict["failures"])
        self._last_measured_step = state_dict["last_measured_step"]

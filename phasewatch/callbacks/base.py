"""Machinery shared by phasewatch's measuring callbacks.

A monitor measures on its schedule (rank zero computes, every rank receives the same numbers by
broadcast, so every decision taken from them agrees across ranks), records a history, logs scalars,
and hands each measurement to the listening callbacks (transition and peak monitors) at once, in the
same hook, whatever their order in ``trainer.callbacks``.

Checkpoints carry each callback's state and, in the state of the first phasewatch callback, the
run's history file (compressed); a resumed run writes that history into its own run directory
first, so the report of the latest folder covers the whole run.
"""

from __future__ import annotations

import logging
import math
import traceback
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from phasewatch import keys
from phasewatch.callbacks import _checks, _logging, sharding
from phasewatch.callbacks._args import bool_arg
from phasewatch.callbacks._resolve import resolve_model
from phasewatch.callbacks.schedule import MeasureSchedule, OverheadBudget, overhead_arg
from phasewatch.measures.attention import nonfinite_heads

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


def state_with_defaults(owner: str, state: dict, defaults: dict[str, Any]) -> dict[str, Any]:
    """``state``'s values for ``defaults``' keys, a default where a key is missing.

    A state saved by an older phasewatch may lack keys added since; it loads with the defaults
    (as Lightning's own callbacks do) and one log line names what was missing.
    """
    missing = [key for key in defaults if key not in state]
    if missing:
        _info(
            "%s: the checkpoint's state has no %s (saved by an older phasewatch); using %s",
            owner,
            ", ".join(missing),
            ", ".join(f"{key}={defaults[key]!r}" for key in missing),
        )
    return {key: state.get(key, default) for key, default in defaults.items()}


@rank_zero_only
def _info(message: str, *args: Any) -> None:
    log.info(message, *args)


def is_phasewatch_callback(callback: Any) -> bool:
    return isinstance(callback, (PhasewatchMonitor, MeasurementListener))


def check_callbacks(trainer: Trainer, stage: str | None) -> None:
    """``setup``: refuse two phasewatch callbacks writing the same keys or sharing a state key.

    Lightning checks state keys only for the Trainer's own list, not for callbacks a
    LightningModule returns from ``configure_callbacks``; the message here also names the fix.
    """
    if stage not in (None, "fit"):
        return
    problem = _checks.duplicate_outputs(
        [cb for cb in trainer.callbacks if is_phasewatch_callback(cb)]
    )
    if problem is not None:
        raise ValueError(problem)


def carry_history(callback: Callback, trainer: Trainer, checkpoint: dict) -> None:
    """``on_save_checkpoint``: put the run's history into the first phasewatch callback's state."""
    states = checkpoint.get("callbacks")
    first = next((cb for cb in trainer.callbacks if is_phasewatch_callback(cb)), None)
    if callback is not first or not isinstance(states, dict) or callback.state_key not in states:
        return
    history = _logging.history_state(trainer)
    if history is not None:
        states[callback.state_key][_logging.HISTORY_STATE] = history


def take_history(callback: Callback, state: dict) -> None:
    """``load_state_dict``: keep the carried history until the run directory is known."""
    callback._state_loaded = True
    history = state.get(_logging.HISTORY_STATE)
    if history is not None:
        callback._restored_history = history


_resume_noted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def start_resumed_run(trainer: Trainer) -> None:
    """``on_train_start``: write the carried history; say which callbacks had no state to resume.

    A checkpoint made without phasewatch (or with other callback settings) restores nothing into
    the callbacks: their token counts restart at 0. One log line says so, once per run.
    """
    if trainer.is_global_zero:
        _logging.history_file(trainer)
    # trainer.ckpt_path: set by fit(ckpt_path=...); a second fit() of one Trainer keeps the
    # callbacks (and their counts) in memory and is no resume
    if trainer.ckpt_path is None or _resume_noted.get(trainer) == trainer.ckpt_path:
        return
    _resume_noted[trainer] = trainer.ckpt_path
    missing = [
        type(cb).__name__
        for cb in trainer.callbacks
        if is_phasewatch_callback(cb) and not getattr(cb, "_state_loaded", False)
    ]
    if missing and trainer.is_global_zero:
        log.warning(
            "phasewatch: resumed at step %d from a checkpoint without the state of %s (made "
            "without phasewatch, or with other callback settings): token counts restart at 0 "
            "tokens and histories at step %d",
            trainer.global_step,
            ", ".join(missing),
            trainer.global_step,
        )


class MeasurementListener:
    """Mixin of callbacks that act on phasewatch measurements as soon as they are taken.

    Keys no phasewatch monitor produces (a user's own metric) are read from
    ``trainer.callback_metrics`` at each validation instead, via :meth:`validation_value`.
    The mixin also carries the run's history in checkpoints (see the module's docstring).
    """

    #: Whether the watched keys were checked (at the first validation, or at fit start).
    _keys_checked: bool = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        check_callbacks(trainer, stage)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.check_watched_keys(trainer, final=False)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        start_resumed_run(trainer)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict
    ) -> None:
        carry_history(self, trainer, checkpoint)

    def watched_keys(self) -> tuple[str, ...]:
        """The keys this listener decides on (checked against what is logged)."""
        return ()

    def own_keys(self) -> tuple[str, ...]:
        """Keys this listener reads itself (not from a monitor nor callback_metrics)."""
        return ()

    def check_watched_keys(self, trainer: Trainer, *, final: bool) -> None:
        """A watched key no producer logs: an error with ``strict=True``, else one loud warning.

        Keys a phasewatch monitor produces are known before training. Any other key must be in
        ``trainer.callback_metrics`` by the first validation (``final=True``); a run without a
        validation loop can never deliver it, so that is decided at fit start.
        """
        if self._keys_checked:
            return
        produced = {
            k for cb in trainer.callbacks if isinstance(cb, PhasewatchMonitor) for k in cb.produces
        }
        known = produced | set(self.own_keys())
        if not final and trainer.enable_validation:
            if all(key in known for key in self.watched_keys()):
                self._keys_checked = True
            return
        self._keys_checked = True
        known |= set(trainer.callback_metrics)
        for key in self.watched_keys():
            if key in known:
                continue
            message = _checks.unknown_key_message(type(self).__name__, key, known)
            if getattr(self, "strict", False):
                raise ValueError(message + " (strict=True; strict=False warns and trains on)")
            if trainer.is_global_zero:
                log.warning(message + "; training goes on, and nothing is decided on this key")

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
            traceback, and training goes on. The model, tokenizer and corpus are found once at
            fit start (:meth:`resolve`): a failure there raises ``RuntimeError`` before step 0
            with ``strict=True``, else one warning and the monitor is off for the run.
        max_overhead: the share of training wall time, from the first training step, that
            phasewatch's measurements may take (0.05 = 5 %); a scheduled measurement is skipped
            when it would exceed it (:class:`~phasewatch.callbacks.schedule.OverheadBudget`;
            rank zero decides for all ranks). The monitors given a budget share it: n of them
            split the smallest budget stated, each 1/n of it, so together they stay within it
            and a cheap monitor never starves a costly one. At the end of training one log line
            per monitor says "skipped N of M scheduled measurements to stay within 2.5 %" (its
            share). Default None: no budget. One-time loading before the first step (corpus,
            parses) is not counted.

    Raises:
        TypeError, ValueError: at construction, an argument of the wrong type or range.
        ValueError: at setup, two phasewatch monitors writing the same keys or sharing a
            checkpoint state key (give a PPPMonitor ``prefix=``).

    Steps: a measurement is logged at ``trainer.global_step`` = k, the weights after k optimizer
    steps (the step ``training_step``'s own logs of those weights carry; Lightning files values
    logged after the update, at validation or in ``on_train_batch_end``, under k − 1).
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
        max_overhead: float | None = None,
    ) -> None:
        self.max_overhead = overhead_arg(max_overhead)
        #: The overhead budget's accounting (None without ``max_overhead``).
        self.budget = None if self.max_overhead is None else OverheadBudget(self.max_overhead)
        self._budget_step: int | None = None  # the step the budget last decided for
        self.schedule = MeasureSchedule(
            every_n_steps, log_spaced=log_spaced, per_decade=per_decade, steps=steps
        )
        self.on_validation = bool_arg("on_validation", on_validation)
        self.strict = bool_arg("strict", strict)
        self.history: dict[str, list[list[float]]] = {}
        self.tokens_seen = 0
        self.failures = 0
        self._last_measured_step: int | None = None
        #: Why this monitor is off for the run (a failed resolution, strict=False); None if on.
        self.off_reason: str | None = None

    # -- what a concrete monitor implements ------------------------------------------------------

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict, dict]:
        """Return ``(scalars, extras)``: {key: float} to log and track, and anything else."""
        raise NotImplementedError

    def resolve(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Find the model, tokenizer and corpus once, before training (rank zero); raise if not.

        Called at ``on_fit_start``: after ``setup()`` and ``configure_model()``, so a model built
        in ``configure_model`` exists. The default finds nothing.
        """

    def describe(self) -> dict:
        """Settings that qualify the numbers (written once into the run's history)."""
        return {}

    def after_measurement(
        self, trainer: Trainer, pl_module: LightningModule, step: int, scalars: dict, extras: dict
    ) -> None:
        """Hook for figures and text (rank zero writes them); runs on every rank."""

    # -- Lightning hooks ---------------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        check_callbacks(trainer, stage)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stale_said = False
        self._resolve_once(trainer, pl_module)

    def _resolve_once(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """:meth:`resolve` on rank zero; a failure is an error (strict) or one warning, and the
        monitor is off for the run (it never fails again at every measurement)."""
        error: str | None = None
        if trainer.is_global_zero:
            try:
                self.resolve(trainer, pl_module)
            except Exception as err:
                error = f"{type(err).__name__}: {err}"
        error = trainer.strategy.broadcast(error, src=0)
        if error is None:
            self.off_reason = None
            return
        message = f"{type(self).__name__} cannot measure in this run: {error}"
        if self.strict:
            raise RuntimeError(message + " (strict=True; strict=False warns once and trains on)")
        self.off_reason = error
        if trainer.is_global_zero:
            log.warning(message + ". It is off for this run: training goes on, unmeasured")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        start_resumed_run(trainer)
        if self.budget is not None:
            self.budget.start()
        budget = {} if self.max_overhead is None else {"max_overhead": self.max_overhead}
        _logging.append_history(
            trainer,
            {"kind": "config", "monitor": type(self).__name__, **self.describe(), **budget},
        )
        if self.on_validation and not trainer.enable_validation:
            message = (
                f"{type(self).__name__}(on_validation=True) will never measure: this run has no "
                "validation loop (no validation_step, no val dataloader, or limit_val_batches=0). "
                "Give the run a validation loop, or pass on_validation=False to measure on the "
                "step schedule."
            )
            if self.strict:
                raise ValueError(message + " (strict=True; strict=False warns and trains on)")
            if trainer.is_global_zero:
                log.warning(message)
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
        if not getattr(self, "_stale_said", False) and trainer.is_global_zero:
            stale = _checks.stale_builtins(
                self, trainer.callbacks, self._last_measured_step, trainer.global_step
            )
            for message in stale:
                log.warning(message)
            self._stale_said = bool(stale)
        # Keep the latest values in callback_metrics at every validation, so that EarlyStopping
        # and ModelCheckpoint monitoring them never find the key missing.
        _logging.log_to_callback_metrics(
            pl_module, {key: rows[-1][2] for key, rows in self.history.items()}
        )

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.budget is not None:
            self.budget.stop()
            if trainer.is_global_zero:
                log.info("%s: %s", type(self).__name__, self.budget.summary())
            _logging.append_history(
                trainer,
                {"kind": "overhead", "monitor": type(self).__name__, **self.budget.state_dict()},
            )
        monitors = [c for c in trainer.callbacks if isinstance(c, PhasewatchMonitor)]
        if monitors[-1] is self:  # the last monitor: the history is complete
            _logging.send_report(trainer)  # to W&B / MLflow loggers, if any

    # -- measurement -------------------------------------------------------------------------------

    def _measure_now(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.off_reason is not None:
            return  # said once at fit start
        if self.budget is None:
            self._measure_unbudgeted(trainer, pl_module)
            return
        step = trainer.global_step
        if step == self._budget_step:
            return  # decided already at this step (gradient accumulation: several batches)
        self._budget_step = step
        # rank zero's clock decides; every rank skips or measures with it
        wanted = None
        if trainer.is_global_zero:
            self.budget.fraction = budget_share(trainer, self)
            wanted = self.budget.wants()
        take = bool(trainer.strategy.broadcast(wanted, src=0))
        self.budget.count(take)
        if not take:
            return
        began = self.budget.clock()
        try:
            self._measure_unbudgeted(trainer, pl_module)
        finally:
            self.budget.spent(self.budget.clock() - began)

    def _measure_unbudgeted(self, trainer: Trainer, pl_module: LightningModule) -> None:
        step = trainer.global_step
        self._last_measured_step = step
        payload: tuple | str | None = None
        if sharding.is_sharded(trainer, pl_module):  # every rank runs rank zero's passes
            payload = sharding.measure_led_by_rank_zero(
                lambda: self.measure(trainer, pl_module),
                lambda: resolve_model(pl_module, getattr(self, "model_attr", None)),
                is_zero=trainer.is_global_zero,
                broadcast=lambda obj: trainer.strategy.broadcast(obj, src=0),
                wrapper=trainer.strategy.model,
            )
        elif trainer.is_global_zero:
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
        nonfinite = _nonfinite_message(type(self).__name__, step, scalars, extras)
        if nonfinite is not None and trainer.is_global_zero:
            log.warning(nonfinite)
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
        if nonfinite is not None and self.strict:
            raise RuntimeError(nonfinite + " (strict=True; strict=False logs it and trains on)")

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "history": {k: [list(r) for r in v] for k, v in self.history.items()},
            "tokens_seen": self.tokens_seen,
            "failures": self.failures,
            "last_measured_step": self._last_measured_step,
            **({} if self.budget is None else {"overhead": self.budget.state_dict()}),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_with_defaults(
            type(self).__name__,
            state_dict,
            {"history": {}, "tokens_seen": 0, "failures": 0, "last_measured_step": None},
        )
        self.history = {k: [list(r) for r in v] for k, v in state["history"].items()}
        self.tokens_seen = int(state["tokens_seen"])
        self.failures = int(state["failures"])
        self._last_measured_step = state["last_measured_step"]
        if self.budget is not None and isinstance(state_dict.get("overhead"), dict):
            self.budget.load_state_dict(state_dict["overhead"])
        take_history(self, state_dict)

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict
    ) -> None:
        carry_history(self, trainer, checkpoint)


def budget_share(trainer: Trainer, monitor: PhasewatchMonitor) -> float:
    """``monitor``'s share of the budget: the smallest ``max_overhead`` among the Trainer's
    measuring monitors, split evenly between the n of them that have one (a fraction)."""
    group = [
        c
        for c in trainer.callbacks
        if isinstance(c, PhasewatchMonitor) and c.max_overhead is not None and c.off_reason is None
    ]
    group = group or [monitor]
    return min(c.max_overhead for c in group) / len(group)


#: Scalars that summarize a per-head measure of ``extras["heads"]`` other than its max.
_HEADS_OF = {keys.ATTN_ENTROPY_MEAN: "entropy", keys.HEADS_SAS: "syntactic"}


def _nonfinite_message(monitor: str, step: int, scalars: dict, extras: dict) -> str | None:
    """One warning for the non-finite scalars of a measurement: keys, step and heads; else None."""
    bad = [key for key, value in scalars.items() if not math.isfinite(float(value))]
    if not bad:
        return None
    per_head = dict(extras.get("per_head", {}) if isinstance(extras, dict) else {})
    heads = extras.get("heads", {}) if isinstance(extras, dict) else {}
    parts = []
    for key in bad:
        scores = per_head.get(key, heads.get(_HEADS_OF.get(key, "")))
        where = nonfinite_heads(torch.as_tensor(scores)) if scores is not None else ()
        named = ", ".join(f"L{layer}H{head}" for layer, head in where)
        parts.append(
            f"{key}={float(scalars[key])}" + (f" (non-finite heads {named})" if named else "")
        )
    return (
        f"{monitor}: non-finite value(s) at step {step}: {'; '.join(parts)}. Logged as they are "
        "(not replaced by a plausible number); NaN attention or loss usually means NaN weights "
        "(a diverged run: lower the learning rate, clip gradients, check the precision)"
    )

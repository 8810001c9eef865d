"""PeakMonitor: keep the best PPP so far, checkpoint it, and optionally stop after the peak."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks import _alerts, _logging
from phasewatch.callbacks._args import bool_arg, int_arg
from phasewatch.callbacks.base import (
    MeasurementListener,
    count_tokens,
    state_with_defaults,
    take_history,
)
from phasewatch.detect import PeakEvent, PeakTracker
from phasewatch.detect.peak import DEFAULT_MIN_Z

log = logging.getLogger("phasewatch")


class PeakMonitor(MeasurementListener, Callback):
    """Track the peak of a metric (default PPP, ``ppp/delta_ll`` in nats/word) during training.

    Every evaluation of ``monitor`` (taken by a phasewatch monitor the moment it measures, or read
    from ``trainer.callback_metrics`` at each validation for any other key) updates a
    :class:`phasewatch.detect.PeakTracker`. At each new best the weights are saved to
    ``<dirpath>/<filename>`` (so the file always holds the best so far). The peak is confirmed,
    logged and, with ``stop=True``, training stops (decided on every rank alike) only when:

    - ``patience`` evaluations passed without a new best;
    - at least ``min_steps`` optimizer steps and ``min_tokens`` tokens were trained;
    - the series rose before its best (``require_rise``): the untrained model is not a peak;
    - the decline since the best is significant: for PPP series, :class:`PPPMonitor`'s paired
      test (``ppp/decline_since_best`` / ``_se``, word by word on fixed folds) must reach
      ``min_z`` standard errors, and so must the paired rise of the best over the first
      evaluation. A metric without per-word values (a user's own) has no paired test: patience
      alone decides there, and the event says so.

    With ``restore_peak=True`` the best weights are loaded back into the model when training ends;
    if no peak checkpoint was saved, or its file is gone, the model keeps its final weights and a
    warning says so (``strict=True``: an error). The checkpoint is written to a temporary file in
    its directory and moved into place, so a kill mid-save leaves the previous best intact.
    ``waiting_for`` says, in words, what the last evaluation still lacked.

    Logs ``<monitor>_peak`` (best smoothed value) and ``<monitor>_peak_step`` at each evaluation.

    Args:
        monitor: the metric key (default ``"ppp/delta_ll"``; with ``PPPMonitor(corpora=[...])``
            the mean over corpora, whose paired test averages each corpus's;
            ``"ppp/<corpus>/delta_ll"`` decides on one corpus with its own paired test;
            ``"ppp/delta_ll_tokctrl"`` on PPP with tokens per word controlled, from
            ``PPPMonitor(control_tokens="both")``).
        mode: ``"max"`` or ``"min"``.
        min_delta: smallest improvement that counts, in the metric's units (default 0).
        patience: evaluations of the metric (not validations, not steps) without improvement
            before a peak may be confirmed (default 5).
        smoothing: trailing moving-average window in evaluations (default 1: raw values; the
            paired test always compares raw evaluations).
        min_z: threshold of the paired tests, in standard errors (default 2.0).
        min_steps: optimizer steps before a peak may be confirmed (default 1000: early PPP
            values move with tokenization and warm-up, and a run stopped at step 6 helps nobody).
        min_tokens: training tokens before a peak may be confirmed (default 0).
        require_rise: a peak needs a rise before it (default True).
        save_peak: save a checkpoint at each new best (default True).
        dirpath: where the checkpoint goes (default: the run directory, see
            ``phasewatch.callbacks._logging.run_dir``).
        filename: checkpoint file name (default ``"ppp_peak.ckpt"``).
        stop: stop training once the peak is confirmed (default False).
        restore_peak: load the peak checkpoint's weights into the model at the end of training
            (needs ``save_peak=True``).
        strict: raise instead of warning when ``restore_peak`` finds no peak checkpoint, and
            when ``monitor`` is a key no producer logs (a misspelt key: checked before training
            for phasewatch's keys, at the first validation for others; by default one loud
            warning names the keys that exist).

    Raises:
        ValueError: ``filename`` not ending in ``.ckpt``; ``restore_peak=True`` with
            ``save_peak=False``.
    """

    def __init__(
        self,
        monitor: str = keys.PPP_DELTA_LL,
        *,
        mode: str = "max",
        min_delta: float = 0.0,
        patience: int = 5,
        smoothing: int = 1,
        min_z: float = DEFAULT_MIN_Z,
        min_steps: int = 1000,
        min_tokens: int = 0,
        require_rise: bool = True,
        save_peak: bool = True,
        dirpath: str | None = None,
        filename: str = "ppp_peak.ckpt",
        stop: bool = False,
        restore_peak: bool = False,
        strict: bool = False,
    ) -> None:
        for name, value in (("patience", patience), ("smoothing", smoothing)):
            int_arg(name, value, 1, "evaluations")
        int_arg("min_steps", min_steps, 0, "optimizer steps")
        int_arg("min_tokens", min_tokens, 0, "tokens")
        for name, value in (
            ("require_rise", require_rise),
            ("save_peak", save_peak),
            ("stop", stop),
            ("restore_peak", restore_peak),
            ("strict", strict),
        ):
            bool_arg(name, value)
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(
                f"`monitor` must be a metric key such as 'ppp/delta_ll', got {monitor!r}"
            )
        if not isinstance(filename, str) or not filename.endswith(".ckpt"):
            raise ValueError(f"`filename` must end in .ckpt, got {filename!r}")
        if restore_peak and not save_peak:
            raise ValueError(
                "`restore_peak=True` needs the peak checkpoint, but `save_peak=False` saves none: "
                "set save_peak=True, or restore_peak=False"
            )
        self.monitor = monitor
        self.tracker = PeakTracker(
            monitor,
            mode=mode,
            min_delta=min_delta,
            patience=patience,
            smoothing=smoothing,
            min_z=min_z,
            min_steps=min_steps,
            min_tokens=min_tokens,
            require_rise=require_rise,
        )
        self.save_peak = bool(save_peak)
        self.dirpath = dirpath
        self.filename = filename
        self.stop = bool(stop)
        self.restore_peak = bool(restore_peak)
        self.strict = bool(strict)
        self.events: list[PeakEvent] = []
        self.peak_path: str | None = None
        self._tokens = 0

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, filename=self.filename)

    @property
    def best(self) -> float | None:
        """Best (smoothed) value so far."""
        return self.tracker.best

    @property
    def best_step(self) -> int | None:
        return self.tracker.best_step

    # -- inputs ------------------------------------------------------------------------------------

    @property
    def waiting_for(self) -> str | None:
        """What the last evaluation still lacked for a confirmed peak, in words; None if none."""
        return self.tracker.waiting_for

    def watched_keys(self) -> tuple[str, ...]:
        return (self.monitor,)

    def on_measurement(self, trainer, pl_module, key, step, tokens, value, extras) -> None:
        if key == self.monitor:
            paired = extras.get("paired", {}).get(key) if self.tracker.mode == "max" else None
            self._update(trainer, pl_module, step, tokens, value, paired)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._tokens += count_tokens(batch) * trainer.world_size

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.check_watched_keys(trainer, final=True)
        value = self.validation_value(trainer, self.monitor)
        if value is not None:
            self._update(trainer, pl_module, trainer.global_step, self._tokens, value)

    # -- decisions ---------------------------------------------------------------------------------

    def _update(self, trainer, pl_module, step, tokens, value, paired=None) -> None:
        tests = {}
        if paired is not None:
            tests = {k: paired[k] for k in ("decline", "decline_se", "rise", "rise_se")}
        events = self.tracker.update(step, value, tokens=tokens, **tests)
        if self.tracker.best is None:
            return  # only non-finite values so far: there is no best to log (the monitor warned)
        scalars = {
            keys.peak_value_key(self.monitor): float(self.tracker.best),
            keys.peak_step_key(self.monitor): float(self.tracker.best_step),
        }
        _logging.log_to_callback_metrics(pl_module, scalars)
        _logging.log_scalars(trainer, scalars, step)
        for event in events:
            self.events.append(event)
            # the event's own ``kind`` (new_best, confirmed) goes inside: it named the record once
            _logging.append_history(trainer, {"kind": "peak", "event": event.to_dict()})
            if event.kind == "new_best" and self.save_peak:
                self._save(trainer)
            elif event.kind == "confirmed":
                self._confirmed(trainer, event)

    def _save(self, trainer: Trainer) -> None:
        directory = Path(self.dirpath) if self.dirpath else _logging.run_dir(trainer)
        path = _logging.save_checkpoint(trainer, directory / self.filename)
        self.peak_path = str(path.absolute())

    def _confirmed(self, trainer: Trainer, event: PeakEvent) -> None:
        # the same text in the log, the loggers and the webhook (docs/alerts.md)
        checkpoint = self.peak_path if self.save_peak else None
        message = _alerts.text_for(event, checkpoint=checkpoint)
        if trainer.is_global_zero:
            log.warning(message)
        _logging.log_text(trainer, keys.PEAK_EVENTS, message, trainer.global_step)
        _alerts.publish(trainer, event, message)
        if self.stop:
            should_stop = trainer.strategy.reduce_boolean_decision(True, all=False)
            trainer.should_stop = trainer.should_stop or should_stop

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.restore_peak:
            return
        missing = self._missing_peak()
        if missing is not None:
            message = f"PeakMonitor(restore_peak=True) restored nothing: {missing}"
            if self.strict:
                raise FileNotFoundError(message + " (strict=True; set strict=False to go on)")
            if trainer.is_global_zero:
                log.warning(message + "; the model keeps its final weights")
            return
        checkpoint = torch.load(self.peak_path, map_location="cpu", weights_only=False)
        pl_module.load_state_dict(checkpoint["state_dict"])
        if trainer.is_global_zero:
            log.info(
                "restored the %s peak weights of step %s from %s",
                self.monitor,
                self.tracker.best_step,
                self.peak_path,
            )

    def _missing_peak(self) -> str | None:
        """Why there is no peak checkpoint to restore, in words; None if there is one."""
        if self.peak_path is None:
            return (
                f"no peak checkpoint was saved (no evaluation of {self.monitor!r} reached "
                "PeakMonitor in this run)"
            )
        if not Path(self.peak_path).is_file():
            return f"the peak checkpoint {self.peak_path} (step {self.best_step}) is gone"
        return None

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format_version": 2,
            "tracker": self.tracker.state_dict(),
            "events": [e.to_dict() for e in self.events],
            "peak_path": self.peak_path,
            "tokens": self._tokens,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        state = state_with_defaults(
            "PeakMonitor",
            state_dict,
            {"tracker": None, "events": [], "peak_path": None, "tokens": 0},
        )
        if state["tracker"] is not None:
            self.tracker.load_state_dict(state["tracker"])
        self.events = [PeakEvent.from_dict(e) for e in state["events"]]
        self.peak_path = state["peak_path"]
        self._tokens = int(state["tokens"])
        take_history(self, state_dict)

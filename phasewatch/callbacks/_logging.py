"""Writing to the Trainer's loggers: scalars to all, text and figures to TensorBoard only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from phasewatch.report.history import HISTORY_FILE


def log_to_callback_metrics(pl_module, metrics: dict[str, float]) -> None:
    """Put values into ``trainer.callback_metrics`` (for EarlyStopping / ModelCheckpoint).

    Skipped inside ``on_train_start``: Lightning only allows epoch-level logging there, and that
    epoch aggregate would overwrite newer step values in ``callback_metrics`` when the epoch ends.
    The value reaches ``callback_metrics`` with the next measurement or validation instead.
    """
    if getattr(pl_module, "_current_fx_name", None) == "on_train_start":
        return
    for key, value in metrics.items():
        pl_module.log(key, float(value), logger=False, batch_size=1)


def log_scalars(trainer: Trainer, metrics: dict[str, float], step: int) -> None:
    """Send scalars to every logger at ``step`` (the Trainer's own cadence may skip that step)."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)


def tensorboard(trainer: Trainer):
    """The rank-zero ``SummaryWriter`` of the first TensorBoard logger, or None."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def log_text(trainer: Trainer, tag: str, text: str, step: int) -> None:
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_text(tag, text, global_step=step)


def log_figure(trainer: Trainer, tag: str, figure: Any, step: int) -> None:
    """Add a matplotlib figure to TensorBoard (rank zero, if a TensorBoard logger is attached)."""
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_figure(tag, figure, global_step=step, close=False)


def run_dir(trainer: Trainer) -> Path:
    """Where phasewatch writes its history and checkpoints: the logger's directory if any."""
    for logger in trainer.loggers:
        log_dir = getattr(logger, "log_dir", None)
        if log_dir:
            return Path(log_dir)
    return Path(trainer.default_root_dir)


@rank_zero_only
def append_history(trainer: Trainer, record: dict) -> None:
    """Append one JSON record to the run's phasewatch history (read by ``phasewatch report``)."""
    path = run_dir(trainer) / HISTORY_FILE
    os.makedirs(path.parent, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")

"""Writing to the Trainer's loggers (scalars to all; text, images and the report through one
adapter per logger type, ``_sinks``), to the run's history file, and checkpoints that a kill
cannot leave half-written."""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from phasewatch.callbacks import _sinks
from phasewatch.report.history import HISTORY_FILE

log = logging.getLogger("phasewatch")


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


def sinks(trainer: Trainer) -> list[_sinks.Sink]:
    """The adapters of the Trainer's loggers that take text and images (rank zero; [] elsewhere)."""
    if not trainer.is_global_zero:
        return []
    return [s for s in map(_sinks.sink, trainer.loggers) if type(s) is not _sinks.Sink]


def log_text(trainer: Trainer, tag: str, text: str, step: int) -> None:
    """Send an alert's text to every logger that takes text (see ``_sinks``), at ``step``."""
    for sink in sinks(trainer):
        sink.send("text", tag, text, step)


def log_image(trainer: Trainer, tag: str, image: Any, step: int) -> None:
    """Send an RGB image (uint8 array [height, width, 3]) to every logger that takes images.

    No matplotlib: TensorBoard gets the array through ``add_image``, the others as PNG.
    """
    for sink in sinks(trainer):
        sink.send("image", tag, image, step)


def send_report(trainer: Trainer) -> None:
    """At the end of training: write the run report and give it to W&B and MLflow loggers.

    Only when such a logger is attached and the run has a history (the report costs ~1 s of
    matplotlib). Never fatal: a failure is one warning. TensorBoard and CSV runs keep the
    history in a local folder, where ``phasewatch report RUN_DIR`` writes the same report.
    """
    wanting = [sink for sink in sinks(trainer) if sink.wants_report]
    directory = run_dir(trainer)
    if not wanting or not (directory / HISTORY_FILE).exists():
        return
    try:
        from phasewatch.report.write import write_report

        written = write_report(directory)
    except Exception as error:
        log.warning(
            "phasewatch: the run report could not be written (%s: %s); the history is in %s, "
            "and `phasewatch report %s` tries again",
            type(error).__name__,
            error,
            directory,
            directory,
        )
        return
    files = [written["png"], written["html"]]
    for sink in wanting:
        sink.send("report", files)


def run_dir(trainer: Trainer) -> Path:
    """The run directory, where phasewatch writes its history and checkpoints.

    One rule, whatever the order of the loggers: the ``log_dir`` of the first TensorBoard logger,
    else of the first CSV logger, else of the first other logger that has one, else
    ``trainer.default_root_dir`` (e.g. a run with only W&B or MLflow).
    """
    loggers = trainer.loggers
    for wanted in (TensorBoardLogger, CSVLogger, object):
        for logger in loggers:
            log_dir = getattr(logger, "log_dir", None) if isinstance(logger, wanted) else None
            if log_dir:
                return Path(log_dir)
    return Path(trainer.default_root_dir)


@rank_zero_only
def append_history(trainer: Trainer, record: dict) -> None:
    """Append one JSON record to the run's phasewatch history (read by ``phasewatch report``)."""
    path = history_file(trainer)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


# -- the history in the checkpoint ----------------------------------------------------------------

#: Key of the run history inside one phasewatch callback's checkpoint state.
HISTORY_STATE = "run_history"
_HISTORY_FORMAT = 1


def history_file(trainer: Trainer) -> Path:
    """The run's history file, after writing there the history a resumed checkpoint carried."""
    path = run_dir(trainer) / HISTORY_FILE
    os.makedirs(path.parent, exist_ok=True)
    for callback in trainer.callbacks:
        restored = getattr(callback, "_restored_history", None)
        if restored is not None:
            callback._restored_history = None
            if trainer.is_global_zero:
                _write_restored(path, restored, trainer.global_step)
    return path


def history_state(trainer: Trainer) -> dict | None:
    """The run's history file, compressed, for a checkpoint (rank zero; None elsewhere or if none).

    ``{"format_version", "jsonl_zlib": zlib-compressed UTF-8 JSON lines, "records", "path"}``.
    """
    if not trainer.is_global_zero:
        return None
    path = history_file(trainer)
    if not path.exists():
        return None
    data = path.read_bytes()
    return {
        "format_version": _HISTORY_FORMAT,
        "jsonl_zlib": zlib.compress(data, 6),
        "records": data.count(b"\n"),
        "path": str(path),
    }


def _write_restored(path: Path, state: dict, step: int) -> None:
    """Write the checkpoint's history as the run's history file, atomically.

    A different file already there (a resume into the same directory after the run went on past
    the checkpoint) is kept beside it as ``phasewatch_history.before_resume_step<step>.jsonl``.
    """
    if state.get("format_version", 1) > _HISTORY_FORMAT:
        log.warning(
            "phasewatch: the checkpoint carries a run history of format %s, newer than this "
            "phasewatch reads (%d): not written; upgrade phasewatch to keep the whole history",
            state.get("format_version"),
            _HISTORY_FORMAT,
        )
        return
    data = zlib.decompress(state["jsonl_zlib"])
    if path.exists():
        if path.read_bytes() == data:
            return
        kept = path.with_name(f"{path.stem}.before_resume_step{step}{path.suffix}")
        os.replace(path, kept)
        log.info(
            "phasewatch: resumed at step %d; the history found in %s is kept as %s",
            step,
            path.parent,
            kept.name,
        )
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    log.info(
        "phasewatch: resumed at step %d; wrote the %d history records of the run so far "
        "(from the checkpoint) into %s",
        step,
        state.get("records", data.count(b"\n")),
        path,
    )


# -- checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(trainer: Trainer, path: str | Path) -> Path:
    """``trainer.save_checkpoint`` that never leaves ``path`` truncated.

    The checkpoint is written to ``.<name>.tmp`` in the same directory, then moved onto ``path``
    with ``os.replace`` (atomic within one filesystem): a kill at any moment leaves either the
    previous file or the new one. (Lightning's own save goes through a temporary file under
    ``TMPDIR``; on another filesystem its final move is a copy, and a kill there left 0 bytes.)
    Called on every rank, like ``trainer.save_checkpoint``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(str(temporary), weights_only=False)
    if trainer.is_global_zero:
        os.replace(temporary, path)
    trainer.strategy.barrier("phasewatch.save_checkpoint")
    return path

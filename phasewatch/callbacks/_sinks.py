"""One adapter per logger type: alert text, heatmap images and the run report, each sent through
that logger's own API (scalars go through ``Logger.log_metrics`` for every logger, elsewhere).

- TensorBoardLogger: text ``add_text``; images ``add_image``.
- CSVLogger: text as rows ``step,tag,text`` of ``phasewatch_events.csv``, images as
  ``phasewatch_images/<tag>/step<step>.png``, both in its ``log_dir``.
- WandbLogger: text ``log_text`` (a table ``step, text`` per tag, every event so far); images
  ``log_image``; the report as an artifact of type ``phasewatch-report`` and as an image.
- MLFlowLogger: text ``log_text`` artifacts ``<tag>/step<step>.txt``; images
  ``MlflowClient.log_image``; the report files by ``log_artifact`` into ``phasewatch-report/``.

Other loggers get the scalars only. W&B and MLflow are never imported here: the adapters are
chosen by ``isinstance`` against Lightning's logger classes, which import them only when used.
A logger whose call raises gets one warning and is skipped for that kind from then on: a logging
failure never stops training.
"""

from __future__ import annotations

import csv
import logging
import weakref
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("phasewatch")

#: The CSV logger's text file (columns ``step,tag,text``) inside its ``log_dir``.
EVENTS_CSV = "phasewatch_events.csv"
#: The CSV logger's image folder inside its ``log_dir``: ``<tag>/step<step>.png``.
IMAGES_DIR = "phasewatch_images"
#: W&B artifact type, and the artifact folder in MLflow, of the end-of-run report.
REPORT_ARTIFACT = "phasewatch-report"
#: The image key under which W&B gets the report's PNG.
REPORT_IMAGE_KEY = "phasewatch/report"


class Sink:
    """What phasewatch sends to one logger besides scalars; the base sends nothing."""

    #: Whether the end-of-run report (PNG/HTML) is worth writing for this logger.
    wants_report = False

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.failed: set[str] = set()

    def text(self, tag: str, text: str, step: int) -> None:
        """An alert (transition or peak event) as text, at ``step``."""

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An RGB image (uint8 array ``[height, width, 3]``) at ``step``."""

    def report(self, files: list[Path]) -> None:
        """The run report's files (``report.png``, ``report.html``) at the end of training."""

    def send(self, kind: str, *args: Any) -> None:
        """Call ``self.<kind>(*args)``; a failure warns once per kind and turns that kind off."""
        if kind in self.failed:
            return
        try:
            getattr(self, kind)(*args)
        except Exception as error:
            self.failed.add(kind)
            log.warning(
                "phasewatch: %s could not take the %s (%s: %s); training goes on, and this "
                "logger gets no more %s from phasewatch in this run",
                type(self.logger).__name__,
                kind,
                type(error).__name__,
                error,
                kind,
            )


class TensorBoardSink(Sink):
    def text(self, tag: str, text: str, step: int) -> None:
        self.logger.experiment.add_text(tag, text, global_step=step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.experiment.add_image(tag, image, global_step=step, dataformats="HWC")


class CSVSink(Sink):
    """Files beside the CSV logger's ``metrics.csv``: an events CSV and PNG images."""

    def text(self, tag: str, text: str, step: int) -> None:
        path = Path(self.logger.log_dir) / EVENTS_CSV
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", "tag", "text"])
            writer.writerow([step, tag, text])

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        from PIL import Image  # a dependency of matplotlib, hence always installed

        path = Path(self.logger.log_dir) / IMAGES_DIR / tag / f"step{step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image)).save(path)


class WandbSink(Sink):
    """W&B: text as a table per tag (every event of this process so far), images, the report."""

    wants_report = True

    def __init__(self, logger: Any) -> None:
        super().__init__(logger)
        self.rows: dict[str, list[list[Any]]] = {}

    def text(self, tag: str, text: str, step: int) -> None:
        rows = self.rows.setdefault(tag, [])
        rows.append([step, text])
        self.logger.log_text(key=tag, columns=["step", "text"], data=list(rows), step=step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.log_image(key=tag, images=[image], step=step)

    def report(self, files: list[Path]) -> None:
        import wandb

        run = self.logger.experiment
        artifact = wandb.Artifact(f"{REPORT_ARTIFACT}-{run.id}", type=REPORT_ARTIFACT)
        for path in files:
            artifact.add_file(str(path))
        run.log_artifact(artifact)
        pngs = [str(path) for path in files if path.suffix == ".png"]
        if pngs:
            self.logger.log_image(key=REPORT_IMAGE_KEY, images=pngs)


class MLflowSink(Sink):
    """MLflow, through the logger's ``MlflowClient`` and run id."""

    wants_report = True

    def __init__(self, logger: Any) -> None:
        super().__init__(logger)
        self.names: set[str] = set()

    def text(self, tag: str, text: str, step: int) -> None:
        name, n = f"{tag}/step{step}.txt", 1
        while name in self.names:  # two events of one tag at one step
            n += 1
            name = f"{tag}/step{step}_{n}.txt"
        self.names.add(name)
        self.logger.experiment.log_text(self.logger.run_id, text, name)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.logger.experiment.log_image(self.logger.run_id, image, key=tag, step=step)

    def report(self, files: list[Path]) -> None:
        for path in files:
            self.logger.experiment.log_artifact(self.logger.run_id, str(path), REPORT_ARTIFACT)


def _sink_class(logger: Any) -> type[Sink]:
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

    for cls, sink in (
        (TensorBoardLogger, TensorBoardSink),
        (CSVLogger, CSVSink),
        (WandbLogger, WandbSink),
        (MLFlowLogger, MLflowSink),
    ):
        if isinstance(logger, cls):
            return sink
    return Sink


_sinks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sink(logger: Any) -> Sink:
    """The adapter of ``logger``, one per logger object (it keeps the W&B table rows)."""
    found = _sinks.get(logger)
    if found is None:
        found = _sinks[logger] = _sink_class(logger)(logger)
    return found

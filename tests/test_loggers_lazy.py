"""W&B and MLflow are optional extras: a run that logs text, images and the report to TensorBoard
and CSV loggers never imports them (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, sys
import numpy as np
import lightning as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from phasewatch.callbacks import _logging

root = sys.argv[1]
trainer = L.Trainer(
    logger=[CSVLogger(root), TensorBoardLogger(root)], default_root_dir=root
)
_logging.log_text(trainer, "transition/events", "an alert", 3)
_logging.log_image(trainer, "heads/heatmaps", np.zeros((4, 4, 3), dtype=np.uint8), 3)
_logging.append_history(trainer, {"kind": "config"})
_logging.send_report(trainer)
print(json.dumps({
    "loaded": sorted(m for m in ("wandb", "mlflow") if m in sys.modules),
    "sinks": [type(s).__name__ for s in _logging.sinks(trainer)],
}))
"""


def test_tensorboard_and_csv_runs_import_neither_wandb_nor_mlflow(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"loaded": [], "sinks": ["CSVSink", "TensorBoardSink"]}

"""Time of what one measurement sends besides scalars, per logger: AttentionMonitor's heatmap
images (one per measure and the row of all, demo-model shape 2x4) and one alert text, through
TensorBoard, CSV, W&B (offline) and MLflow (SQLite store), each logger alone.

Usage: ``.venv/bin/python benchmarks/bench_sinks.py [--repeats 10]``

The loggers alternate in every round (``_common.interleaved``); times are medians over rounds with
min–max, and each logger's ratio to TensorBoard is the median of per-round ratios. W&B and MLflow
are skipped when their extra is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
from pathlib import Path
from types import SimpleNamespace

import _common
from bench_heatmap import per_head


def loggers(root: Path) -> dict:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    found = {
        "tensorboard": TensorBoardLogger(root, name="tb"),
        "csv": CSVLogger(root, name="csv"),
    }
    if importlib.util.find_spec("wandb"):
        from lightning.pytorch.loggers import WandbLogger

        os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(root))
        found["wandb"] = WandbLogger(save_dir=root, offline=True, project="bench")
    if importlib.util.find_spec("mlflow"):
        from lightning.pytorch.loggers import MLFlowLogger

        uri = f"sqlite:///{root / 'mlflow.db'}"
        found["mlflow"] = MLFlowLogger("bench", tracking_uri=uri, artifact_location=str(root))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    _common.quiet()

    from phasewatch import keys
    from phasewatch.callbacks import AttentionMonitor, _logging

    print("\n".join(_common.machine_lines()))
    monitor = AttentionMonitor()
    values = per_head(2, 4)
    with tempfile.TemporaryDirectory() as directory:
        step = iter(range(10**9))
        sides = {}
        for name, logger in loggers(Path(directory)).items():
            trainer = SimpleNamespace(is_global_zero=True, loggers=[logger])
            _logging.log_text(trainer, keys.TRANSITION_EVENTS, "warm-up", 0)  # start the run

            def send(trainer=trainer) -> None:
                at = next(step)
                monitor._log_heatmaps(trainer, values, at)
                _logging.log_text(trainer, keys.TRANSITION_EVENTS, "an alert " * 40, at)

            sides[name] = send
        times = _common.interleaved(sides, args.repeats)
        for name, ts in times.items():
            ms = [1000 * t for t in ts]
            ratio = statistics.median(a / b for a, b in zip(ts, times["tensorboard"], strict=True))
            print(
                f"{name}: {statistics.median(ms):.1f} ms per measurement "
                f"({min(ms):.1f}–{max(ms):.1f}; 5 images + 1 text), {ratio:.2f}x TensorBoard"
            )


if __name__ == "__main__":
    main()

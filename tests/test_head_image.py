"""Heatmaps without matplotlib: colour-table images whose pixels are matplotlib's colours of the
values (checked against matplotlib itself), rendered with matplotlib absent, and read back from
TensorBoard after a real run."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader
from matplotlib.colors import Normalize
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor
from phasewatch.report.head_image import (
    CELL_PIXELS,
    GAP_PIXELS,
    NAN_RGB,
    head_image,
    head_images,
    image_row,
)
from phasewatch.report.history import HISTORY_FILE


def _matplotlib_rgb(values: np.ndarray, name: str, vmin: float, vmax: float) -> np.ndarray:
    """The colours matplotlib gives ``values`` (uint8 RGB), the independent reference."""
    cmap = matplotlib.colormaps[name]
    return cmap(Normalize(vmin, vmax)(values), bytes=True)[..., :3]


def _cells(image: np.ndarray, cell: int = CELL_PIXELS) -> np.ndarray:
    """The colour of each cell (its top-left pixel), after checking every cell is one colour."""
    rows, cols = image.shape[0] // cell, image.shape[1] // cell
    blocks = image.reshape(rows, cell, cols, cell, 3)
    assert (blocks == blocks[:, :1, :, :1]).all(), "a cell is not one colour"
    return blocks[:, 0, :, 0]


def test_pixels_are_matplotlibs_colours_of_the_values():
    values = np.array(
        [[0.0, 0.001, 0.25, 0.5], [0.7391, 0.99, 1.0, 1.7], [-0.3, 0.123, 0.8765, 0.3333]]
    )
    image = head_image(torch.tensor(values, dtype=torch.float64))
    assert image.dtype == np.uint8
    assert image.shape == (3 * CELL_PIXELS, 4 * CELL_PIXELS, 3)
    np.testing.assert_array_equal(_cells(image), _matplotlib_rgb(values, "viridis", 0.0, 1.0))
    # layer 0 is the top row, head 0 the left column: the 0.0 cell is viridis' dark purple
    np.testing.assert_array_equal(image[0, 0], [68, 1, 84])


def test_entropy_uses_magma_on_a_fixed_nats_range():
    entropy = np.array([[0.1, 1.2, 2.5], [3.0, 4.0, 4.9]])
    top = math.log(128)
    images = head_images({"induction": np.eye(2, 3), "entropy": entropy}, entropy_max=top)
    np.testing.assert_array_equal(
        _cells(images["entropy"]), _matplotlib_rgb(entropy, "magma", 0.0, top)
    )
    np.testing.assert_array_equal(
        _cells(images["induction"]), _matplotlib_rgb(np.eye(2, 3), "viridis", 0.0, 1.0)
    )
    row = image_row(images)
    assert row.shape == (2 * CELL_PIXELS, 6 * CELL_PIXELS + GAP_PIXELS, 3)
    assert (row[:, 3 * CELL_PIXELS : 3 * CELL_PIXELS + GAP_PIXELS] == 255).all()
    np.testing.assert_array_equal(row[:, 3 * CELL_PIXELS + GAP_PIXELS :], images["entropy"])


def test_a_non_finite_value_is_grey_and_bad_input_names_the_fix():
    image = head_image(np.array([[np.nan, 0.5]]), cell=1)
    np.testing.assert_array_equal(image[0, 0], NAN_RGB)
    with pytest.raises(ValueError, match=r"\[layers, heads\] array, got shape \(4,\)"):
        head_image(np.zeros(4))
    with pytest.raises(ValueError, match="finite vmin < vmax"):
        head_image(np.zeros((2, 2)), vmin=1.0, vmax=1.0)
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        head_image(np.zeros((2, 2)), cmap="jet")


def test_rendering_needs_no_matplotlib():
    """In a fresh interpreter where ``import matplotlib`` fails, the images are still made."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["matplotlib"] = None  # any import of matplotlib now raises ImportError
        import numpy as np
        from phasewatch.report.head_image import head_images, image_row
        images = head_images({"induction": np.ones((2, 4)), "entropy": np.ones((2, 4))},
                             entropy_max=4.0)
        print(image_row(images).shape)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"({2 * CELL_PIXELS}, {8 * CELL_PIXELS + GAP_PIXELS}, 3)"


def test_the_images_reach_tensorboard_at_every_measurement_without_a_figure(tmp_path, monkeypatch):
    def no_figure(*args, **kwargs):
        raise AssertionError("a matplotlib figure was built on the training path")

    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", no_figure)
    monitor = AttentionMonitor(steps=(1, 3), seq_len=4, probe_batch=2, entropy_stories=0,
                               syntactic=False)  # fmt: skip
    tb = TensorBoardLogger(tmp_path, name="tb")
    trainer = quiet_trainer(tmp_path, [monitor], max_steps=3, logger=tb)
    trainer.fit(TinyLM(), random_token_loader(300, n=24, length=16))
    monkeypatch.undo()

    history = [
        json.loads(line)
        for line in (Path(tb.log_dir) / HISTORY_FILE).read_text().splitlines()
        if json.loads(line).get("kind") == "heads"
    ]
    events = EventAccumulator(tb.log_dir, size_guidance={"images": 0}).Reload()
    names = list(history[0]["per_head"])
    assert set(names) == {"induction", "previous_token", "duplicate_token"}
    assert keys.HEADS_HEATMAPS in events.Tags()["images"]
    for name in names:
        shown = events.Images(keys.heatmap_key(name))
        assert [e.step for e in shown] == [1, 3]  # every measurement (heatmap_every=1)
        for event, record in zip(shown, history, strict=True):
            pixels = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
            values = np.array(record["per_head"][name])
            assert pixels.shape == (2 * CELL_PIXELS, 2 * CELL_PIXELS, 3)  # 2 layers x 2 heads
            np.testing.assert_array_equal(
                _cells(pixels), _matplotlib_rgb(values, "viridis", 0.0, 1.0)
            )

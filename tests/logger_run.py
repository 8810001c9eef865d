"""A short real run with all four monitors, shared by the tests/test_loggers_*.py acceptance tests.

PPPMonitor on 300 words of story 1, AttentionMonitor with heatmaps at every measurement, a
TransitionMonitor whose threshold rule certainly fires (the induction score past -1 at its first
measurement) and a PeakMonitor on ΔLL. What each logger received is checked against the run's own
history file: the image against the heatmap drawn again from the per-head values it recorded.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import lightning as L
import numpy as np
from lightning_helpers import TinyLM, quiet_trainer, token_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from phasewatch import keys
from phasewatch.callbacks import (
    AttentionMonitor,
    PeakMonitor,
    PhaseTransitionWarning,
    PPPMonitor,
    TransitionMonitor,
)
from phasewatch.callbacks._sinks import EVENTS_CSV, IMAGES_DIR
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.report.head_image import head_images, image_row
from phasewatch.report.history import HISTORY_FILE

MEASURE_AT = (2, 4)
MAX_STEPS = 4
SEQ_LEN, PROBE_BATCH, ENTROPY_TOKENS = 16, 2, 32
WORDS = 300


def corpus_slice(ns_corpus) -> ReadingTimeCorpus:
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].head(WORDS).reset_index(drop=True)
    return ReadingTimeCorpus("story 1, 300 words", frame)


def monitors(corpus: ReadingTimeCorpus, checkpoint: bool = False) -> list[L.Callback]:
    return [
        PPPMonitor(corpus, steps=MEASURE_AT, spillover=1, folds=2),
        AttentionMonitor(
            steps=MEASURE_AT,
            seq_len=SEQ_LEN,
            probe_batch=PROBE_BATCH,
            entropy_tokens=ENTROPY_TOKENS,
            entropy_stories=1,
            syntactic=False,
            corpus=corpus,
        ),
        TransitionMonitor(
            {keys.HEADS_INDUCTION_MAX: {"rule": "threshold", "level": -1.0}}, checkpoint=checkpoint
        ),
        PeakMonitor(min_steps=0, save_peak=True),
    ]


def fit(
    root: Path, loggers, corpus, tokenizer, token_ids, checkpoint: bool = False
) -> tuple[L.Trainer, list[str]]:
    """The Trainer after the run, and the transition alerts' texts as warned (the loggers must
    receive the same text)."""
    L.seed_everything(0)
    callbacks = monitors(corpus, checkpoint)
    trainer = quiet_trainer(root, callbacks, max_steps=MAX_STEPS, logger=loggers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PhaseTransitionWarning)
        trainer.fit(TinyLM(tokenizer=tokenizer), token_loader(token_ids, batch_size=4, length=64))
    alerts = [str(w.message) for w in caught if issubclass(w.category, PhaseTransitionWarning)]
    assert alerts, "the threshold rule at -1 must fire"
    return trainer, alerts


def history(run_dir: Path) -> list[dict]:
    lines = (Path(run_dir) / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def expected_heatmaps(run_dir: Path, entropy_tokens: int = ENTROPY_TOKENS) -> dict[int, np.ndarray]:
    """step → the ``heads/heatmaps`` row drawn again from the history's per-head values."""
    import math

    import torch

    rows = {}
    for record in history(run_dir):
        if record.get("kind") == "heads":
            per_head = {k: torch.tensor(v) for k, v in record["per_head"].items()}
            images = head_images(per_head, entropy_max=math.log(entropy_tokens))
            rows[record["step"]] = image_row(images)
    return rows


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def assert_heatmap(decoded: np.ndarray, expected: np.ndarray) -> None:
    """The decoded image is the drawn heatmap, pixel for pixel, and not one flat colour (an
    untrained model: scores on viridis and entropy on magma, white gaps between panels)."""
    assert decoded.shape == expected.shape and decoded.shape[2] == 3
    assert len(np.unique(decoded.reshape(-1, 3), axis=0)) >= 3  # two colour tables and white
    np.testing.assert_array_equal(decoded, expected)


# -- reading back the local loggers ---------------------------------------------------------------


def read_tensorboard(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return events


def tensorboard_texts(events: EventAccumulator, tag: str) -> list[str]:
    """``add_text`` stores a string tensor under ``<tag>/text_summary``."""
    return [
        tensor_util.make_ndarray(e.tensor_proto).item().decode()
        for e in events.Tensors(f"{tag}/text_summary")
    ]


def csv_texts(log_dir, tag: str) -> list[tuple[int, str]]:
    """(step, text) rows of ``tag`` in a CSV logger's events file."""
    with open(Path(log_dir) / EVENTS_CSV, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "tag", "text"]
    return [(int(step), text) for step, row_tag, text in rows[1:] if row_tag == tag]


def csv_images(log_dir, tag: str) -> dict[int, bytes]:
    """step → PNG bytes of ``tag`` in a CSV logger's image folder."""
    folder = Path(log_dir) / IMAGES_DIR / tag
    return {int(p.stem.removeprefix("step")): p.read_bytes() for p in folder.glob("step*.png")}

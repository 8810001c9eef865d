"""Time of one TensorBoard heatmap: the colour-table images AttentionMonitor logs now ÷ the
matplotlib figure it drew before (``head_heatmaps`` + ``add_figure``), both written to a real
TensorBoard event file.

Usage: ``.venv/bin/python benchmarks/bench_heatmap.py [--repeats 15] [--shapes 2x4 12x12]``

Per-head values for five measures (induction, previous and duplicate token, syntactic: 0–1;
entropy: nats) of each ``LxH`` shape (2x4: the demo model; 12x12: GPT-2 small). The image side is
``AttentionMonitor._log_heatmaps`` itself (one image per measure and the row of all), on a stand-in
trainer that holds a real ``TensorBoardLogger``. The two sides alternate in every round; times are
medians over rounds with min–max, the ratio the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from types import SimpleNamespace

import _common
import numpy as np

#: The acceptance bound of issue 12 (milliseconds for the demo model).
BOUND_MS = 20.0
ENTROPY_TOKENS = 128


def per_head(layers: int, heads: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {
        name: rng.uniform(0, 1, (layers, heads))
        for name in ("induction", "previous_token", "duplicate_token", "syntactic")
    }
    values["entropy"] = rng.uniform(0, math.log(ENTROPY_TOKENS), (layers, heads))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--shapes", nargs="+", default=["2x4", "12x12"])
    args = parser.parse_args()
    _common.quiet()

    from lightning.pytorch.loggers import TensorBoardLogger

    from phasewatch import keys
    from phasewatch.callbacks import AttentionMonitor
    from phasewatch.report.heatmaps import head_heatmaps

    print("\n".join(_common.machine_lines()))
    monitor = AttentionMonitor(entropy_tokens=ENTROPY_TOKENS)
    with tempfile.TemporaryDirectory() as root:
        logger = TensorBoardLogger(root, name="bench")
        trainer = SimpleNamespace(is_global_zero=True, loggers=[logger])
        writer = logger.experiment
        for shape in args.shapes:
            layers, heads = (int(n) for n in shape.split("x"))
            values = per_head(layers, heads)
            step = iter(range(10**9))

            def image(values=values, step=step) -> None:
                monitor._log_heatmaps(trainer, values, next(step))

            def figure(values=values, step=step) -> None:
                drawn = head_heatmaps(values, "step 0 (0 tokens)")
                writer.add_figure(keys.HEADS_HEATMAPS + "_figure", drawn, next(step), close=False)

            times = _common.interleaved({"image": image, "figure": figure}, args.repeats)
            ms = {name: [1000 * t for t in ts] for name, ts in times.items()}
            ratios = [a / b for a, b in zip(times["image"], times["figure"], strict=True)]
            print(
                f"{shape} ({layers} layers x {heads} heads, 5 measures), {args.repeats} rounds: "
                f"images {statistics.median(ms['image']):.2f} ms "
                f"({min(ms['image']):.2f}–{max(ms['image']):.2f}), matplotlib figure "
                f"{statistics.median(ms['figure']):.1f} ms "
                f"({min(ms['figure']):.1f}–{max(ms['figure']):.1f}); images ÷ figure "
                f"{statistics.median(ratios):.4f} ({_common.spread(ratios)})"
            )
            if shape == "2x4":
                verdict = "within" if statistics.median(ms["image"]) <= BOUND_MS else "OVER"
                print(f"demo model: {verdict} the {BOUND_MS:.0f} ms bound of issue 12")
        writer.close()  # before the directory goes


if __name__ == "__main__":
    main()

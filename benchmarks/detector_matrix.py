"""The transition detector's simulation matrix as Markdown tables, for docs/transition.md.

The cells of ``tests/test_detect_matrix.py`` (which asserts them): logistic rises in steps of widths
10-300 (and 1,000 here), total rise 0.1 or 0.875 with noise SD up to a tenth of it, abrupt in tokens
(10-90 % within a factor 1.45) and after 6 evaluations, measured every 10-500 steps or on the
default log-spaced schedule, 3,200 tokens per step, 20 seeds each; then noise-only and single-spike
series. Each cell is scored by ``phasewatch.detect.simulate.run_cell``: found once, inside the rise.

    .venv/bin/python benchmarks/detector_matrix.py                # the default rule and the paper's
    .venv/bin/python benchmarks/detector_matrix.py --old 609918c  # also the rule of that commit

``--old REV`` loads ``phasewatch/detect/transition.py`` as it was at git revision ``REV`` (the
evaluation-count rule of phasewatch 0.1.0 is ``609918c``) and scores it on the same series.
Pure numpy and Python; about a minute on one core with ``--old``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from functools import partial
from pathlib import Path

from phasewatch.callbacks.schedule import MeasureSchedule
from phasewatch.detect import detect_transitions
from phasewatch.detect.simulate import false_alarms, measured_steps, run_cell

CADENCES = {"10": 10, "25": 25, "50": 50, "100": 100, "250": 250, "500": 500}
CADENCES["default"] = MeasureSchedule()
SETTINGS = ((0.1, 0.01), (0.875, 0.003), (0.875, 0.0875))
NOISE = (0.003, 0.01, 0.0875)


def old_rule(rev: str):
    """``detect_transitions`` of ``phasewatch/detect/transition.py`` at git revision ``rev``."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{rev}:phasewatch/detect/transition.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType(f"transition_at_{rev}")
    exec(compile(source, f"{rev}:transition.py", "exec"), module.__dict__)
    return module.detect_transitions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    parser.add_argument("--old", metavar="REV", help="also score the rule at this git revision")
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)

    rules = {"abrupt": detect_transitions}
    rules["threshold 0.1"] = partial(detect_transitions, rule="threshold", level=0.1)
    if args.old:
        rules[f"old ({args.old})"] = old_rule(args.old)
    started = time.perf_counter()
    names = list(rules)
    heads = [f"rise {h}, SD {sd}: " + " / ".join(names) for h, sd in SETTINGS]
    print("| width (steps) | cadence (steps) | " + " | ".join(heads) + " |")
    print("|---:|---|" + "---|" * len(SETTINGS))
    delays = []
    for width in args.widths:
        for label, cadence in CADENCES.items():
            cells = []
            for height, noise in SETTINGS:
                results = [
                    run_cell(cadence, width, height, noise, seeds=args.seeds, detect=rules[name])
                    for name in names
                ]
                delays.append(results[0].mean_delay)
                cells.append(" / ".join(str(r.right) for r in results))
            print(f"| {width} | {label} | " + " | ".join(cells) + " |")
    print(f"\nfound once inside the rise, of {args.seeds} seeds: " + " / ".join(names))
    print(
        f"default rule: confirmation at {min(delays):.2f}-{max(delays):.2f} x the tokens of the "
        "rise's 90 % point (mean over seeds, range over cells)"
    )

    print(
        "\n| cadence (steps) | evaluations | " + " | ".join(f"noise SD {sd}" for sd in NOISE),
        end="",
    )
    print(" | spike +0.9 (SD 0.003) |")
    print("|---|---:|" + "---|" * (len(NOISE) + 1))
    for label, cadence in CADENCES.items():
        steps = measured_steps(cadence, 200 * (100 if label == "default" else cadence))
        cells = []
        for noise in NOISE:
            counts = [false_alarms(steps, noise, seeds=args.seeds, detect=rules[n]) for n in names]
            cells.append(" / ".join(map(str, counts)))
        spikes = [false_alarms(steps, 0.003, args.seeds, 0.9, detect=rules[n]) for n in names]
        cells.append(" / ".join(map(str, spikes)))
        print(f"| {label} | {len(steps)} | " + " | ".join(cells) + " |")
    print(f"\nevents on {args.seeds} flat series at 0.014 + noise: " + " / ".join(names))
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

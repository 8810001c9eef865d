"""Resident memory across many evaluations: does a long training run leak through the monitors?

Usage: ``.venv/bin/python benchmarks/bench_memory.py [--evaluations 30 --threads 1]``

One evaluation is what PPPMonitor and AttentionMonitor do at a scheduled step:
``PPPMeasure.measure`` on the whole Natural Stories corpus and ``HeadMeasure.measure`` (head
scores, attention entropy, syntactic score on 2 stories), on the demo's model (2 layers × 4 heads
× 64 dims) in train mode, as during training. After ``--warmup`` evaluations (caches, allocator
pools, lazily built probes), ``--evaluations`` more run; resident memory (``VmRSS`` from
``/proc/self/status``) is read after each. A single reading sometimes catches 20–30 MiB of
transient buffers the allocator has not yet handed back, so growth is the median of the second
half of the readings minus the median of the first half (MiB, and per evaluation: divided by the
half-length), next to the endpoints and the process' peak RSS (``VmHWM``). Flat means no leak:
nothing accumulates per evaluation.
"""

from __future__ import annotations

import argparse

import _common
import numpy as np

from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.measures.snapshot import HeadMeasure, PPPMeasure
from phasewatch.models import as_probe_model

KIB_PER_MIB = 1024
#: A reading this far above the lowest one holds transient buffers not yet returned to the OS.
SPIKE_MIB = 10


def run(*, evaluations: int = 30, warmup: int = 2) -> dict:
    """Run the evaluations, print the readings, and return the numbers (MiB)."""
    corpus = _common.natural_stories()
    tokenizer = _common.bpe_tokenizer(corpus)
    module = _common.tiny_gpt2(tokenizer).train()
    probe = as_probe_model(module)
    ppp = PPPMeasure(corpus)
    heads = HeadMeasure(corpus=corpus, dependencies=load_dependencies())

    def evaluate() -> None:
        ppp.measure(probe, tokenizer)
        heads.measure(probe, tokenizer)

    before = _common.proc_status_kib("VmRSS")
    for _ in range(warmup):
        evaluate()
    readings = [_common.proc_status_kib("VmRSS")]
    for _ in range(evaluations):
        evaluate()
        readings.append(_common.proc_status_kib("VmRSS"))
    peak = _common.proc_status_kib("VmHWM")

    mib = np.asarray(readings, dtype=float) / KIB_PER_MIB
    half = len(mib) // 2
    first, second = mib[:half], mib[half:]
    growth = float(np.median(second) - np.median(first))
    per_evaluation = growth / (len(mib) / 2)  # the halves' centres are len/2 evaluations apart
    floor_growth = float(second.min() - first.min())
    spikes = int((mib > mib.min() + SPIKE_MIB).sum())
    print(
        f"one evaluation = PPPMeasure.measure (whole corpus) + HeadMeasure.measure, demo model; "
        f"{warmup} warm-up + {evaluations} evaluations"
    )
    for label, value, note in (
        ("RSS before the first evaluation:", before / KIB_PER_MIB, ""),
        (f"RSS after {warmup} warm-up evaluations:", mib[0], ""),
        (f"RSS after {evaluations} more evaluations:", mib[-1], " (single readings jump)"),
    ):
        print(f"{label:38}{value:7.1f} MiB{note}")
    print(f"RSS after each evaluation (MiB): {' '.join(f'{x:.0f}' for x in mib)}")
    print(
        f"growth, median of the last {len(second)} readings − median of the first {half}: "
        f"{growth:+.1f} MiB = {per_evaluation * KIB_PER_MIB:+.0f} KiB per evaluation; "
        f"lowest reading, second half − first half: {floor_growth:+.1f} MiB"
    )
    print(
        f"{spikes} of {len(mib)} readings caught transient buffers (> {SPIKE_MIB} MiB above the "
        f"lowest); peak RSS of the process (VmHWM): {peak / KIB_PER_MIB:.1f} MiB"
    )
    return {
        "evaluations": evaluations,
        "warmup": warmup,
        "rss_before_mib": before / KIB_PER_MIB,
        "rss_after_warmup_mib": float(mib[0]),
        "rss_end_mib": float(mib[-1]),
        "growth_mib": growth,
        "growth_kib_per_evaluation": per_evaluation * KIB_PER_MIB,
        "floor_growth_mib": floor_growth,
        "spikes": spikes,
        "peak_rss_mib": peak / KIB_PER_MIB,
        "readings_mib": [float(x) for x in mib],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch default")
    args = parser.parse_args(argv)
    _common.quiet()
    _common.set_threads(args.threads)
    print("\n".join(_common.machine_lines()))
    return run(evaluations=args.evaluations, warmup=args.warmup)


if __name__ == "__main__":
    main()

"""Cost of AttentionMonitor's measurement (HeadMeasure.measure) and of each of its three parts.

Usage: ``.venv/bin/python benchmarks/bench_head_measure.py [--repeats 9 --threads 1]``

The parts run three forward passes over three different inputs, so none can serve another
exactly: the head scores on 32 seeded random sequences of 50 tokens repeated twice, the entropy on
BOS + the first 99 tokens of 4 stories, the syntactic score on 2 stories cut into sentence-packed
windows of <= 100 tokens. What a measurement repeats without need is the syntactic score's plan
(tokenize its stories, pack sentences into windows, place the arcs): it is kept per tokenizer
(``phasewatch.measures.syntactic``). "replanned" clears that plan and the story-token cache before
every call, as every measurement did before; "kept" is a measurement during training.
Wall time and process CPU time of the same calls; ratios are medians over interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics

import _common
from bench_ppp import timed_rounds

from phasewatch.measures import token_cache
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.measures.syntactic import clear_plan_cache
from phasewatch.models import as_probe_model


def run(*, repeats: int = 9) -> dict:
    """Run the comparison, print it, and return the numbers."""
    corpus = _common.natural_stories()
    tokenizer = _common.bpe_tokenizer(corpus)
    probe = as_probe_model(_common.tiny_gpt2(tokenizer))
    measure = HeadMeasure(corpus=corpus, dependencies=corpus.dependencies)  # monitor defaults
    parts = dict(measure._parts(probe, tokenizer))

    def replanned() -> None:
        clear_plan_cache()
        token_cache.clear_cache()
        measure.measure(probe, tokenizer)

    def part(name: str):
        return lambda: parts[name]({}, {})

    fns = {
        "kept": lambda: measure.measure(probe, tokenizer),
        "replanned": replanned,
        **{name: part(name) for name in parts},
    }
    wall, cpu = timed_rounds(fns, repeats)
    print(f"demo GPT-2, Natural Stories; median of {repeats} interleaved rounds")
    print(f"{'':44}{'wall':>9}    {'CPU':>9}")
    labels = {
        "kept": "HeadMeasure.measure, plan kept",
        "replanned": "HeadMeasure.measure, replanned (before)",
        "repeated_token": "  head scores (induction, prev., dup.)",
        "entropy": "  attention entropy",
        "syntactic": "  syntactic score, plan kept",
    }
    for name, label in labels.items():
        w, c = statistics.median(wall[name]) * 1e3, statistics.median(cpu[name]) * 1e3
        print(f"{label:44}{w:9.1f} ms {c:9.1f} ms")
    ratios = {
        clock: [k / r for k, r in zip(times["kept"], times["replanned"], strict=True)]
        for clock, times in (("wall", wall), ("CPU", cpu))
    }
    for clock, values in ratios.items():
        print(
            f"kept / replanned, {clock} time: {statistics.median(values):.3f} "
            f"(rounds {_common.spread(values)})"
        )
    return {
        "wall_ms": {k: statistics.median(v) * 1e3 for k, v in wall.items()},
        "cpu_ms": {k: statistics.median(v) * 1e3 for k, v in cpu.items()},
        "ratio_cpu": statistics.median(ratios["CPU"]),
        "ratio_wall": statistics.median(ratios["wall"]),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch default")
    args = parser.parse_args(argv)
    _common.quiet()
    _common.set_threads(args.threads)
    print("\n".join(_common.machine_lines()))
    return run(repeats=args.repeats)


if __name__ == "__main__":
    main()

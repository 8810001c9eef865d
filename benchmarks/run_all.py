"""Run phasewatch's benchmarks and print their numbers, the machine, and a summary table.

Usage (``make bench`` runs the first):

    .venv/bin/python benchmarks/run_all.py                  # everything, ~6–10 min on 2 cores
    .venv/bin/python benchmarks/run_all.py --quick          # smaller, ~2–3 min
    .venv/bin/python benchmarks/run_all.py --only ppp heads # some of them
    .venv/bin/python benchmarks/run_all.py --json results.json

Every ratio compares two things measured in this one process, interleaved (A, B, A, B, ...), and
is the median over rounds; absolute times depend on the machine and its load, ratios much less.
Torch runs on ``--threads`` intra-op threads (default 1: on a machine shared with other jobs,
more threads than free cores make every operation wait on the slowest thread).
"""

from __future__ import annotations

import argparse
import json
import time

import _common
import bench_head_scores
import bench_memory
import bench_overhead
import bench_ppp

BENCHMARKS = ("memory", "ppp", "heads", "overhead")  # memory first: the cleanest RSS readings
#: The demo's shape for the head-score benchmark; the second is bench_head_scores' own default.
HEAD_SHAPES = {
    "demo shape": ["--layers", "2", "--heads", "4", "--width", "64", "--vocab", "512"],
    "4 × 4 × 256, vocab 50257": [],
}


def settings(quick: bool) -> dict:
    if quick:
        return {
            "memory": {"evaluations": 10},
            "ppp": {"repeats": 3},
            "heads": {"repeats": 3, "shapes": ["demo shape"]},
            "overhead": {"steps": 200, "repeats": 1},
        }
    return {
        "memory": {"evaluations": 30},
        "ppp": {"repeats": 7},
        "heads": {"repeats": 7, "shapes": list(HEAD_SHAPES)},
        "overhead": {"steps": 500, "repeats": 2},
    }


def run_heads(repeats: int, shapes: list[str]) -> dict:
    results = {}
    for shape in shapes:
        argv = [*HEAD_SHAPES[shape], "--repeats", str(repeats), "--device", "cpu"]
        results[shape] = bench_head_scores.main(argv)
    return results


def summary_table(results: dict) -> list[str]:
    """Markdown rows: benchmark, what is compared, ratio, absolute numbers."""
    rows = [
        "| benchmark | ratio | what the ratio compares | absolute |",
        "|---|---|---|---|",
    ]
    if "overhead" in results:
        r = results["overhead"]
        for p, ratio in r["ratio"].items():
            bare, mon = r["steps_per_s"][p]
            rows.append(
                f"| training throughput, steps 0–{p} ({r['measured_in_prefix'][p]} measurements) "
                f"| {ratio:.3f} | steps/s with the 4 callbacks ÷ without | {mon:.2f} vs "
                f"{bare:.2f} steps/s |"
            )
        by_callback = ", ".join(f"{k} {v:.0f}" for k, v in r["measurement_ms_by_callback"].items())
        rows.append(
            f"| one measurement, steady state (steps ≥ 100) | {r['steady_share']:.1%} of "
            f"training time | measurement ÷ (measurement + {r['every_n_steps']} steps) | "
            f"{r['measurement_ms']:.0f} ms ({by_callback} ms); step {r['step_ms']:.0f} ms |"
        )
    if "ppp" in results:
        r = results["ppp"]
        ms = r["ms"]
        rows.append(
            f"| PPP on all of Natural Stories | {r['ratio']:.2f} | PPPMeasure.measure ÷ (bare "
            f"forward + fits) | {ms['measure']:.0f} ms vs {ms['forward']:.0f} + {ms['fits']:.0f}"
            f" ms |"
        )
    for shape, r in results.get("heads", {}).items():
        rows.append(
            f"| head scores, {shape} | {r['ratio']['prebuilt']:.2f} | all_head_scores ÷ bare "
            f"eager forward with attentions | {r['ms']['prebuilt']:.1f} ms vs "
            f"{r['bare_ms']:.1f} ms |"
        )
    if "memory" in results:
        r = results["memory"]
        rows.append(
            f"| memory, {r['evaluations']} PPP + head evaluations after {r['warmup']} warm-up | "
            f"{r['growth_kib_per_evaluation']:+.0f} KiB per evaluation | RSS growth: median of the "
            f"second half of the readings − the first, per evaluation | RSS "
            f"{r['rss_after_warmup_mib']:.0f} MiB after warm-up, {r['rss_end_mib']:.0f} MiB at "
            f"the end; halves {r['growth_mib']:+.1f} MiB; peak {r['peak_rss_mib']:.0f} MiB |"
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (~2–3 min)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch default")
    parser.add_argument(
        "--overhead-steps",
        type=int,
        help="training steps per overhead run (default 500; quick 200)",
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    _common.quiet()
    _common.set_threads(args.threads)
    plan = settings(args.quick)
    if args.overhead_steps:
        plan["overhead"]["steps"] = args.overhead_steps
    runners = {
        "memory": lambda: bench_memory.run(**plan["memory"]),
        "ppp": lambda: bench_ppp.run(**plan["ppp"]),
        "heads": lambda: run_heads(**plan["heads"]),
        "overhead": lambda: bench_overhead.run(**plan["overhead"]),
    }
    titles = {
        "memory": "4. memory across evaluations",
        "ppp": "2. PPP evaluation vs its floor",
        "heads": "3. head scores vs a bare forward pass with attentions",
        "overhead": "1. training throughput with vs without the callbacks",
    }

    start = time.perf_counter()
    print("phasewatch benchmarks" + (" (--quick)" if args.quick else ""))
    print("\n".join(_common.machine_lines()))
    results: dict = {}
    for name in BENCHMARKS:
        if name not in args.only:
            continue
        print(f"\n== {titles[name]} ==")
        section = time.perf_counter()
        results[name] = runners[name]()
        print(f"({time.perf_counter() - section:.0f} s)")

    print("\n== summary ==")
    print(f"load average at the end: {_common.load_average()}")
    print("\n".join(summary_table(results)))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": _common.machine_lines(), "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()

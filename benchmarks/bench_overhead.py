"""Training throughput with all four phasewatch callbacks at their defaults vs without callbacks.

Usage: ``.venv/bin/python benchmarks/bench_overhead.py [--steps 500 --repeats 2 --threads 1]
[--max-overhead 0.025]``; ``--steady-only [--steps 250]``: one measurement's cost in steady state
alone, from monitored runs (no runs without callbacks, no throughput ratios).

``--max-overhead F`` gives ``PPPMonitor`` and ``AttentionMonitor`` each ``max_overhead=F`` (they
split it: F of wall time together, F/2 each); each run then prints
how many scheduled measurements each monitor skipped. The steady-state lines below still use the
schedule's steps, skipped ones included, so with a budget only the throughput ratios are meaningful.

The demo's model and batches (GPT-2, 2 layers × 4 heads × 64 dims, vocab 512, batches of 32 × 100
tokens, AdamW, gradient clipping 1.0) train for ``--steps`` optimizer steps on Natural Stories text,
once without callbacks (A) and once with ``PPPMonitor()``, ``AttentionMonitor()``,
``TransitionMonitor()`` and ``PeakMonitor()`` at their defaults (B), in turn A, B, A, B, ... in one
process, each run from the same initial weights on the same batches. Both have a TensorBoard logger
(so B draws its heatmaps and PeakMonitor writes its checkpoints, as in real use); no validation.

The default schedule measures at steps 0, 1, 2, 3, 4, 6, 7, 8, 10, 13, ... 317, 399, then every 100
steps, so the throughput ratio depends on how many steps are counted: it is printed over steps
0–100, 0–500 and 0–``steps``. Each callback's hooks are timed (time spent inside other timed hooks
subtracted), which gives the cost of one measurement once the log grid has thinned out (measured
steps >= 100), and its share of training time at ``every_n_steps=100``:
``cost / (cost + 100 × step time)``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable

import _common
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from phasewatch.callbacks import AttentionMonitor, PeakMonitor, PPPMonitor, TransitionMonitor
from phasewatch.callbacks.schedule import MeasureSchedule

#: The hooks in which the four callbacks do their work.
TIMED_HOOKS = ("on_train_start", "on_train_batch_end", "on_measurement")
#: Measured steps from which the log grid is sparse enough to count as steady state.
STEADY_FROM = 100
#: Label of AttentionMonitor's after-measurement work (heatmap figure to TensorBoard, history).
FIGURES = "AttentionMonitor heatmaps"


class StepClock(Callback):
    """Wall-clock marks: train start, each batch start, train end (first in the callback list).

    ``clock``: seconds now; ``time.process_time`` counts this process's CPU time instead.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock

    def on_train_start(self, trainer, pl_module) -> None:
        self.marks: list[float] = []
        self.start = self.clock()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.marks.append(self.clock())

    def on_train_end(self, trainer, pl_module) -> None:
        self.end = self.clock()

    def until_step(self, step: int) -> float:
        """Seconds from train start until step ``step`` and its measurements are done."""
        return (self.marks[step] if step < len(self.marks) else self.end) - self.start

    def step_seconds(self) -> list[float]:
        """Duration of each training step (batch start to next batch start / train end)."""
        ends = [*self.marks[1:], self.end]
        return [b - a for a, b in zip(self.marks, ends, strict=True)]


class HookTimer:
    """Exclusive seconds per callback and global step, from wrapping the callbacks' hooks."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._nested: list[float] = []

    def wrap(self, callback: Callback) -> None:
        name = type(callback).__name__
        for hook in TIMED_HOOKS:
            original = getattr(callback, hook, None)
            if original is not None:
                setattr(callback, hook, self._timed(name, original))
        if isinstance(callback, AttentionMonitor):  # its heatmap figure, timed on its own
            callback.after_measurement = self._timed(FIGURES, callback.after_measurement)

    def names(self) -> list[str]:
        return sorted({name for per_step in self.seconds.values() for name in per_step})

    def _timed(self, name: str, original):
        def timed(trainer, *args, **kwargs):
            self._nested.append(0.0)
            start = self.clock()
            try:
                return original(trainer, *args, **kwargs)
            finally:
                elapsed = self.clock() - start
                inner = self._nested.pop()
                if self._nested:
                    self._nested[-1] += elapsed
                self.seconds[trainer.global_step][name] += elapsed - inner

        return timed

    def total(self, step: int) -> float:
        return sum(self.seconds.get(step, {}).values())


def train_once(
    sequences,
    tokenizer,
    steps,
    *,
    monitored: bool,
    root: str,
    max_overhead: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
):
    """One training run; returns its StepClock and HookTimer (empty without callbacks)."""
    config = _common.demo_config()
    module = _common.tiny_gpt2(tokenizer)  # seeded: identical initial weights in every run
    clock, timer = StepClock(clock), HookTimer(clock)
    callbacks: list[Callback] = [clock]
    if monitored:
        budget = {"max_overhead": max_overhead}
        monitors = [
            PPPMonitor(**budget),
            AttentionMonitor(**budget),
            TransitionMonitor(),
            PeakMonitor(),
        ]
        for monitor in monitors:
            timer.wrap(monitor)
        callbacks += monitors
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=steps,
        gradient_clip_val=config.gradient_clip_val,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=TensorBoardLogger(root, name="monitored" if monitored else "bare"),
        callbacks=callbacks,
    )
    loader = DataLoader(sequences, batch_size=config.batch_size, shuffle=False)
    trainer.fit(module, loader)
    if monitored and max_overhead is not None:
        for monitor in monitors[:2]:
            print(f"  {type(monitor).__name__}: {monitor.budget.summary()}")
    return clock, timer


def _inputs(steps: int) -> tuple:
    """The demo's config, corpus, tokenizer and ``steps`` batches of sequences, the default
    schedule and its measured steps in 0..``steps``."""
    config = _common.demo_config()
    corpus = _common.natural_stories()
    tokenizer = _common.bpe_tokenizer(corpus, config.vocab_size)
    sequences = _common.training_sequences(
        corpus, tokenizer, steps * config.batch_size, config.context_length
    )
    schedule = MeasureSchedule()
    measured = [s for s in range(steps + 1) if schedule.due(s)]
    return config, corpus, tokenizer, sequences, schedule, measured


def run(*, steps: int = 500, repeats: int = 2, max_overhead: float | None = None) -> dict:
    """Run the comparison, print it, and return the numbers."""
    config, _, tokenizer, sequences, schedule, measured = _inputs(steps)
    prefixes = sorted({p for p in (100, 500) if p < steps} | {steps})

    runs: dict[bool, list] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as root:
        for _ in range(repeats):
            for monitored in (False, True):
                runs[monitored].append(
                    train_once(
                        sequences,
                        tokenizer,
                        steps,
                        monitored=monitored,
                        root=root,
                        max_overhead=max_overhead,
                    )
                )

    ratios = {
        p: [
            bare.until_step(p) / mon.until_step(p)
            for (bare, _), (mon, _) in zip(runs[False], runs[True], strict=True)
        ]
        for p in prefixes
    }
    step_s = statistics.median(s for clock, _ in runs[False] for s in clock.step_seconds())
    unmeasured_cb = statistics.median(
        timer.total(s) for _, timer in runs[True] for s in range(1, steps + 1) if s not in measured
    )
    first = statistics.median(timer.total(0) for _, timer in runs[True])
    steady_from = STEADY_FROM if steps >= STEADY_FROM else 1  # short runs: all but the first
    steady_steps = [s for s in measured if s >= steady_from]
    steady = statistics.median(t.total(s) for _, t in runs[True] for s in steady_steps)
    per_callback = {
        name: statistics.median(
            t.seconds[s].get(name, 0.0) for _, t in runs[True] for s in steady_steps
        )
        for name in runs[True][0][1].names()
    }
    every = schedule.every_n_steps
    share = steady / (steady + every * step_s)

    print(
        f"GPT-2 {config.n_layer} layers × {config.n_head} heads × {config.n_embd} dims, vocab "
        f"{config.vocab_size}, batches {config.batch_size} × {config.context_length} tokens; "
        f"{steps} steps per run; {repeats} × (without, with) interleaved"
        + ("" if max_overhead is None else f"; max_overhead={max_overhead} shared by 2 monitors")
    )
    print(f"default schedule: {len(measured)} measurements in steps 0–{steps}: {measured}")
    steps_per_s = {}
    for p in prefixes:
        n = sum(s <= p for s in measured)
        bare = p / statistics.median(c.until_step(p) for c, _ in runs[False])
        mon = p / statistics.median(c.until_step(p) for c, _ in runs[True])
        steps_per_s[p] = (bare, mon)
        print(
            f"steps 0–{p:<4} ({n:2} measurements): without {bare:6.2f} steps/s, with "
            f"{mon:6.2f} steps/s; ratio with/without {statistics.median(ratios[p]):.3f} "
            f"(rounds {_common.spread(ratios[p])})"
        )
    print(f"training step without callbacks (median): {step_s * 1e3:.1f} ms")
    print(f"callbacks at an unmeasured step (median): {unmeasured_cb * 1e6:.0f} µs")
    print(f"first measurement, step 0 (loads corpus, parses, baselines): {first * 1e3:.0f} ms")
    print(
        f"one measurement at steps >= {steady_from} (median over {len(steady_steps)} steps × "
        f"{repeats} runs): {steady * 1e3:.0f} ms = "
        + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in per_callback.items())
        + " ms"
    )
    print(
        f"steady state at every_n_steps={every}: measuring is {share:.1%} of training time "
        f"(throughput ratio {1 - share:.3f})"
    )
    return {
        "steps": steps,
        "repeats": repeats,
        "measurements": len(measured),
        "ratio": {p: statistics.median(v) for p, v in ratios.items()},
        "ratio_rounds": ratios,
        "steps_per_s": steps_per_s,
        "measured_in_prefix": {p: sum(s <= p for s in measured) for p in prefixes},
        "step_ms": step_s * 1e3,
        "unmeasured_step_callbacks_us": unmeasured_cb * 1e6,
        "first_measurement_ms": first * 1e3,
        "measurement_ms": steady * 1e3,
        "measurement_ms_by_callback": {k: v * 1e3 for k, v in per_callback.items()},
        "steady_share": share,
        "every_n_steps": every,
        "max_overhead": max_overhead,
    }


def _ppp_forward_seconds(tokenizer, corpus, clock: Callable[[], float], repeats: int = 5) -> float:
    """Median seconds of PPPMonitor's forward passes alone (bench_ppp's floor), demo model."""
    import torch
    from bench_ppp import forward_batches

    from phasewatch.measures.snapshot import PPPMeasure

    model = _common.tiny_gpt2(tokenizer).model.eval()
    frame = PPPMeasure(corpus).frame
    batches = forward_batches(model, tokenizer, frame, model.config.n_positions, 8)

    def forward() -> None:
        with torch.no_grad():
            for ids, keep in batches:
                options = {} if keep is None else {"logits_to_keep": keep}
                model(input_ids=ids, use_cache=False, **options)

    def seconds() -> float:
        start = clock()
        forward()
        return clock() - start

    forward()
    return statistics.median(seconds() for _ in range(repeats))


def run_steady(*, steps: int = 250, repeats: int = 2, cpu: bool = False) -> dict:
    """Steady state alone (``--steady-only``): monitored runs only, no throughput comparison.

    The step time is the median duration of the steps at which nothing was measured (the
    callbacks' ~70 µs there included); one measurement is the callbacks' exclusive time at a
    measured step >= ``STEADY_FROM``, and its share ``cost / (cost + every_n_steps × step)``.
    With ``cpu=True`` every duration is this process's CPU time (``time.process_time``; torch on
    one thread), which other jobs on a shared machine stretch much less than wall time.
    """
    clock = time.process_time if cpu else time.perf_counter
    _, corpus, tokenizer, sequences, schedule, measured = _inputs(steps)
    steady_steps = [s for s in measured if s >= STEADY_FROM]
    if not steady_steps:
        raise ValueError(f"--steps {steps} measures nothing at steps >= {STEADY_FROM}")
    with tempfile.TemporaryDirectory() as root:
        runs = [
            train_once(sequences, tokenizer, steps, monitored=True, root=root, clock=clock)
            for _ in range(repeats)
        ]
    # step b (0-based batch) ends at global step b + 1, where a measurement may run
    step_s = statistics.median(
        seconds
        for clock, _ in runs
        for b, seconds in enumerate(clock.step_seconds())
        if b + 1 not in measured
    )
    per_step = [t.total(s) for _, t in runs for s in steady_steps]
    steady = statistics.median(per_step)
    per_callback = {
        name: statistics.median(t.seconds[s].get(name, 0.0) for _, t in runs for s in steady_steps)
        for name in runs[0][1].names()
    }
    every = schedule.every_n_steps
    share = steady / (steady + every * step_s)
    floor = _ppp_forward_seconds(tokenizer, corpus, clock)
    floor_share = floor / (floor + every * step_s)
    print(
        f"steady state only: {repeats} monitored run(s) of {steps} steps, measurements at steps "
        f"{steady_steps} counted ({len(per_step)} in all); "
        + ("process CPU time" if cpu else "wall time")
    )
    print(f"training step at unmeasured steps (median): {step_s * 1e3:.1f} ms")
    print(
        f"one measurement (median; min–max {min(per_step) * 1e3:.0f}–{max(per_step) * 1e3:.0f}): "
        f"{steady * 1e3:.0f} ms = "
        + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in per_callback.items())
        + " ms"
    )
    print(
        f"steady state at every_n_steps={every}: measuring is {share:.1%} of training time "
        f"(throughput ratio {1 - share:.3f})"
    )
    print(
        f"floor: PPP's bare forward passes alone (its 509 windows, no scoring, no fits, no "
        f"attention measures): {floor * 1e3:.0f} ms = {floor_share:.1%} of training time at "
        f"every_n_steps={every}"
    )
    return {
        "ppp_forward_floor_ms": floor * 1e3,
        "ppp_forward_floor_share": floor_share,
        "step_ms": step_s * 1e3,
        "measurement_ms": steady * 1e3,
        "measurement_ms_by_callback": {k: v * 1e3 for k, v in per_callback.items()},
        "steady_share": share,
        "every_n_steps": every,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch default")
    parser.add_argument(
        "--max-overhead",
        type=float,
        default=None,
        help="max_overhead= of PPPMonitor and AttentionMonitor (shared: fraction of wall time)",
    )
    parser.add_argument(
        "--steady-only",
        action="store_true",
        help="only the steady-state measurement cost (monitored runs; --steps default 250)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="with --steady-only: time in process CPU seconds instead of wall seconds",
    )
    args = parser.parse_args(argv)
    _common.quiet()
    _common.set_threads(args.threads)
    print("\n".join(_common.machine_lines()))
    if args.steady_only:
        given = any(a.startswith("--steps") for a in (sys.argv[1:] if argv is None else argv))
        steps = args.steps if given else 250
        return run_steady(steps=steps, repeats=args.repeats, cpu=args.cpu_time)
    return run(steps=args.steps, repeats=args.repeats, max_overhead=args.max_overhead)


if __name__ == "__main__":
    main()

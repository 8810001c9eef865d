"""Cost of one PPP evaluation on the whole Natural Stories corpus vs its floor.

Usage: ``.venv/bin/python benchmarks/bench_ppp.py [--repeats 7 --threads 1]``

``PPPMeasure.measure`` (the one path PPPMonitor and offline analysis use) is word surprisal of all
10,256 words (tokenize the stories, forward every sliding window, gather token log-probabilities,
sum them per word) followed by the ΔLL regressions (baseline and full model, 10-fold
cross-validation, spillover 4). Its floor is what no implementation can skip:

- the bare forward passes: the model on the very same batches of token windows as the measure
  (prebuilt input tensors, same ``logits_to_keep``), under ``no_grad``, nothing scored;
- the least-squares fits alone: ``delta_loglik`` on the frame with the surprisal precomputed.

Each round runs the measure, word_surprisal alone, the bare forward passes, the fits alone and the
tokenization alone, in turn; the ratio measure / (forward + fits) is the median over rounds.
Every call is timed twice: wall time, and the CPU time of this process. With torch and BLAS on one
thread (the fits limit BLAS themselves) the CPU time is the work itself, little moved by other
jobs on a shared machine (whose load stretches wall time by up to 2x at random), so its ratio is
the steadier one; on a quiet machine the two agree.
The model is the demo's (2 layers × 4 heads × 64 dims, context 100 tokens), freshly initialised:
the cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import _common
import numpy as np
import torch

from phasewatch.measures.delta_loglik import delta_loglik
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.measures.surprisal import (
    _batches,
    _plan_windows,
    _sequence,
    _tokenize_stories,
    word_surprisal,
)
from phasewatch.models import as_probe_model
from phasewatch.models._huggingface import _accepts_logits_to_keep


def forward_batches(model, tokenizer, frame, width: int, batch_size: int) -> list[tuple]:
    """The measure's own batches of windows as ``(input_ids, logits_to_keep)``, built once.

    Uses word_surprisal's window plan and batching, so the floor runs the very same forward passes.
    """
    bos = tokenizer.bos_token_id
    _, stories = _tokenize_stories(frame, tokenizer)
    sequences = [_sequence(st, bos) for st in stories]
    windows = [w for i, seq in enumerate(sequences) for w in _plan_windows(i, len(seq), width)]
    batches = []
    for batch in _batches(windows, batch_size):
        length = max(w.end - w.start for w in batch)
        ids = np.full((len(batch), length), bos, dtype=np.int64)
        for row, w in enumerate(batch):
            ids[row, : w.end - w.start] = sequences[w.story][w.start : w.end]
        keep = length - min(w.first_target - 1 - w.start for w in batch)
        same_length = all(w.end - w.start == length for w in batch)
        use_keep = same_length and keep < length and _accepts_logits_to_keep(model)
        batches.append((torch.from_numpy(ids), keep if use_keep else None))
    return batches


def timed_rounds(
    fns: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per call of each function, wall and process CPU time; one warm-up call each, then
    ``repeats`` rounds that run every function once, in turn (interleaved)."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return wall, cpu


def run(*, repeats: int = 7) -> dict:
    """Run the comparison, print it, and return the numbers."""
    corpus = _common.natural_stories()
    tokenizer = _common.bpe_tokenizer(corpus)
    module = _common.tiny_gpt2(tokenizer)
    probe = as_probe_model(module)
    model = probe.module  # the Hugging Face GPT2LMHeadModel the measure runs
    measure = PPPMeasure(corpus)  # defaults of PPPMonitor: spillover 4, 10 folds, batch 8
    width = probe.max_length
    batches = forward_batches(model, tokenizer, measure.frame, width, measure.batch_size)
    surprisal, n_tokens = word_surprisal(
        model, tokenizer, measure.frame, context_length=width, return_token_counts=True
    )
    scored = measure.frame.assign(surprisal=surprisal, n_tokens=n_tokens)

    def bare_forward() -> None:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for ids, keep in batches:
                options = {"use_cache": False}
                if keep is not None:
                    options["logits_to_keep"] = keep
                model(input_ids=ids, **options)
        model.train(was_training)

    def fits() -> None:
        delta_loglik(
            scored, baseline=measure.baseline, spillover=measure.spillover, folds=measure.folds
        )

    def surprisal_only() -> None:
        word_surprisal(
            model,
            tokenizer,
            measure.frame,
            context_length=width,
            batch_size=measure.batch_size,
            return_token_counts=True,
        )

    times, cpu_times = timed_rounds(
        {
            "measure": lambda: measure.measure(probe, tokenizer),
            "surprisal": surprisal_only,
            "forward": bare_forward,
            "fits": fits,
            "tokenize": lambda: _tokenize_stories(measure.frame, tokenizer),
        },
        repeats,
    )
    cpu_floor = [f + d for f, d in zip(cpu_times["forward"], cpu_times["fits"], strict=True)]
    cpu_ratio_rounds = [m / f for m, f in zip(cpu_times["measure"], cpu_floor, strict=True)]
    cpu_ms = {name: statistics.median(values) * 1e3 for name, values in cpu_times.items()}
    cpu_ms["floor"] = statistics.median(cpu_floor) * 1e3
    cpu_ratio = statistics.median(cpu_ratio_rounds)
    floor = [f + d for f, d in zip(times["forward"], times["fits"], strict=True)]
    ratio_rounds = [m / f for m, f in zip(times["measure"], floor, strict=True)]
    ms = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    ms["floor"] = statistics.median(floor) * 1e3
    ratio = statistics.median(ratio_rounds)
    above = statistics.median(m - f for m, f in zip(times["measure"], floor, strict=True)) * 1e3
    n_tokens_total = sum(int(ids.numel()) for ids, _ in batches)

    print(
        f"Natural Stories: {len(measure.frame):,} words, {int(n_tokens.sum()):,} tokens (BPE "
        f"{len(tokenizer)}), {sum(len(b[0]) for b in batches)} windows of <= {width} tokens "
        f"({n_tokens_total:,} token positions) in {len(batches)} batches of <= "
        f"{measure.batch_size}; median of {repeats} rounds"
    )
    rows = [
        ("PPPMeasure.measure (surprisal + ΔLL)", "measure"),
        ("  word_surprisal alone", "surprisal"),
        ("    of which tokenizing the stories", "tokenize"),
        ("    of which bare forward passes", "forward"),
        ("  delta_loglik alone (the fits)", "fits"),
        ("floor = bare forward + fits", "floor"),
    ]
    print(f"{'':42}{'wall':>9}    {'CPU':>9}")
    for label, key in rows:
        print(f"{label:42}{ms[key]:9.1f} ms {cpu_ms[key]:9.1f} ms")
    print(
        f"ratio measure / floor, CPU time: {cpu_ratio:.3f} (rounds "
        f"{_common.spread(cpu_ratio_rounds)})"
    )
    print(
        f"ratio measure / floor, wall time: {ratio:.2f} (rounds {_common.spread(ratio_rounds)}); "
        f"measure − floor (median of rounds): {above:.0f} ms (tokenizing, log-softmax and "
        f"gathering, per-word sums, pandas)"
    )
    return {
        "ms": ms,
        "above_floor_ms": above,
        "ratio": ratio,
        "ratio_rounds": ratio_rounds,
        "cpu_ms": cpu_ms,
        "cpu_ratio": cpu_ratio,
        "cpu_ratio_rounds": cpu_ratio_rounds,
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch default")
    args = parser.parse_args(argv)
    _common.quiet()
    _common.set_threads(args.threads)
    print("\n".join(_common.machine_lines()))
    return run(repeats=args.repeats)


if __name__ == "__main__":
    main()

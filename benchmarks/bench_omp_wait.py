"""Training speed with OpenMP's default (spinning) wait policy vs ``OMP_WAIT_POLICY=PASSIVE``.

Usage: ``.venv/bin/python benchmarks/bench_omp_wait.py [--steps 60 --rounds 2 --load 2]``

Each side trains the demo's model (2 torch threads) for ``--steps`` steps in a fresh process, since
the policy is read when torch loads OpenMP; the sides alternate (A, B, A, B, ...). ``--load K``
runs K busy processes beside them, as other jobs on a shared machine do. Prints the seconds of each
side (median over rounds), their ratio, and whether the trained weights are bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import statistics
import subprocess
import sys
from pathlib import Path

import _common  # noqa: F401  (sets PHASEWATCH_DATA as the other benchmarks do; children inherit it)

_CHILD = """
import hashlib, os, sys, time
import torch
import lightning as L
from phasewatch.demo.config import DemoConfig
from phasewatch.demo.reproducibility import make_reproducible
config = DemoConfig().with_(max_steps=int(sys.argv[1]))
make_reproducible(config.seed, config.num_threads)
data = config.data_module()
model = config.model(data.tokenizer)
trainer = L.Trainer(**{**config.trainer_kwargs(), "val_check_interval": None}, limit_val_batches=0,
    logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
started = time.perf_counter()
trainer.fit(model, datamodule=data)
seconds = time.perf_counter() - started
digest = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values()))
print(f"{seconds:.3f} {digest.hexdigest()}")
"""


def _busy() -> None:
    while True:
        hashlib.sha256(os.urandom(1 << 16)).digest()


def _train(steps: int, passive: bool) -> tuple[float, str]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    seconds, digest = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the runs")
    args = parser.parse_args()
    _train(2, passive=True)  # build the tokenizer and token caches outside the timing
    busy = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for process in busy:
        process.start()
    spin, passive, digests = [], [], set()
    try:
        for _ in range(args.rounds):
            for policy, times in ((False, spin), (True, passive)):
                seconds, digest = _train(args.steps, policy)
                times.append(seconds)
                digests.add(digest)
    finally:
        for process in busy:
            process.terminate()
    default_s, passive_s = statistics.median(spin), statistics.median(passive)
    print(
        f"{args.steps} demo training steps, 2 torch threads, {os.cpu_count()} cores, "
        f"{args.load} busy processes beside, median of {args.rounds} rounds"
    )
    print(f"default wait policy (spinning): {default_s:8.1f} s")
    print(f"OMP_WAIT_POLICY=PASSIVE:        {passive_s:8.1f} s")
    print(f"ratio default / PASSIVE:        {default_s / passive_s:8.2f}")
    print(f"weights bit-identical across all runs: {len(digests) == 1}")


if __name__ == "__main__":
    main()

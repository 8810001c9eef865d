"""What makes two demo runs print the same numbers, and the one line that says where a run ran.

Measured (docs/demo.md, "Reproducibility"): with the same machine, library versions and torch
thread count, two demo trainings are bit-identical to the last step, under load too. The BPE
tokenizer is identical on every machine and thread count tried. A different thread count, CPU or
torch build rounds float sums differently from the first step on (weights differ by ~1e-4 after
200 steps); the induction transition amplifies that, so printed values agree to 4 decimals up to
step 2600 and then differ (induction max at step 2800: 0.7015-0.7143 over five runs).

The demo therefore fixes the thread count (:attr:`DemoConfig.num_threads`, not "as many as the
machine has") and prints :class:`RunEnvironment` with its results.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

#: libgomp's spin-then-sleep setting; ``PASSIVE`` keeps a loaded machine from stalling the demo.
OMP_WAIT_ENV = "OMP_WAIT_POLICY"


@dataclass(frozen=True)
class RunEnvironment:
    """What a bit-identical rerun needs to match: torch build, CPU kernels and thread count.

    Attributes:
        torch_version: ``torch.__version__`` (e.g. ``"2.13.0+cpu"``).
        cpu_capability: the SIMD kernels torch dispatches to (``"AVX512"``, ``"AVX2"``, ...).
        cpu_model: the processor's model name (``/proc/cpuinfo``), or ``platform.processor()``.
        num_threads: torch intra-op threads (``torch.get_num_threads()``).
        omp_wait_policy: ``$OMP_WAIT_POLICY`` when torch was imported (speed only, not results).
    """

    torch_version: str
    cpu_capability: str
    cpu_model: str
    num_threads: int
    omp_wait_policy: str

    @classmethod
    def current(cls) -> RunEnvironment:
        """The environment of this process, read now."""
        return cls(
            torch_version=str(torch.__version__),
            cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
            cpu_model=_cpu_model(),
            num_threads=torch.get_num_threads(),
            omp_wait_policy=os.environ.get(OMP_WAIT_ENV, "unset"),
        )

    def describe(self) -> str:
        """One line for the demo's output."""
        return (
            f"torch {self.torch_version}, {self.cpu_capability} kernels on {self.cpu_model}, "
            f"{self.num_threads} torch threads"
        )

    def to_dict(self) -> dict[str, str | int]:
        """Plain dict (for a logger's hyperparameters)."""
        return {f"env/{k}": v for k, v in self.__dict__.items()}


def make_reproducible(seed: int, num_threads: int) -> RunEnvironment:
    """Fix what decides a demo run's bits on this machine; returns where it runs.

    Sets torch's intra-op threads to ``num_threads`` (float sums are split by thread count, so a
    different count gives other weights after one step) and seeds Python's, NumPy's and torch's
    global generators with ``seed`` (``lightning.seed_everything(workers=True)``; the demo's
    weights and data have their own seeded generators, this covers anything else).

    Raises:
        ValueError: ``num_threads`` is not a positive integer.
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            f"`num_threads` must be a positive integer (torch intra-op threads; the demo's "
            f"documented numbers use 2), got {num_threads!r}."
        )
    torch.set_num_threads(num_threads)
    L.seed_everything(seed, workers=True, verbose=False)
    return RunEnvironment.current()


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"

"""Shared pieces of the benchmarks: the machine, the model and data, timing, and memory readings.

Every benchmark compares two things measured in the same process, interleaved (A, B, A, B, ...),
so that load from other processes on a shared machine hits both sides alike; a ratio is the median
over rounds of the per-round ratio.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

# Data for the benchmarks: $PHASEWATCH_DATA, else ../shared/corpora beside the repo (as the tests).
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
if "PHASEWATCH_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["PHASEWATCH_DATA"] = str(_SHARED)

#: Vocabulary of the byte-level BPE trained on the Natural Stories texts (the demo's size).
VOCAB_SIZE = 512


def quiet() -> None:
    """Silence warnings that say nothing about the numbers (padding hints, worker counts)."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("phasewatch").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def set_threads(threads: int) -> int:
    """Use ``threads`` intra-op threads (0: keep torch's default); return the number in use."""
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# --- the machine ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    """The machine and software the numbers were measured on, one fact per line."""
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; {platform.system()} "
        f"{platform.release()}",
        f"load average at this moment: {load_average()}",
        f"torch intra-op threads: {torch.get_num_threads()}",
        f"python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{_version('transformers')}, lightning {_version('lightning')}, numpy "
        f"{_version('numpy')}, pandas {_version('pandas')}",
    ]


# --- the model and data ---------------------------------------------------------------------------


def natural_stories():
    """The Natural Stories corpus (10 stories, 10,256 words)."""
    from phasewatch.corpora import load

    return load("naturalstories")


def bpe_tokenizer(corpus, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE tokenizer trained on the corpus texts (well under a second)."""
    from phasewatch.demo.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(list(corpus.texts.values()), vocab_size)


def demo_config():
    """The demo's shape: GPT-2, 2 layers × 4 heads × 64 dims, vocab 512, batches of 32 × 100."""
    from phasewatch.demo.config import DemoConfig

    return DemoConfig()


def tiny_gpt2(tokenizer=None):
    """A fresh demo model (seed 0): a LightningModule with ``.model`` and ``.tokenizer``."""
    return demo_config().model(tokenizer)


def training_sequences(corpus, tokenizer, n: int, length: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` sequences of ``length`` token ids cut at random offsets from the corpus' stories.

    The stories are one stream, each started with ``<|endoftext|>``; a seeded generator draws the
    offsets, so both sides of a comparison see the very same batches.
    """
    bos = tokenizer.bos_token_id
    stream: list[int] = []
    for text in corpus.texts.values():
        stream += [bos, *tokenizer(text)["input_ids"]]
    ids = torch.tensor(stream, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - length, (n,), generator=generator)
    return ids[starts.unsqueeze(1) + torch.arange(length)]


# --- timing ---------------------------------------------------------------------------------------


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int, *, warmup: bool = True
) -> dict[str, list[float]]:
    """Seconds of each function per round; every round runs all functions once, in turn."""
    if warmup:
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds(fn))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def spread(values: list[float]) -> str:
    """``min–max`` of a list of ratios, for the reader to judge the noise."""
    return f"{min(values):.3f}–{max(values):.3f}"


# --- memory ---------------------------------------------------------------------------------------


def proc_status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` memory field in KiB (``VmRSS``: resident now; ``VmHWM``: peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    if field == "VmHWM":  # elsewhere: the peak from getrusage (KiB on Linux, bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if platform.system() == "Darwin" else peak
    return None

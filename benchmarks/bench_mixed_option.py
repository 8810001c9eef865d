"""Cost of one PPP evaluation with ``mixed_effects=True`` ÷ without, on Natural Stories' size.

Natural Stories with synthetic per-reader data (no per-reader file is at hand here): each of
``--readers`` readers' reading time of a word = the word's mean + a reader offset (SD 40 ms) +
noise (SD 60 ms). The model is the demo's GPT-2 shape at initialisation (the fit's cost does not
depend on the weights). ``PPPMeasure.measure`` is timed with and without the option, interleaved
over ``--repeats`` rounds; the ratio is the median of the per-round ratios, with their spread.

Run: ``.venv/bin/python benchmarks/bench_mixed_option.py [--readers 83 --repeats 2]`` (about a
minute per round on 2 busy CPU cores, ~1.7 GB). Not part of the test suite.
"""

from __future__ import annotations

import argparse

import _common
import numpy as np
import pandas as pd

from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model


def synthetic_readers(frame: pd.DataFrame, n_readers: int, *, seed: int = 0) -> pd.DataFrame:
    """One row per reader x word: the word's mean rt + a reader offset + noise (ms)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 40, n_readers)
    words = frame[["story", "position"]]
    return pd.concat(
        [
            words.assign(reader=r, rt=frame["rt"] + offsets[r] + rng.normal(0, 60, len(frame)))
            for r in range(n_readers)
        ],
        ignore_index=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=83, help="readers per word (NS: ~83)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    _common.quiet()
    _common.set_threads(args.threads)
    print("\n".join(_common.machine_lines()))
    ns = _common.natural_stories()
    readers = synthetic_readers(ns.frame, args.readers)
    corpus = ReadingTimeCorpus("ns_readers", ns.frame, readers=readers)
    tokenizer = _common.bpe_tokenizer(ns)
    probe = as_probe_model(_common.tiny_gpt2(tokenizer).model.eval())
    plain, mixed = PPPMeasure(corpus), PPPMeasure(corpus, mixed_effects=True)
    times = _common.interleaved(
        {
            "without": lambda: plain.measure(probe, tokenizer),
            "mixed_effects=True": lambda: mixed.measure(probe, tokenizer),
        },
        args.repeats,
        warmup=False,
    )
    ratios = [a / b for a, b in zip(times["mixed_effects=True"], times["without"], strict=True)]
    print(
        f"\n{len(readers):,} reader x word rows ({args.readers} readers x {len(ns.frame):,} words)"
    )
    for name, seconds in times.items():
        print(f"{name:>20}: " + ", ".join(f"{s:.2f} s" for s in seconds))
    ratio = _common.median_ratio(times["mixed_effects=True"], times["without"])
    print(f"ratio with ÷ without: {ratio:.1f}x (rounds {_common.spread(ratios)})")


if __name__ == "__main__":
    main()

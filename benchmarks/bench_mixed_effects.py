"""Cost of the optional mixed-effects ΔLL vs the per-word OLS ΔLL, up to Natural Stories' size.

Usage: ``.venv/bin/python benchmarks/bench_mixed_effects.py [--words 1000 10256 --repeats 2]``

Synthetic per-reader data (one row per reader × word; rt = 300 ms + 4 ms/char + 10 ms/bit of
surprisal + reader intercept (SD 40 ms) + item intercept (SD 20 ms) + noise (SD 50 ms)), stories of
500 words, 83 readers per word (Natural Stories' mean), spillover 4. Each size runs, interleaved:

- OLS: ``delta_loglik`` on the per-word means (10-fold cross-validated; what PPPMonitor runs),
- mixed: ``delta_loglik_mixed`` on the per-reader rows (two ML fits, crossed reader and item
  intercepts, in-sample; the default sparse path),

and prints the median ratio mixed / OLS and the peak memory. 10,256 words × 83 readers =
851,248 rows, Natural Stories' size (it has 848,767 reader × word rows). ``--stock-words N`` also
times the stock statsmodels ``MixedLM`` (``method="statsmodels"``) against the sparse path at
``N`` words, once (it is slow and its Hessian needs memory ∝ rows × words: keep ``N`` small).
numpy's BLAS runs on one thread unless ``OPENBLAS_NUM_THREADS`` is set (on busy cores a
multithreaded BLAS made the stock fit 3× slower).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads its BLAS

import argparse
import statistics

import _common
import numpy as np
import pandas as pd

from phasewatch.measures.delta_loglik import delta_loglik
from phasewatch.measures.delta_loglik_mixed import delta_loglik_mixed

#: Natural Stories: words, and readers per word (the mean of its ``n_readers`` is 82.8; their sum,
#: the reader × word rows, 848,767).
NS_WORDS, NS_READERS = 10_256, 83
STORY_WORDS = 500
SPILLOVER = 4


def synthetic(n_words: int, n_readers: int, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-reader rows, words) with reader and item intercepts and 10 ms/bit of surprisal."""
    rng = np.random.default_rng(seed)
    story = np.arange(n_words) // STORY_WORDS + 1
    words = pd.DataFrame({"story": story, "position": np.arange(n_words) % STORY_WORDS + 1})
    words["length"] = rng.integers(1, 12, n_words).astype(float)
    words["log_freq"] = -3 - 0.8 * words["length"] + rng.normal(0, 2, n_words)
    words["surprisal"] = 4 - 0.5 * words["log_freq"] + rng.gamma(2, 2, n_words)  # bits
    mean_rt = 300 + 4 * words["length"].to_numpy() + 10 * words["surprisal"].to_numpy()
    mean_rt += rng.normal(0, 20, n_words)  # item intercepts
    rt = (
        mean_rt[None, :]
        + rng.normal(0, 40, (n_readers, 1))
        + rng.normal(0, 50, (n_readers, n_words))
    )
    readers = pd.DataFrame(
        {
            "story": np.tile(words["story"].to_numpy(), n_readers),
            "position": np.tile(words["position"].to_numpy(), n_readers),
            "reader": np.repeat(np.arange(n_readers), n_words),
            "rt": rt.ravel(),
        }
    )
    return readers, words.assign(rt=rt.mean(0))


def run(
    *, words: list[int], readers: int = NS_READERS, repeats: int = 2, stock_words: int = 0
) -> dict:
    """Run the comparison, print it, and return the numbers."""
    rows = []
    delta_loglik(synthetic(600, 2)[1], spillover=SPILLOVER)  # imports and first-call costs
    for n_words in sorted(words):
        per_reader, per_word = synthetic(n_words, readers)
        times = _common.interleaved(
            {
                "ols": lambda pw=per_word: delta_loglik(pw, spillover=SPILLOVER),
                "mixed": lambda pr=per_reader, pw=per_word: delta_loglik_mixed(
                    pr, pw, spillover=SPILLOVER
                ),
            },
            repeats,
            warmup=False,
        )
        row = {
            "words": n_words,
            "rows": len(per_reader),
            "ols_s": statistics.median(times["ols"]),
            "mixed_s": statistics.median(times["mixed"]),
            "ratio": _common.median_ratio(times["mixed"], times["ols"]),
            "spread": _common.spread(
                [m / o for m, o in zip(times["mixed"], times["ols"], strict=True)]
            ),
            "peak_mib": (_common.proc_status_kib("VmHWM") or 0) / 1024,
        }
        rows.append(row)
        print(
            f"{n_words:>6} words × {readers} readers = {len(per_reader):>7} rows: OLS ΔLL "
            f"{row['ols_s']:.3f} s, mixed ΔLL {row['mixed_s']:.2f} s, mixed / OLS "
            f"{row['ratio']:.0f} (rounds {row['spread']}), peak memory so far "
            f"{row['peak_mib']:.0f} MiB",
            flush=True,
        )
    print(f"  largest size: {delta_loglik_mixed(per_reader, per_word, spillover=SPILLOVER)}")

    stock = None
    if stock_words:
        per_reader, per_word = synthetic(stock_words, readers)
        times = _common.interleaved(
            {
                "stock": lambda: delta_loglik_mixed(
                    per_reader, per_word, spillover=SPILLOVER, method="statsmodels"
                ),
                "sparse": lambda: delta_loglik_mixed(per_reader, per_word, spillover=SPILLOVER),
            },
            1,
            warmup=False,
        )
        stock = {
            "words": stock_words,
            "rows": len(per_reader),
            **{k: v[0] for k, v in times.items()},
        }
        print(
            f"\nstock statsmodels MixedLM at {stock_words} words ({len(per_reader):,} rows): "
            f"{stock['stock']:.1f} s vs the sparse path {stock['sparse']:.2f} s "
            f"(× {stock['stock'] / stock['sparse']:.0f}); peak memory so far "
            f"{(_common.proc_status_kib('VmHWM') or 0) / 1024:.0f} MiB"
        )

    print(
        "\n| words | reader × word rows | OLS ΔLL (s) | mixed ΔLL (s) | mixed / OLS "
        "| peak memory (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['words']:,} | {r['rows']:,} | {r['ols_s']:.3f} | {r['mixed_s']:.2f} | "
            f"{r['ratio']:.0f} | {r['peak_mib']:.0f} |"
        )
    return {"sizes": rows, "stock": stock}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, nargs="+", default=[1000, NS_WORDS])
    parser.add_argument("--readers", type=int, default=NS_READERS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--stock-words", type=int, default=250, help="0: skip the stock fit")
    args = parser.parse_args()
    _common.quiet()
    print("\n".join(_common.machine_lines()))
    print(f"numpy BLAS threads (OPENBLAS_NUM_THREADS): {os.environ['OPENBLAS_NUM_THREADS']}\n")
    run(words=args.words, readers=args.readers, repeats=args.repeats, stock_words=args.stock_words)


if __name__ == "__main__":
    main()

"""Tokenizing the corpus stories for word surprisal: the first measurement (cache empty) vs the
next ones (cache hit), all of Natural Stories (10 stories, 10,256 words), the demo's BPE (512).

Usage: ``.venv/bin/python benchmarks/bench_token_cache.py [--repeats 7]``

Each round clears the cache, then times the story tokenization of ``word_surprisal`` twice (cold,
warm) and the tokenizer fingerprint alone; medians over rounds with min–max.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    _common.quiet()

    from phasewatch.measures import token_cache
    from phasewatch.measures.surprisal import _tokenize_stories
    from phasewatch.measures.tokenization import as_text_tokenizer

    print("\n".join(_common.machine_lines()))
    corpus = _common.natural_stories()
    tokenizer = as_text_tokenizer(_common.bpe_tokenizer(corpus))
    times: dict[str, list[float]] = {"cold": [], "warm": [], "fingerprint": []}
    for _ in range(args.repeats):
        token_cache.clear_cache()
        times["cold"].append(_common.seconds(lambda: _tokenize_stories(corpus.frame, tokenizer)))
        times["warm"].append(_common.seconds(lambda: _tokenize_stories(corpus.frame, tokenizer)))
        start = time.perf_counter()
        token_cache.tokenizer_fingerprint(tokenizer)
        times["fingerprint"].append(time.perf_counter() - start)
    ms = {k: [1000 * t for t in v] for k, v in times.items()}
    parts = [
        f"{k} {statistics.median(v):.1f} ms ({min(v):.1f}–{max(v):.1f})" for k, v in ms.items()
    ]
    ratios = [w / c for w, c in zip(times["warm"], times["cold"], strict=True)]
    print(f"story tokenization, {args.repeats} rounds: " + ", ".join(parts))
    print(f"warm ÷ cold {statistics.median(ratios):.3f} ({_common.spread(ratios)})")


if __name__ == "__main__":
    main()

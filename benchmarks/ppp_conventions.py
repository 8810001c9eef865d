"""phasewatch's ΔLL vs Aoyama & Wilcox (2025), choice by choice, measured on Natural Stories.

For every choice where phasewatch's ΔLL regression differs from the paper's published code
(``by_head_analysis.R``, ``src/data/hatch.py``, ``src/data/process_data.py`` in t-aoyam/pt-and-ppp),
compute ΔLL (nats/word) both ways with one real surprisal and print a Markdown table: ΔLL ± SE
each way, and the paired difference over the words both keep (mean ± SE of
``ΔLL_i(phasewatch) − ΔLL_i(paper)``). The table goes into ``docs/ppp.md``.

Surprisal: a GPT-2 of the demo's shape (2 layers × 4 heads × 64 dims, byte-level BPE of 512)
trained from scratch on the 25 public-domain novels alone (no synthetic repeats) for ``--steps``
optimizer steps of 32 × 100 tokens, seed 0; word surprisal in bits as ``PPPMonitor`` computes it.

The paper's word frequency is ``ln(count(word.lower()) + 1)`` with counts from a WikiText-2
vocabulary file, looked up with the displayed word's punctuation attached, and length ``len(word)``
with it. WikiText-2 is not available offline here, so counts come from the novels, tokenized
WikiText-style (punctuation split off: ``england,`` never occurs as a token, so a word shown with
punctuation has count 0, as in the paper's lookup). The frequency *source* row therefore compares
wordfreq with the novels, not with WikiText-2.

Run: ``.venv/bin/python benchmarks/ppp_conventions.py`` (about 6 min on 2 busy CPU cores, mostly
training; ``--steps 400 --shuffles 20 --threads 2`` are the defaults). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import math
import re
import time
from collections import Counter

import _common
import numpy as np
import pandas as pd

from phasewatch.corpora import load
from phasewatch.demo.config import DemoConfig
from phasewatch.demo.novels import load_novels
from phasewatch.measures.baselines import add_baseline_columns
from phasewatch.measures.delta_loglik import PPPResult, delta_loglik
from phasewatch.measures.surprisal import word_surprisal

#: WikiText-style tokens: runs of letters/digits, or one other non-space character.
_WIKITEXT_TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_")


def train_surprisal_model(steps: int):
    """The demo's GPT-2 shape trained on the novels alone; returns (HF model, tokenizer, loss)."""
    import lightning as L

    L.seed_everything(0, verbose=False)
    config = DemoConfig().with_(repeat_fraction=0.0, max_steps=steps)
    data = config.data_module()
    module = config.model(data.tokenizer)
    trainer = L.Trainer(
        **config.trainer_kwargs(),
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    loss = float(trainer.callback_metrics.get("train/loss", float("nan")))
    return module.model.eval(), data.tokenizer, loss


def novel_counts() -> Counter:
    """Lowercased WikiText-style token counts over the 25 novels (the paper's count stand-in)."""
    counts: Counter = Counter()
    for novel in load_novels():
        for paragraph in novel.paragraphs:
            counts.update(_WIKITEXT_TOKEN.findall(paragraph.lower()))
    return counts


def paper_folds(used: pd.Index, index: pd.Index, rng: np.random.Generator, k: int = 10):
    """The R script's folds: shuffle the kept rows, cut into k equal consecutive chunks."""
    fold = pd.Series(0, index=index)
    shuffled = used[rng.permutation(len(used))]
    fold[shuffled] = np.minimum(np.arange(len(used)) * k // len(used), k - 1)
    return fold.to_numpy()


def paired(ours: PPPResult, theirs: PPPResult) -> tuple[float, float, int]:
    """Mean ± SE over shared words of ΔLL_i(ours) − ΔLL_i(theirs), nats/word; words shared."""
    common = ours.per_word.index.intersection(theirs.per_word.index)
    diff = ours.per_word[common] - theirs.per_word[common]
    if len(diff) < 2 or float(diff.abs().max()) == 0.0:
        return float(diff.mean()) if len(diff) else 0.0, 0.0, len(diff)
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff))), len(diff)


def fmt(r: PPPResult) -> str:
    return f"{r.mean:.4f} ± {r.se:.4f}"


def run(steps: int, shuffles: int) -> list[tuple[str, str, str, str]]:
    started = time.perf_counter()
    corpus = load("naturalstories")
    model, tokenizer, loss = train_surprisal_model(steps)
    trained = time.perf_counter()
    surprisal = word_surprisal(model, tokenizer, corpus, context_length=100)
    frame = add_baseline_columns(corpus.frame).assign(surprisal=surprisal)
    print(
        f"surprisal: GPT-2 2x4x64, BPE {len(tokenizer)}, {steps} steps on the novels "
        f"(last train loss {loss:.3f} nats/token; {trained - started:.0f} s); mean "
        f"{surprisal.mean():.2f} bits/word over {len(frame):,} words"
    )

    def fit(data: pd.DataFrame, **options) -> PPPResult:
        return delta_loglik(data, return_per_word=True, **options)

    ours = fit(frame)
    rows = []

    def add(choice: str, mine: PPPResult, paper: PPPResult | str, note: str = "") -> None:
        if isinstance(paper, str):
            rows.append((choice, fmt(mine), paper, note))
            return
        d, se, n = paired(mine, paper)
        rows.append((choice, fmt(mine), fmt(paper), f"{d:+.4f} ± {se:.4f} ({n:,} words) {note}"))

    # Spillover: phasewatch 0.1.0 meant current + 3 previous words by spillover=4.
    add("spillover 4 (now) vs current + 3 previous (0.1.0)", ours, fit(frame, spillover=3))

    # Zero responses and zero surprisals: the paper drops both.
    zero_rt, zero_s = int((frame["rt"] == 0).sum()), int((frame["surprisal"] == 0).sum())
    add(
        "rows with response 0 / surprisal 0",
        ours,
        "same rows",
        f"{zero_rt} zero-RT and {zero_s} zero-surprisal words on Natural Stories: no difference",
    )

    # Frequency and length conventions (WikiText-2 stand-in: the novels).
    counts = novel_counts()
    stripped = frame["word"].str.replace(r"^[\W_]+|[\W_]+$", "", regex=True).str.lower()
    displayed = frame["word"].str.lower()
    ln_count_stripped = np.log(stripped.map(counts).fillna(0).to_numpy(float) + 1)
    ln_count_displayed = np.log(displayed.map(counts).fillna(0).to_numpy(float) + 1)
    source = frame.assign(log_freq=ln_count_stripped)
    add("frequency source: wordfreq vs ln(count + 1) in the novels", ours, fit(source))
    punct_freq = frame.assign(log_freq=ln_count_displayed)
    add(
        "frequency lookup: punctuation stripped vs attached (novel counts)",
        fit(source),
        fit(punct_freq),
        f"({int((ln_count_displayed == 0).sum()):,} words get count 0 attached, "
        f"{int((ln_count_stripped == 0).sum()):,} stripped)",
    )
    punct_len = frame.assign(length=frame["word"].str.len())
    add("length: punctuation stripped vs counted", ours, fit(punct_len))
    paper_baseline = frame.assign(log_freq=ln_count_displayed, length=frame["word"].str.len())
    add("frequency + length, all three together", ours, fit(paper_baseline))

    # Folds: fixed per word (hash) vs the R script's shuffle-and-cut, redrawn every run.
    rng = np.random.default_rng(0)
    used = ours.per_word.index
    draws = [fit(frame, folds=paper_folds(used, frame.index, rng)) for _ in range(shuffles)]
    means = np.array([r.mean for r in draws])
    add(
        f"folds: hashed per word vs shuffled rows ({shuffles} shuffles)",
        ours,
        draws[0],
        f"(first shuffle); over {shuffles} shuffles ΔLL {means.mean():.4f}, SD "
        f"{means.std(ddof=1):.5f}, range {means.min():.4f}–{means.max():.4f}",
    )

    # Everything the paper does differently at once (frequency stand-in, one shuffle).
    their_folds = paper_folds(used, frame.index, np.random.default_rng(1))
    add("all of the above, paper's way", ours, fit(paper_baseline, folds=their_folds))
    print(f"total {time.perf_counter() - started:.0f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps of the GPT-2")
    parser.add_argument("--shuffles", type=int, default=20, help="draws of the paper's folds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: default)")
    args = parser.parse_args()
    _common.quiet()
    _common.set_threads(args.threads)
    rows = run(args.steps, args.shuffles)
    print("\n| choice | ΔLL phasewatch | ΔLL paper's way | paired difference, nats/word |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

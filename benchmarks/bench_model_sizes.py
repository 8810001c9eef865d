"""One measurement ÷ one training step, by model size (CPU): how much a monitor costs per step.

For each shape, in one process, interleaved rounds of: one training step (forward, backward and
AdamW on a batch of corpus sequences), one ``PPPMonitor`` measurement (word surprisal of the
stories plus the 10-fold ΔLL fits) and one ``AttentionMonitor`` measurement (head scores on the
repeated-random-token probe, entropy on 4 stories, syntactic score on 2 stories, at the monitor's
defaults). It prints the seconds of each (median, min–max over rounds) and each measurement's
median per-round ratio to the training step.

Shapes (random weights, seed 0):

- ``demo``: the demo's GPT-2, 2 layers × 4 heads × 64 dims, vocabulary 512, context 100;
  training batch 32 × 100 tokens (the demo's); PPP on all 10 Natural Stories stories;
- ``gpt2``: the GPT-2 small shape, 12 layers × 12 heads × 768 dims, vocabulary 50,257, context
  1,024 (124M parameters); training batch ``--gpt2-batch`` × 1,024 tokens (default 1); PPP on the
  first ``--gpt2-stories`` stories (default 1 of 10, ~1,000 words, to keep the run short: the
  surprisal pass grows with the words, so the whole corpus costs about 10 × the PPP time shown);
- ``2x768``: GPT-2 small with 2 layers (the GPU check's second shape), as ``gpt2`` otherwise.

Usage::

    .venv/bin/python benchmarks/bench_model_sizes.py [--rounds 3] [--threads 1] [--only demo 2x768]

About 1 minute for ``demo``, 2 for ``2x768`` and 5–8 for ``gpt2`` on one busy CPU core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SHAPES = ("demo", "2x768", "gpt2")


def _corpus_subset(corpus, stories: int):
    from phasewatch.corpora import ReadingTimeCorpus

    if stories >= corpus.frame["story"].nunique():
        return corpus
    keep = sorted(corpus.frame["story"].unique())[:stories]
    frame = corpus.frame[corpus.frame["story"].isin(keep)].reset_index(drop=True)
    return ReadingTimeCorpus(f"{corpus.name}[:{stories}]", frame)


def _gpt2(layers: int):
    """GPT-2 small's shape (12 heads x 768 dims, vocab 50257, context 1024) with ``layers``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=layers))


def bench_shape(shape: str, corpus, tokenizer, args) -> dict:
    from phasewatch.measures.ppp_corpora import CorporaPPP
    from phasewatch.measures.snapshot import HeadMeasure
    from phasewatch.measures.tokenization import as_text_tokenizer
    from phasewatch.models import as_probe_model

    if shape == "demo":
        config = common.demo_config()
        model = common.tiny_gpt2(tokenizer).model
        batch, length, stories = config.batch_size, config.context_length, args.demo_stories
    else:
        model = _gpt2(12 if shape == "gpt2" else 2)
        batch, length, stories = args.gpt2_batch, 1024, args.gpt2_stories
    sequences = common.training_sequences(corpus, tokenizer, batch, length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    probe, text = as_probe_model(model), as_text_tokenizer(tokenizer)
    ppp = CorporaPPP([_corpus_subset(corpus, stories)], folds=10)
    heads = HeadMeasure(corpus=corpus, dependencies=corpus.dependencies)  # the monitor's defaults

    def train_step() -> None:
        model.train()
        loss = model(input_ids=sequences, labels=sequences).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times = common.interleaved(
        {
            "train step": train_step,
            "PPPMonitor": lambda: ppp.measure(probe, text),
            "AttentionMonitor": lambda: heads.measure(probe, text),
        },
        args.rounds,
    )
    params = sum(p.numel() for p in model.parameters()) / 1e6
    words = int(_corpus_subset(corpus, stories).frame.shape[0])
    return {
        "shape": shape,
        "params_m": params,
        "batch": f"{batch} x {length}",
        "words": words,
        "times": times,
    }


def report(result: dict) -> list[str]:
    times = result["times"]
    step = times["train step"]
    lines = [
        f"{result['shape']}: {result['params_m']:.1f}M parameters, training batch "
        f"{result['batch']} tokens, PPP on {result['words']} words"
    ]
    for name, values in times.items():
        line = f"  {name:17s} {statistics.median(values):8.3f} s (rounds {common.spread(values)} s)"
        if name != "train step":
            ratios = [a / b for a, b in zip(values, step, strict=True)]
            line += (
                f"  ÷ train step {common.median_ratio(values, step):6.2f} ({common.spread(ratios)})"
            )
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--only", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--demo-stories", type=int, default=10, help="PPP stories, demo shape")
    parser.add_argument("--gpt2-stories", type=int, default=1, help="PPP stories, GPT-2 shapes")
    parser.add_argument("--gpt2-batch", type=int, default=1, help="sequences of 1024, GPT-2 shapes")
    args = parser.parse_args(argv)
    common.quiet()
    common.set_threads(args.threads)
    for line in common.machine_lines():
        print(line)
    corpus = common.natural_stories()
    tokenizer = common.bpe_tokenizer(corpus)
    print(f"rounds: {args.rounds}, interleaved (train step, PPPMonitor, AttentionMonitor)")
    for shape in args.only:
        for line in report(bench_shape(shape, corpus, tokenizer, args)):
            print(line, flush=True)


if __name__ == "__main__":
    main()

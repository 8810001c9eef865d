"""Cost per training step of the copying regularizer: a separate pass vs sharing the forward pass.

Usage: ``.venv/bin/python benchmarks/bench_regularizer.py [--steps 5 --repeats 5 --threads 1]``

The demo's model (GPT-2, 2 layers × 4 heads × 64 dims, vocab 512) takes AdamW steps on a batch of
32 × 100 random token ids (cost does not depend on the ids), three ways, interleaved in one
process (A, B, C, A, B, C, ...), each from the same initial weights:

- A, plain: ``loss = LM loss``; backward; step.
- B, separate pass (what :class:`~phasewatch.control.CopyingRegularizer` does): A's loss
  ``+ λ · penalty`` where the penalty comes from its own forward pass, eager attention, on a
  regularization batch of 8 tiled random spans × 100 tokens (drawing the batch included).
- C, shared pass (the paper's way, offered through the functions): one eager forward with
  ``output_attentions`` of the 32 training rows and the 8 regularization rows concatenated; LM loss
  on the first 32 rows, penalty on the last 8.

Prints seconds per step (median over rounds of ``--steps`` steps) and the ratios B ÷ A and C ÷ A
(median of per-round ratios, with their min–max spread).

``--syntactic`` instead times the syntactic regularizer: A (plain) against
:class:`~phasewatch.control.SyntacticRegularizer`'s separate eager pass on the same batch, on
batches of 16 Natural Stories windows of ≤ 100 tokens that carry their arcs
(:class:`~phasewatch.control.ArcWindows`, the demo tokenizer).

``--conventions`` instead compares this penalty with the paper's span-based form on the synthetic
recipe's shape (TinyLM 256 vocab, 2 × 4 × 64, random init, seed 0) over the regularizer's first
three batches of 8 × 100: mask entries, the share of key 0 in the paper's sum, and the values.
"""

from __future__ import annotations

import argparse
import copy

import _common
import torch
import torch.nn.functional as F

from phasewatch.control import CopyingRegularizer, copying_penalty, tiled_random_spans
from phasewatch.models._huggingface import eager_attention, no_new_hooks

TRAIN_BATCH, REG_BATCH, LENGTH, LAMBDA = 32, 8, 100, 1.0


def conventions() -> None:
    """This penalty vs the paper's span-based mask (key ``j = i + 1 - m·span``, ``j <= i``)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from phasewatch.control import attentions_with_grad, copying_mask

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=256, n_layer=2, n_head=4, n_embd=64, n_positions=128)
    model = GPT2LMHeadModel(config).eval()
    regularizer = CopyingRegularizer(1.0, length=LENGTH, batch_size=REG_BATCH)
    i, j = torch.arange(LENGTH)[:, None], torch.arange(LENGTH)[None, :]
    for trial in range(3):
        ids = regularizer.regularization_batch(model)
        spans = [next(p for p in range(20, 51) if torch.equal(r[p:], r[:-p])) for r in ids]
        with torch.no_grad():
            atts = attentions_with_grad(model, ids)
        top = torch.stack(atts, 1).amax(dim=(1, 2))
        paper = torch.stack([((i + 1 - j) % s == 0) & (j <= i) for s in spans])
        mine = copying_mask(ids)
        queries = int(mine.any(2).sum())
        paper_sum = float((top * paper).sum())
        key0 = float((top * (paper & (j == 0))).sum())
        print(
            f"batch {trial}: entries here {int(mine.sum())}, paper {int(paper.sum())}, both "
            f"{int((mine & paper).sum())}; |Q| {queries}; penalty here "
            f"{float(copying_penalty(atts, ids)):.4f}, paper sum ÷ |Q| {paper_sum / queries:.4f}; "
            f"key 0 share of the paper's sum {key0 / paper_sum:.3f}"
        )


def syntactic(steps: int, repeats: int) -> None:
    """Plain step vs step + λ·syntactic penalty (its own eager pass on the training batch)."""
    from phasewatch.control import ArcWindows, SyntacticRegularizer

    corpus = _common.natural_stories()
    tokenizer = _common.bpe_tokenizer(corpus)
    windows = ArcWindows(corpus, tokenizer, max_tokens=LENGTH, stories=[1, 2])
    batch = ArcWindows.collate([windows[i] for i in range(16)])
    torch.manual_seed(0)
    base = _common.tiny_gpt2(tokenizer).model
    models = {name: copy.deepcopy(base).train() for name in ("plain", "syntactic")}
    optims = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    regularizer = SyntacticRegularizer(LAMBDA, mode="promote")
    ids = batch["input_ids"]

    def run(name: str) -> None:
        model = models[name]
        for _ in range(steps):
            loss = model(input_ids=ids, labels=batch["labels"]).loss
            if name == "syntactic":
                loss = loss + LAMBDA * regularizer.penalty(model, batch)
            optims[name].zero_grad(set_to_none=True)
            loss.backward()
            optims[name].step()

    times = _common.interleaved(
        {"plain": lambda: run("plain"), "syntactic": lambda: run("syntactic")}, max(repeats, 3)
    )
    for line in _common.machine_lines():
        print(line)
    print(f"batch {tuple(ids.shape)} of Natural Stories windows with arcs; {steps} steps/round")
    for name, values in times.items():
        per_step = sorted(v / steps for v in values)
        print(f"{name:>9}: {1000 * per_step[len(per_step) // 2]:.1f} ms/step (median)")
    ratios = [a / b for a, b in zip(times["syntactic"], times["plain"], strict=True)]
    print(
        f"syntactic ÷ plain: {_common.median_ratio(times['syntactic'], times['plain']):.3f} "
        f"(spread {_common.spread(ratios)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (>= 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--conventions", action="store_true", help="compare with the paper's mask")
    parser.add_argument("--syntactic", action="store_true", help="time the syntactic regularizer")
    args = parser.parse_args()
    _common.quiet()
    _common.set_threads(args.threads)
    if args.conventions:
        conventions()
        return
    if args.syntactic:
        syntactic(args.steps, args.repeats)
        return

    torch.manual_seed(0)
    base = _common.tiny_gpt2().model
    vocab = base.config.vocab_size
    ids = torch.randint(0, vocab, (TRAIN_BATCH, LENGTH), generator=torch.Generator().manual_seed(1))
    models = {name: copy.deepcopy(base).train() for name in ("plain", "separate", "shared")}
    optims = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    regularizer = CopyingRegularizer(LAMBDA, batch_size=REG_BATCH, length=LENGTH)
    shared_gen = torch.Generator().manual_seed(2)

    def step(name, loss):
        optims[name].zero_grad(set_to_none=True)
        loss.backward()
        optims[name].step()

    def plain():
        for _ in range(args.steps):
            step("plain", models["plain"](input_ids=ids, labels=ids).loss)

    def separate():
        model = models["separate"]
        for _ in range(args.steps):
            loss = model(input_ids=ids, labels=ids).loss
            step("separate", loss + LAMBDA * regularizer.penalty(model, None))

    def shared():
        model = models["shared"]
        for _ in range(args.steps):
            reg = tiled_random_spans(REG_BATCH, LENGTH, vocab, regularizer.span, shared_gen)
            both = torch.cat([ids, reg])
            with no_new_hooks(model), eager_attention(model):
                out = model(input_ids=both, output_attentions=True, use_cache=False)
            logits = out.logits[:TRAIN_BATCH, :-1]
            lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
            penalty = copying_penalty([a[TRAIN_BATCH:] for a in out.attentions], reg)
            step("shared", lm + LAMBDA * penalty)

    times = _common.interleaved(
        {"plain": plain, "separate": separate, "shared": shared}, max(args.repeats, 3)
    )
    for line in _common.machine_lines():
        print(line)
    print(
        f"batch {TRAIN_BATCH} × {LENGTH} tokens, regularization batch {REG_BATCH} × {LENGTH}; "
        f"{args.steps} steps × {max(args.repeats, 3)} rounds"
    )
    for name, values in times.items():
        per_step = sorted(v / args.steps for v in values)
        print(f"{name:>8}: {1000 * per_step[len(per_step) // 2]:.1f} ms/step (median)")
    for name in ("separate", "shared"):
        ratios = [a / b for a, b in zip(times[name], times["plain"], strict=True)]
        print(
            f"{name} ÷ plain: {_common.median_ratio(times[name], times['plain']):.3f} "
            f"(spread {_common.spread(ratios)})"
        )


if __name__ == "__main__":
    main()

"""SAS and the best single head by phasewatch's prediction rule and by the paper's, in training.

phasewatch predicts a dependent's head with the gold direction known (``rule="directed"``:
outgoing attention for a head on the left, incoming for one on the right, never the dependent
itself); the published code of Aoyama & Wilcox (2025) takes one argmax over the outgoing row and
the incoming column together, the dependent included (``rule="undirected"``, their unscaled
variant, the one their figures read). This script trains a GPT-2 from scratch on the 25 novels
(no synthetic repeats) and, at the given steps, prints ``heads/sas`` and ``heads/syntactic_max``
on all of Natural Stories under both rules as a Markdown table (docs/measures/syntactic.md).

Run: ``python benchmarks/sas_conventions.py --device cuda`` (2 layers × 12 heads × 768 dims,
batches of 32 × 256, bf16; about 2 minutes on one H200). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import _common
import torch

from phasewatch.corpora import load
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.demo.config import DemoConfig
from phasewatch.measures.syntactic import syntactic_scores

RULES = ("directed", "undirected")


def measure(model, tokenizer, corpus, dependencies, window: int) -> dict[str, tuple[float, float]]:
    """Rule → (SAS, best single head's accuracy), both fractions of all scored arcs."""
    model.eval()
    out = {}
    for rule in RULES:
        result = syntactic_scores(
            model, tokenizer, corpus, dependencies, max_tokens=window, batch_size=16, rule=rule
        )
        out[rule] = (result.sas, float(result.per_head.max()))
    model.train()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 100, 250, 500, 1000, 2000])
    parser.add_argument("--n-embd", type=int, default=768)
    parser.add_argument("--n-head", type=int, default=12)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--context", type=int, default=256)
    args = parser.parse_args()
    _common.quiet()
    torch.manual_seed(0)
    config = DemoConfig().with_(
        repeat_fraction=0.0,
        vocab_size=args.vocab_size,
        n_head=args.n_head,
        n_embd=args.n_embd,
        n_inner=4 * args.n_embd,
        context_length=args.context,
        learning_rate=6e-4,
        warmup_steps=300,
        max_steps=max(args.steps),
    )
    data = config.data_module()
    data.prepare_data()
    data.setup("fit")
    tokenizer = data.tokenizer
    module = config.model(tokenizer).to(args.device)
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    corpus, dependencies = load("naturalstories"), load_dependencies()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if args.device.startswith("cuda")
        else contextlib.nullcontext()
    )
    print(f"GPT-2 {config.n_layer}x{args.n_head}x{args.n_embd}, BPE {len(tokenizer)}, ")
    print(f"batches {config.batch_size}x{args.context}, novels only, device {args.device}\n")
    print(
        "| step | tokens | SAS directed | best head directed | SAS undirected (paper) | "
        "best head undirected |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    started, step = time.perf_counter(), 0
    wanted = sorted(set(args.steps))
    while wanted:
        for batch in data.train_dataloader():
            if step == wanted[0]:
                scores = measure(module.model, tokenizer, corpus, dependencies, args.context)
                cells = [f"{scores[r][0]:.3f} | {scores[r][1]:.3f}" for r in RULES]
                tokens = step * config.tokens_per_step
                print(f"| {step} | {tokens / 1e6:.1f}M | {' | '.join(cells)} |", flush=True)
                wanted.pop(0)
                if not wanted:
                    break
            ids = batch["input_ids"].to(args.device)
            with autocast:
                loss = module._sequence_losses(ids).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.gradient_clip_val)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
    print(f"\nlast train loss {float(loss):.3f} nats/token; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

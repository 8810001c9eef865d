"""How the head-score probe's length changes the scores: seq_len 50 (the paper's) vs 32.

A model whose context is shorter than 100 positions gets ``seq_len = max_length // 2`` by default
(64 positions: 32). This prints, for a 128-position tiny GPT-2 untrained and trained for 1000
steps on repeated random sequences of 2 x 64 tokens (every position trained), the max score of
each kind with both probe lengths, and the uniform-attention floor
``(1/n) sum_{s=n}^{2n-1} 1/(s+1)``. (No induction head formed in the recorded run: see
docs/callbacks.md, "AttentionMonitor and the model's context".)

    .venv/bin/python benchmarks/seq_len_effect.py     # ~1 min on 2 CPU cores
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from phasewatch.measures import all_head_scores


def floor(n: int) -> float:
    return sum(1 / (s + 1) for s in range(n, 2 * n)) / n


def train_on_repeats(model: GPT2LMHeadModel, steps: int, vocab: int) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        half = torch.randint(0, vocab, (16, 64), generator=g)  # every position trained
        ids = torch.cat([half, half], dim=1)
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    vocab = 256
    config = GPT2Config(vocab_size=vocab, n_layer=2, n_head=4, n_embd=64, n_positions=128)
    model = GPT2LMHeadModel(config)
    print(f"uniform floor: n=50 {floor(50):.4f}, n=32 {floor(32):.4f}")
    for label, steps in (("untrained", 0), ("trained 1000 steps", 1000)):
        train_on_repeats(model, steps, vocab)
        by_n = {n: all_head_scores(model, seq_len=n, batch_size=32) for n in (50, 32)}
        row = ", ".join(
            f"{kind} {float(by_n[50][kind].max()):.4f} (n=50) / {float(by_n[32][kind].max()):.4f}"
            " (n=32)"
            for kind in by_n[50]
        )
        print(f"{label}: {row}")


if __name__ == "__main__":
    main()

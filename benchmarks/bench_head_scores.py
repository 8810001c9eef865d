"""Cost of one ``all_head_scores`` evaluation vs the bare forward pass with attentions.

Usage: ``.venv/bin/python benchmarks/bench_head_scores.py [--layers 4 --heads 4 --width 256 ...]``

Times (median of ``--repeats`` rounds after one warm-up, same probe batch for all):

- bare: ``model.transformer(ids, output_attentions=True)`` under no_grad on a model already on
  eager attention — the least any attention-based measure must pay;
- all_head_scores (prebuilt probe): the three scores from the SDPA model, including the switch to
  eager and back, hook clean-up and the reductions;
- all_head_scores (sampling): the same plus drawing the probe tokens.

The three run in turn in each round; a ratio is the median over rounds of (time / bare time).

Memory: the attention tensors of one probe, ``L·B·H·T²·4`` bytes, and on CUDA the measured peak
above the model's own memory.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from phasewatch.measures.head_scores import all_head_scores, repeated_token_probe


def seconds(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def interleaved_medians(fns: dict, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Run each function once per round, in turn (so load on a shared machine hits all alike)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds(fn, device))
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=args.layers,
        n_head=args.heads,
        n_embd=args.width,
        vocab_size=args.vocab,
        n_positions=max(1024, 2 * args.seq_len),
    )
    model = GPT2LMHeadModel(config).to(device).train()
    eager = GPT2LMHeadModel(config).to(device).eval()
    eager.load_state_dict(model.state_dict())
    eager.set_attn_implementation("eager")
    probe = repeated_token_probe(
        args.vocab, seq_len=args.seq_len, batch_size=args.batch_size, seed=0
    )
    ids = probe.input_ids.to(device)

    def bare() -> None:
        with torch.no_grad():
            eager.transformer(ids, output_attentions=True, use_cache=False)

    def scores_prebuilt() -> None:
        all_head_scores(model, probe=probe)

    def scores_sampling() -> None:
        all_head_scores(model, seq_len=args.seq_len, batch_size=args.batch_size, seed=0)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        scores_prebuilt()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - baseline

    times = interleaved_medians(
        {"bare": bare, "prebuilt": scores_prebuilt, "sampling": scores_sampling},
        args.repeats,
        device,
    )
    t_bare = statistics.median(times["bare"])
    ratio = {
        name: statistics.median(t / b for t, b in zip(times[name], times["bare"], strict=True))
        for name in ("prebuilt", "sampling")
    }
    tokens = probe.input_ids.shape[1]
    attention_bytes = args.layers * args.batch_size * args.heads * tokens**2 * 4

    print(
        f"GPT-2 {args.layers} layers × {args.heads} heads × {args.width} wide, vocab {args.vocab}; "
        f"probe {args.batch_size} × {tokens} tokens; {device} ({torch.get_num_threads()} threads); "
        f"median of {args.repeats} rounds"
    )
    labels = {
        "prebuilt": "all_head_scores, prebuilt probe (sdpa):",
        "sampling": "all_head_scores, sampling the probe:",
    }
    print(f"{'bare forward with attentions (eager):':42}{t_bare * 1e3:9.2f} ms")
    for name, label in labels.items():
        milliseconds = statistics.median(times[name]) * 1e3
        print(f"{label:42}{milliseconds:9.2f} ms  ratio {ratio[name]:.3f}")
    print(f"attention probabilities held: {attention_bytes / 2**20:.1f} MiB (L·B·H·T²·4 bytes)")
    if device.type == "cuda":
        print(f"measured peak extra CUDA memory: {peak / 2**20:.1f} MiB")
    return {
        "bare_ms": t_bare * 1e3,
        "ms": {name: statistics.median(times[name]) * 1e3 for name in labels},
        "ratio": ratio,
        "attention_mib": attention_bytes / 2**20,
        "repeats": args.repeats,
    }


if __name__ == "__main__":
    main()

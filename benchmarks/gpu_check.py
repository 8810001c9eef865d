"""GPU check of the sharded measurement path: FSDP training with PPPMonitor and AttentionMonitor.

For two GPT-2 shapes with random weights — the 124M GPT-2 small (12 layers × 12 heads × 768,
vocabulary 50,257, context 1,024) and a 2-layer × 768 one — it trains ``STEPS`` steps of
``--batch`` × 1,024 tokens with both monitors (``strict=True``; measured at steps 0, 4 and 8) and
prints whether every measurement succeeded, and one measurement's time (the training-loop
iteration that measured, minus the median of those that did not) ÷ one training step.

Strategy: with 2 or more GPUs, Lightning's ``ModelParallelStrategy`` on 2 of them, the model
sharded with FSDP2 (``fully_shard`` per block), so the monitors take the sharded path (every rank
joins rank zero's passes; ``--strategy fsdp`` uses ``FSDPStrategy``, FSDP1, instead). With one
GPU, Lightning's ``FSDPStrategy`` on it (world size 1: nothing is sharded across ranks, so this
checks the monitors under an FSDP-wrapped model only). Two processes on one GPU are not possible
with NCCL (one GPU per rank).

Usage (about 2–4 minutes on one H200)::

    .venv/bin/python benchmarks/gpu_check.py [--batch 8] [--strategy modelparallel|fsdp]

Without a GPU it prints ``no GPU available`` and exits with status 0. The corpus comes from
``$PHASEWATCH_DATA`` (else ``../shared/corpora`` beside the repository, as for the benchmarks):
copy it along to a GPU machine without internet.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

STEPS = 9
MEASURE_AT = [0, 4, 8]
SHAPES = {"gpt2-124M": 12, "gpt2-2x768": 2}  # name -> layers (12 heads x 768 dims each)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="sequences of 1024 tokens per step")
    parser.add_argument("--strategy", choices=("modelparallel", "fsdp"), default="modelparallel")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU available: gpu_check.py needs CUDA; nothing was run")
        return 0
    return run(args)


def run(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as common
    import lightning as L
    from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy
    from torch.distributed.fsdp import fully_shard
    from transformers import GPT2Config, GPT2LMHeadModel

    from phasewatch.callbacks import AttentionMonitor, PPPMonitor

    common.quiet()
    corpus = common.natural_stories()
    tokenizer = common.bpe_tokenizer(corpus)
    gpus = torch.cuda.device_count()
    devices = 2 if gpus >= 2 else 1
    sequences = common.training_sequences(corpus, tokenizer, 64 * args.batch, 1024)

    class LM(L.LightningModule):
        def __init__(self, layers: int) -> None:
            super().__init__()
            self.tokenizer = tokenizer
            torch.manual_seed(0)
            self.model = GPT2LMHeadModel(GPT2Config(n_layer=layers))

        def configure_model(self) -> None:
            if isinstance(self.trainer.strategy, ModelParallelStrategy):
                mesh = self.device_mesh["data_parallel"]
                for block in self.model.transformer.h:
                    fully_shard(block, mesh=mesh)
                fully_shard(self.model, mesh=mesh)

        def training_step(self, batch, batch_idx):
            (ids,) = batch
            return self.model(input_ids=ids, labels=ids).loss

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-4)

    class LoopTimer(L.Callback):
        """Seconds of each training-loop iteration, callbacks included (first in the list)."""

        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module) -> None:
            torch.cuda.synchronize()
            self.starts.append(time.perf_counter())

    if devices == 2:
        name = args.strategy
        strategy = (
            ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)
            if name == "modelparallel"
            else FSDPStrategy()
        )
    else:
        name, strategy = "fsdp (1 GPU)", FSDPStrategy()
    ok, first_strategy = True, copy.deepcopy(strategy)
    for shape, layers in SHAPES.items():
        timer = LoopTimer()
        monitors = [
            PPPMonitor(steps=MEASURE_AT, strict=True),
            AttentionMonitor(steps=MEASURE_AT, strict=True),
        ]
        trainer = L.Trainer(
            accelerator="gpu",
            devices=devices,
            strategy=strategy if shape == "gpt2-124M" else copy.deepcopy(first_strategy),
            max_steps=STEPS,
            callbacks=[timer, *monitors],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(sequences), batch_size=args.batch
        )
        trainer.fit(LM(layers), loader)
        if not trainer.is_global_zero:
            continue
        counts = {type(m).__name__: len(next(iter(m.history.values()), [])) for m in monitors}
        failures = {type(m).__name__: m.failures for m in monitors}
        measured = all(n == len(MEASURE_AT) for n in counts.values())
        ok = ok and measured and not any(failures.values())
        loop = [b - a for a, b in zip(timer.starts, timer.starts[1:], strict=False)]
        with_measure = [loop[s - 1] for s in MEASURE_AT[1:]]  # step s is measured in batch s-1
        plain = [t for i, t in enumerate(loop) if i > 0 and i + 1 not in MEASURE_AT]
        step = statistics.median(plain)
        cost = [t - step for t in with_measure]
        print(
            f"{shape} ({layers} layers x 768, {name}, {devices} GPU, batch {args.batch} x 1024): "
            f"measurements {'succeeded' if measured else 'MISSING'} {counts}, failures "
            f"{failures}; one training step {step:.3f} s; one measurement (both monitors) "
            f"{statistics.median(cost):.3f} s = {statistics.median(cost) / step:.2f} training "
            f"steps (measurements at steps {MEASURE_AT[1:]}: "
            f"{', '.join(f'{c:.3f}' for c in cost)} s)",
            flush=True,
        )
    if trainer.is_global_zero:
        print("gpu_check: OK" if ok else "gpu_check: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

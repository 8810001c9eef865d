"""A small run with PPPMonitor and AttentionMonitor on a model sharded by FSDP2 over 2 CPU ranks.

Lightning's ``ModelParallelStrategy`` with ``accelerator="cpu"`` (gloo) and ``fully_shard`` on each
GPT-2 block and on the model, in ``configure_model``: every parameter is a DTensor holding half of
it, so a forward pass needs both ranks. Used by ``tests/test_sharded_measure.py`` as a script
(the strategy's launcher starts rank 1 by running this file again):

    python tests/sharded_run.py ROOT TOKENIZER_DIR

Every rank writes ``rank<r>.json`` (each monitor's history and failures); rank 0 writes the full
weights at each measured step, ``weights<step>.pt``, gathered from the shards, so that the test
can measure them again unsharded.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lightning_helpers import TinyLM, random_token_loader

from phasewatch.callbacks import AttentionMonitor, PPPMonitor
from phasewatch.corpora import ReadingTimeCorpus, load

STEPS = 2
MEASURE_AT = [0, 2]
MONITORS = ("PPPMonitor", "AttentionMonitor")
#: seconds before a hung run dumps its stacks and exits (a run takes ~20 s alone on 2 cores)
HANG_S = int(os.environ.get("PHASEWATCH_TEST_HANG_S", "240"))


class ShardedLM(TinyLM):
    """TinyLM whose GPT-2 blocks and model are sharded over the ranks by FSDP2."""

    def configure_model(self) -> None:
        mesh = self.device_mesh["tensor_parallel"]  # both ranks: data_parallel=1 on one node
        for block in self.model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(self.model, mesh=mesh)


def full_weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict, gathered from the shards (a collective: every rank calls it)."""
    return {
        k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().clone()
        for k, v in module.state_dict().items()
    }


class DumpPerRank(L.Callback):
    """The weights at each measured step (rank 0 saves) and each rank's histories at the end."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def _weights(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        weights = full_weights(pl_module.model)
        if trainer.is_global_zero:
            torch.save(weights, self.folder / f"weights{trainer.global_step}.pt")

    def on_train_start(self, trainer, pl_module) -> None:  # before the monitors measure step 0
        self._weights(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._weights(trainer, pl_module)
        by_type = {type(cb).__name__: cb for cb in trainer.callbacks}
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "step": trainer.global_step,
            "sharded": type(next(pl_module.model.parameters())).__name__,
            "history": {name: by_type[name].history for name in MONITORS},
            "failures": {name: by_type[name].failures for name in MONITORS},
        }
        path = self.folder / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record, sort_keys=True))


def one_story_corpus() -> ReadingTimeCorpus:
    corpus = load("naturalstories")
    frame = corpus.frame[corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


def monitors() -> list[L.Callback]:
    """The monitors of the run (also what the test measures again, unsharded)."""
    return [
        PPPMonitor(one_story_corpus(), steps=MEASURE_AT, folds=5, strict=True),
        AttentionMonitor(
            steps=MEASURE_AT, probe_batch=4, entropy_stories=1, syntactic=False, strict=True
        ),
    ]


def fit(root: str, tokenizer) -> None:
    torch.manual_seed(0)
    module = ShardedLM(vocab_size=len(tokenizer), tokenizer=tokenizer)
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(),
        callbacks=[DumpPerRank(root), *monitors()],
        logger=False,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, random_token_loader(len(tokenizer)))


if __name__ == "__main__":
    from transformers import PreTrainedTokenizerFast

    # a hang (a pass one rank never joins) fails with every thread's stack instead of waiting
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    torch.set_num_threads(1)
    root, tokenizer_dir = sys.argv[1:3]
    fit(root, PreTrainedTokenizerFast.from_pretrained(tokenizer_dir))
    if dist.is_initialized():  # a gloo group left to interpreter exit can abort the process
        dist.destroy_process_group()

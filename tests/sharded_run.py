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


def exit_now() -> None:
    """End this worker here, its results written: skip interpreter finalization.

    A gloo worker sometimes aborted in finalization ("terminate called without an active
    exception", SIGABRT) after its work was done and its process group destroyed (1 CI run in 2);
    the launcher then failed a run whose results were complete. Only reached on success: an
    exception never gets here and keeps its exit code.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    from transformers import PreTrainedTokenizerFast

    # a hang (a pass one rank never joins) fails with every thread's stack instead of waiting
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    torch.set_num_threads(1)
    root, tokenizer_dir = sys.argv[1:3]
    fit(root, PreTrainedTokenizerFast.from_pretrained(tokenizer_dir))
    if dist.is_initialized():  # a gloo group left to interpreter exit can abort the process
        dist.destroy_process_group()
    exit_now()


# -- FSDP1 (Lightning's FSDPStrategy refuses CPU): the collective logic on 2 spawned processes ----

FSDP1_IDS = torch.arange(40).view(2, 20) % 97  # the logits probe of the FSDP1 check
FSDP1_WRAPPINGS = ("root", "per-block")


class Box(torch.nn.Module):
    """What Lightning's ``FSDPStrategy`` wraps: a module holding the GPT-2 as ``.model``."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=97, n_positions=64)
        self.model = GPT2LMHeadModel(config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, labels=ids).loss


def fsdp1_values(model: torch.nn.Module) -> dict[str, float]:
    """What the FSDP1 check measures: rank zero's led probe inside, the plain one outside."""
    from phasewatch.callbacks import sharding
    from phasewatch.measures.snapshot import HeadMeasure
    from phasewatch.models import as_probe_model

    probe = sharding.led(as_probe_model(model))
    scores = HeadMeasure(probe_batch=2, seed=0, entropy_stories=0, syntactic_stories=0)
    scalars, _ = scores.measure(probe, None)
    logits = probe.logits(FSDP1_IDS)
    return {
        **scalars,
        "logits_sum": float(logits.double().sum()),
        "logits_0": float(logits[0, 0, 0]),
    }


def fsdp1_worker(rank: int, world: int, root: str, port: int, gather: bool) -> None:
    """One rank, for each wrapping (FSDP1 unit of the whole Box as Lightning's ``FSDPStrategy``
    makes by default, then one unit per GPT-2 block too): train one step on this rank's data,
    measure on the sharded path (``gather``: with FSDP1's parameters gathered around it, as
    ``PhasewatchMonitor`` does), write ``<wrapping>-rank<r>.json`` (rank zero's result or its
    traceback); rank zero saves the full weights after the step, ``<wrapping>-weights.pt``."""
    import os

    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    from phasewatch.callbacks import sharding

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)

    def broadcast(obj):
        box_ = [obj]
        dist.broadcast_object_list(box_, src=0)
        return box_[0]

    for wrapping in FSDP1_WRAPPINGS:
        torch.manual_seed(0)
        box = Box()
        nested = {"auto_wrap_policy": ModuleWrapPolicy({GPT2Block})} if wrapping != "root" else {}
        wrapper = FSDP(box, device_id=torch.device("cpu"), use_orig_params=True, **nested)
        optimizer = torch.optim.AdamW(wrapper.parameters(), lr=1e-2)
        data = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(rank))
        wrapper(data).backward()
        optimizer.step()
        payload = sharding.measure_led_by_rank_zero(
            lambda box=box: fsdp1_values(box),
            lambda box=box: as_probe(box),
            is_zero=rank == 0,
            broadcast=broadcast,
            wrapper=wrapper if gather else None,
        )
        payload = broadcast(payload)
        (Path(root) / f"{wrapping}-rank{rank}.json").write_text(json.dumps(payload))
        with FSDP.summon_full_params(wrapper, writeback=False):
            weights = {
                k.replace("_fsdp_wrapped_module.", ""): v.detach().clone()
                for k, v in box.model.state_dict().items()
            }
        if rank == 0:
            torch.save(weights, Path(root) / f"{wrapping}-weights.pt")
    dist.destroy_process_group()
    exit_now()


def as_probe(module: torch.nn.Module):
    from phasewatch.models import as_probe_model

    return as_probe_model(module)

"""One small run with every real phasewatch monitor, on 1 process or 2 (``ddp``/``ddp_spawn``).

Used in-process by ``tests/test_ddp_monitors.py`` (single process and ``ddp_spawn``) and as a
script for ``ddp``, whose launcher starts rank 1 by running this file again:

    python tests/ddp_run.py ROOT TOKENIZER_DIR STRATEGY

The runs train identically: 2 ranks × ``BATCH`` sequences per step (rank 0 gets the even
sequences, rank 1 the odd ones, in order: Lightning's own distributed sampler would shuffle them)
equal 1 process × ``2 · BATCH`` (the gradient of a mean over equal halves is the mean of their
gradients). Every rank writes
``rank<r>.json``: each monitor's history, the transition events and the checkpoints it saved.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lightning_helpers import ExitCleanDDP, TinyLM, end_process_now

from phasewatch.callbacks import (
    AttentionMonitor,
    PeakMonitor,
    PPPMonitor,
    TransitionMonitor,
)
from phasewatch.corpora import ReadingTimeCorpus, load

BATCH = 4  # sequences per rank and step
LENGTH = 64  # tokens per sequence
STEPS = 8
MEASURE_AT = [0, 2, 4, 6, 8]
MONITORS = ("PPPMonitor", "AttentionMonitor")


class DumpPerRank(L.Callback):
    """At the end of training, write what this rank's phasewatch callbacks hold."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        by_type = {type(cb).__name__: cb for cb in trainer.callbacks}
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "step": trainer.global_step,
            "history": {name: by_type[name].history for name in MONITORS},
            "failures": {name: by_type[name].failures for name in MONITORS},
            "tokens": {name: by_type[name].tokens_seen for name in MONITORS},
            "transitions": [e.to_dict() for e in by_type["TransitionMonitor"].events],
            "transition_checkpoints": by_type["TransitionMonitor"].checkpoints,
            "peak": by_type["PeakMonitor"].tracker.state_dict(),
        }
        path = Path(self.folder) / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record, sort_keys=True))


class Interleaved(Sampler):
    """Sequence ``rank``, ``rank + world``, ... in order; rank and world read when iterated."""

    def __init__(self, n: int) -> None:
        self.n = n

    def _rank_world(self) -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self):
        rank, world = self._rank_world()
        return iter(range(rank, self.n, world))

    def __len__(self) -> int:
        return self.n // self._rank_world()[1]


def one_story_corpus() -> ReadingTimeCorpus:
    corpus = load("naturalstories")
    frame = corpus.frame[corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


def _strategy(name: str) -> ExitCleanDDP:
    """``ddp`` or ``ddp_spawn`` that destroys the process group at exit (see ExitCleanDDP)."""
    if name not in ("ddp", "ddp_spawn"):
        raise ValueError(f"strategy must be 'ddp' or 'ddp_spawn', got {name!r}")
    return ExitCleanDDP(start_method="spawn" if name == "ddp_spawn" else "popen")


def fit(root: str | Path, tokenizer, strategy: str | None) -> None:
    """Train ``STEPS`` steps with the four monitors; ``strategy=None``: one process."""
    corpus = one_story_corpus()
    ids = torch.tensor(tokenizer(" ".join(corpus.texts.values()))["input_ids"])
    devices = 1 if strategy is None else 2
    sequences = 2 * BATCH * STEPS  # the same sequences, in the same order, either way
    chunks = ids.repeat(4)[: sequences * LENGTH].view(sequences, LENGTH)
    loader = DataLoader(
        TensorDataset(chunks), batch_size=2 * BATCH // devices, sampler=Interleaved(sequences)
    )
    torch.manual_seed(0)
    module = TinyLM(vocab_size=len(tokenizer), tokenizer=tokenizer)
    callbacks = [
        PPPMonitor(corpus, steps=MEASURE_AT, folds=5, strict=True),
        AttentionMonitor(
            steps=MEASURE_AT,
            probe_batch=4,
            entropy_stories=1,
            syntactic=False,
            corpus="naturalstories",
            strict=True,
        ),
        # the paper's threshold rule at level 0 fires at the first evaluation from step 4 on:
        # a transition checkpoint is certain, and its step is known
        TransitionMonitor(
            watch={"heads/prev_token_max": {"rule": "threshold", "level": 0.0, "start_step": 4}},
            checkpoint=True,
            strict=True,
        ),
        PeakMonitor(save_peak=True, patience=2, min_steps=0, strict=True),
        DumpPerRank(str(root)),
    ]
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=devices,
        strategy="auto" if strategy is None else _strategy(strategy),
        callbacks=callbacks,
        logger=False,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,  # keep the interleaved order
    )
    trainer.fit(module, loader)


if __name__ == "__main__":
    from transformers import PreTrainedTokenizerFast

    torch.set_num_threads(1)
    root, tokenizer_dir, strategy = sys.argv[1:4]
    fit(root, PreTrainedTokenizerFast.from_pretrained(tokenizer_dir), strategy)
    if dist.is_initialized():  # each rank's file is written: end without finalization
        dist.destroy_process_group()
    end_process_now()

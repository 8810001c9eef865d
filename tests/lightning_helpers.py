"""A tiny GPT-2 LightningModule and data for the callback tests (importable by LightningCLI)."""

from __future__ import annotations

import atexit
import logging
import os
import sys

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset
from transformers import GPT2Config, GPT2LMHeadModel


class TinyLM(L.LightningModule):
    """GPT-2, 2 layers, 2 heads, 32 dims; ``self.model`` and ``self.tokenizer`` as documented."""

    def __init__(
        self,
        vocab_size: int = 300,
        n_layer: int = 2,
        n_head: int = 2,
        n_embd: int = 32,
        n_positions: int = 128,
        dropout: float = 0.0,
        lr: float = 3e-3,
        tokenizer=None,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.lr = lr
        config = GPT2Config(
            vocab_size=vocab_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            n_positions=n_positions,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
        )
        self.model = GPT2LMHeadModel(config)

    def training_step(self, batch, batch_idx):
        (ids,) = batch if isinstance(batch, (list, tuple)) else (batch,)
        loss = self.model(input_ids=ids, labels=ids).loss
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        (ids,) = batch if isinstance(batch, (list, tuple)) else (batch,)
        self.log("val/loss", self.model(input_ids=ids, labels=ids).loss)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def token_loader(ids: torch.Tensor, batch_size: int = 8, length: int = 64) -> DataLoader:
    """Consecutive chunks of ``length`` tokens, in order (deterministic, no shuffling)."""
    n = ids.numel() // length
    chunks = ids[: n * length].view(n, length)
    return DataLoader(TensorDataset(chunks), batch_size=batch_size, shuffle=False)


def random_token_loader(
    vocab_size: int, n: int = 64, length: int = 32, seed: int = 0
) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    chunks = torch.randint(0, vocab_size, (n, length), generator=g)
    return DataLoader(TensorDataset(chunks), batch_size=8, shuffle=False)


def quiet_trainer(root, callbacks, *, max_steps: int, logger=False, **kwargs) -> L.Trainer:
    """A single-process CPU Trainer with no progress bar, summary or checkpointing of its own."""
    options = dict(
        max_steps=max_steps,
        callbacks=callbacks,
        logger=logger,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
    )
    return L.Trainer(**{**options, **kwargs})


class ExitCleanDDP(DDPStrategy):
    """Lightning's ``ddp`` / ``ddp_spawn`` whose workers end cleanly after their work is done.

    Lightning destroys the process group at exit only for NCCL. A gloo worker left to interpreter
    finalization can abort there ("terminate called without an active exception", SIGABRT;
    pytorch/pytorch#190489), and the launcher then fails a run that trained and saved everything:
    it struck about once per full-suite run, each time in a test that passed alone, and once in a
    worker that had destroyed its group itself. So at exit the group is destroyed and a spawned
    worker whose fit raised nothing ends with ``os._exit(0)``, skipping finalization (logs and
    streams flushed first). "Whose fit raised nothing": a spawned worker's fit tears the strategy
    down only when it finished; a failed fit never gets there and exits as before, with its error
    (checked: a callback raising on rank 1 still fails the run). The ``popen`` launcher's rank 0
    is the calling process (a script, or pytest itself): it only destroys the group.
    """

    def setup_distributed(self) -> None:
        super().setup_distributed()
        self._finished = False
        atexit.register(self._end_worker)

    def teardown(self) -> None:
        super().teardown()
        self._finished = True

    def _end_worker(self) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        if self._start_method == "spawn" and self._finished:
            end_process_now()


def end_process_now(code: int = 0) -> None:
    """Flush logs and streams, then end this process without interpreter finalization."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def spawn_ddp() -> ExitCleanDDP:
    """``ddp_spawn`` for the suite's 2-process CPU tests (``strategy=spawn_ddp()``)."""
    return ExitCleanDDP(start_method="spawn")

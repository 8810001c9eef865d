"""``TinyGPT2``: a small GPT-2 (Radford et al., 2019) trained from scratch as a LightningModule.

The Hugging Face model is ``self.model`` and the tokenizer ``self.tokenizer``, where phasewatch's
callbacks look for them. Training uses PyTorch SDPA attention; the callbacks switch to eager
attention only for their probe passes.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

LR_SCHEDULES = ("constant", "cosine")


class TinyGPT2(L.LightningModule):
    """A GPT-2 language model with AdamW, linear warmup, and token counting.

    Logs, per training step: ``train/loss`` (nats/token, all sequences), ``train/loss_natural``
    and ``train/loss_repeated`` (the two kinds of :class:`~phasewatch.demo.data.MixedSequences`,
    when the batch says which is which), ``train/tokens`` (tokens seen, all ranks) and
    ``train/lr``; per validation epoch ``val/loss`` (nats/token, held-out natural text).

    As input, a batch is a LongTensor ``[B, T]`` of token ids or a dict with ``input_ids`` and,
    optionally, ``is_repeated`` (BoolTensor ``[B]``). The loss is next-token cross-entropy over
    all ``T - 1`` predicted positions.

    Args:
        vocab_size: tokenizer vocabulary size.
        n_layer, n_head, n_embd, n_inner: GPT-2 shape (``n_inner`` = MLP width).
        context_length: maximum sequence length (GPT-2 ``n_positions``).
        learning_rate: AdamW peak learning rate.
        warmup_steps: linear warmup from ``learning_rate / warmup_steps`` to ``learning_rate``.
        lr_schedule: ``"constant"`` after warmup, or ``"cosine"`` decay to
            ``min_lr_ratio * learning_rate`` at ``max_steps``.
        max_steps: length of the cosine schedule (ignored for ``"constant"``).
        min_lr_ratio: floor of the cosine schedule, as a share of ``learning_rate``.
        weight_decay: AdamW weight decay (matrices only; no decay on biases, norms, embeddings).
        betas: AdamW betas.
        tokenizer: stored as ``self.tokenizer`` (not saved in checkpoints' hyperparameters).
        seed: ``torch.manual_seed`` applied before the weights are initialised.
    """

    def __init__(
        self,
        vocab_size: int = 512,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 64,
        n_inner: int = 256,
        context_length: int = 100,
        *,
        learning_rate: float = 1e-3,
        warmup_steps: int = 100,
        lr_schedule: str = "constant",
        max_steps: int = 0,
        min_lr_ratio: float = 0.1,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.95),
        tokenizer: PreTrainedTokenizerFast | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"`lr_schedule` can be one of {LR_SCHEDULES}, got {lr_schedule!r}.")
        if lr_schedule == "cosine" and max_steps <= warmup_steps:
            raise ValueError(
                f"`max_steps` must exceed warmup_steps={warmup_steps} for a cosine schedule, "
                f"got {max_steps}."
            )
        if n_embd % n_head:
            raise ValueError(f"`n_embd` ({n_embd}) must be divisible by `n_head` ({n_head}).")
        if tokenizer is not None and len(tokenizer) > vocab_size:
            raise ValueError(
                f"`tokenizer` has {len(tokenizer)} tokens, more than vocab_size={vocab_size}; "
                "pass vocab_size=len(tokenizer)."
            )
        self.save_hyperparameters(ignore=["tokenizer"])
        if seed is not None:
            torch.manual_seed(seed)
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=context_length,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            n_inner=n_inner,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=0,
        )
        self.model = GPT2LMHeadModel(config)
        self.tokenizer = tokenizer
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.int64))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[B, T, vocab_size]``."""
        return self.model(input_ids).logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        ids, repeated = _unpack(batch)
        per_sequence = self._sequence_losses(ids)
        loss = per_sequence.mean()
        self.tokens_seen += ids.numel() * self.trainer.world_size
        self.log("train/loss", loss, prog_bar=True)
        if repeated is not None:
            for name, chosen in (("natural", ~repeated), ("repeated", repeated)):
                if chosen.any():
                    self.log(f"train/loss_{name}", per_sequence[chosen].mean())
        self.log("train/tokens", self.tokens_seen.float())
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        ids, _ = _unpack(batch)
        loss = self._sequence_losses(ids).mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=ids.shape[0])
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():  # tied lm_head is listed once
            embedding = name.endswith(("wte.weight", "wpe.weight"))
            (decay if parameter.ndim >= 2 and not embedding else no_decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": hp.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=hp.learning_rate,
            betas=tuple(hp.betas),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def lr_factor(self, step: int) -> float:
        """Learning rate at optimizer step ``step`` (0-based) as a share of ``learning_rate``."""
        hp = self.hparams
        if step < hp.warmup_steps:
            return (step + 1) / hp.warmup_steps
        if hp.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - hp.warmup_steps) / (hp.max_steps - hp.warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return hp.min_lr_ratio + (1.0 - hp.min_lr_ratio) * cosine

    def _sequence_losses(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) of each sequence, ``[B]``."""
        logits = self.model(ids).logits[:, :-1]
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
        )
        return losses.view(ids.shape[0], -1).mean(dim=1)


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict) and "input_ids" in batch:
        repeated = batch.get("is_repeated")
        return batch["input_ids"], repeated.bool() if isinstance(repeated, torch.Tensor) else None
    raise TypeError(
        "A batch must be a LongTensor [B, T] or a dict with 'input_ids', "
        f"got {type(batch).__name__}."
    )

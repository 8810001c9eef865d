"""The demo's training configuration, chosen by measurement (see ``docs/demo-config.md``).

A 2-layer GPT-2 on 2 CPU threads shows no induction-head transition on the novels alone within
minutes (it needs tens of millions of tokens). The demo therefore replaces a stated share of the
training sequences with random token spans tiled to the context length, the induction probe's own
distribution and a known trigger of induction heads (Olsson et al., 2022). :attr:`DemoConfig.
synthetic_share` says how much of the stream is synthetic; the demo prints it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from transformers import PreTrainedTokenizerFast

from phasewatch.demo.data import NovelsDataModule
from phasewatch.demo.model import TinyGPT2


@dataclass(frozen=True)
class DemoConfig:
    """Model, data and optimisation settings of the demo run (defaults: measured, see docs).

    Measured with these defaults (2 idle CPU threads): the induction-score maximum rises from 0.09
    to 0.51 between steps 2400 and 2650 (7.7M → 8.5M tokens, about 4 minutes), and the 4,500
    steps take about 7 minutes. With ``repeat_fraction=0.5`` the transition comes at about step
    1,700; with 0.2 it came only at about step 5,300.

    Attributes:
        vocab_size: byte-level BPE vocabulary trained on the novels.
        n_layer, n_head, n_embd, n_inner: GPT-2 shape (``n_inner`` = MLP width).
        context_length: tokens per training sequence (>= 100 for the default induction probe,
            two repeats of 50 tokens).
        batch_size: sequences per optimizer step.
        learning_rate, warmup_steps, lr_schedule, weight_decay: AdamW settings
            (see :class:`~phasewatch.demo.model.TinyGPT2`).
        gradient_clip_val: global gradient-norm clip, passed to the ``Trainer``.
        repeat_fraction: share of training sequences that are repeated random token spans.
        span_lengths: ``(min, max)`` tokens of a repeated span, tiled to ``context_length``.
        max_steps: optimizer steps of the demo run.
        val_check_interval: training steps between validations on held-out novel text.
        seed: seed of the weights and of every data draw.
        num_threads: torch intra-op threads for the run. Fixed, not "all cores": float sums are
            split by thread count, so another count gives other numbers after the transition
            (see :mod:`phasewatch.demo.reproducibility`).
    """

    vocab_size: int = 512
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    n_inner: int = 256
    context_length: int = 100
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    lr_schedule: str = "constant"
    weight_decay: float = 0.01
    gradient_clip_val: float = 1.0
    repeat_fraction: float = 0.3
    span_lengths: tuple[int, int] = (5, 50)
    max_steps: int = 4500
    val_check_interval: int = 100
    seed: int = 0
    num_threads: int = 2

    @property
    def tokens_per_step(self) -> int:
        """Training tokens per optimizer step on one device: ``batch_size * context_length``."""
        return self.batch_size * self.context_length

    @property
    def synthetic_share(self) -> float:
        """Share of training sequences (and tokens) that are repeated random spans."""
        return self.repeat_fraction

    def describe(self) -> str:
        """One line for the demo's output: the model and how much of the stream is synthetic."""
        return (
            f"GPT-2 {self.n_layer} layers x {self.n_head} heads x {self.n_embd} dims, "
            f"BPE vocabulary {self.vocab_size}, batches of {self.batch_size}x"
            f"{self.context_length} tokens, {self.max_steps} steps; "
            f"{self.repeat_fraction:.0%} of training sequences are random token spans of "
            f"{self.span_lengths[0]}-{self.span_lengths[1]} tokens repeated to fill the context "
            f"(synthetic: they trigger induction heads), {1 - self.repeat_fraction:.0%} are "
            "text from 25 public-domain novels."
        )

    def with_(self, **changes: Any) -> DemoConfig:
        """A copy with some fields changed (``config.with_(max_steps=500)``)."""
        return replace(self, **changes)

    def data_module(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> NovelsDataModule:
        """The novels data module with this configuration's data settings."""
        return NovelsDataModule(
            vocab_size=self.vocab_size,
            context_length=self.context_length,
            batch_size=self.batch_size,
            repeat_fraction=self.repeat_fraction,
            span_lengths=self.span_lengths,
            seed=self.seed,
            data_dir=data_dir,
            cache_dir=cache_dir,
            **options,
        )

    def model(self, tokenizer: PreTrainedTokenizerFast | None = None) -> TinyGPT2:
        """A freshly initialised :class:`TinyGPT2` with this configuration's shape and optimiser."""
        return TinyGPT2(
            vocab_size=self.vocab_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            n_inner=self.n_inner,
            context_length=self.context_length,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_steps,
            lr_schedule=self.lr_schedule,
            max_steps=self.max_steps,
            weight_decay=self.weight_decay,
            tokenizer=tokenizer,
            seed=self.seed,
        )

    def trainer_kwargs(self) -> dict[str, Any]:
        """``Trainer`` arguments that belong to the configuration (add callbacks, logger, ...)."""
        return {
            "max_steps": self.max_steps,
            "gradient_clip_val": self.gradient_clip_val,
            "val_check_interval": self.val_check_interval,
            "check_val_every_n_epoch": None,
            "num_sanity_val_steps": 0,
            "accelerator": "cpu",
            "devices": 1,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (for logging as hyperparameters)."""
        return asdict(self)

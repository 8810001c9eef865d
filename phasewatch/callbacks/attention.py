"""AttentionMonitor: per-head attention entropy and head-specialization scores during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks import _logging
from phasewatch.callbacks._resolve import check_token_id, resolve_model, resolve_tokenizer
from phasewatch.callbacks.base import PhasewatchMonitor
from phasewatch.corpora import load
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.head_kinds import head_series, score_keys
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.report.heatmaps import head_heatmaps


class AttentionMonitor(PhasewatchMonitor):
    """Log per-head attention entropy and specialization scores, with per-head heatmaps.

    At each scheduled step:

    - induction, previous-token and duplicate-token scores of every head from ONE forward pass over
      a fixed probe of random token sequences repeated twice
      (:func:`phasewatch.measures.all_head_scores`; ``seq_len``, ``probe_batch``, ``seed``);
    - attention entropy (nats, mean over query positions) on natural text: the first
      ``entropy_tokens`` tokens of each of the first ``entropy_stories`` corpus stories;
    - with ``syntactic=True``, the syntactic attention score against the corpus' dependency parses
      on the first ``syntactic_stories`` stories (Natural Stories only).

    Logs ``heads/induction_max``, ``heads/prev_token_max``, ``heads/duplicate_token_max``,
    ``heads/syntactic_max`` (each the max over heads, in [0, 1]; one key per row of
    :data:`phasewatch.head_kinds.HEAD_KINDS`), ``heads/sas`` (syntactic attention score: the best
    head per relation, hits pooled over all arcs, in [0, 1]), ``attn/entropy_mean`` (nats),
    optionally ``attn/entropy/L{l}H{h}`` and ``heads/<kind>/L{l}H{h}`` per head, and a heatmap
    figure ``heads/heatmaps`` to TensorBoard. The per-head tensors also go to the run's history.

    Args:
        seq_len, probe_batch, seed: the repeated-random-token probe (length of one repeat, batch).
        entropy_stories, entropy_tokens: the natural-text probe for entropy (needs a tokenizer).
        syntactic, syntactic_stories: the syntactic score (needs a tokenizer and the UD parses).
        per_head_scalars: also log one scalar per head and measure.
        heatmap_every: draw the TensorBoard heatmap figure at every k-th measurement (default 4;
            0 = never). A figure costs about 0.6 s on CPU (docs/performance.md); the per-head
            values of every measurement go to the run's history regardless.
        corpus, data_dir: the corpus for the natural-text probes (default Natural Stories).
        model_attr, tokenizer, tokenizer_path, tokenizer_attr: where the model and tokenizer are
            (a raw ``tokenizers.Tokenizer`` works too).
        bos_token_id: the id put in front of the natural-text probes (entropy, syntactic);
            default the tokenizer's ``bos_token_id``, else its ``eos_token_id`` — the rule
            :class:`PPPMonitor` uses. The random-token head-score probe has no BOS.
        every_n_steps, log_spaced, per_decade, steps, on_validation, strict: see
            :class:`~phasewatch.callbacks.base.PhasewatchMonitor`.
    """

    produces = (*head_series(), keys.ATTN_ENTROPY_MEAN)

    def __init__(
        self,
        *,
        seq_len: int = 50,
        probe_batch: int = 32,
        seed: int = 0,
        entropy_stories: int = 4,
        entropy_tokens: int = 128,
        syntactic: bool = True,
        syntactic_stories: int = 2,
        per_head_scalars: bool = False,
        heatmap_every: int = 4,
        corpus: str = "naturalstories",
        data_dir: str | None = None,
        model_attr: str | None = None,
        tokenizer: Any = None,
        tokenizer_path: str | None = None,
        tokenizer_attr: str = "tokenizer",
        bos_token_id: int | None = None,
        every_n_steps: int = 100,
        log_spaced: bool = True,
        per_decade: int = 10,
        steps: Sequence[int] | None = None,
        on_validation: bool = False,
        strict: bool = False,
    ) -> None:
        super().__init__(
            every_n_steps=every_n_steps,
            log_spaced=log_spaced,
            per_decade=per_decade,
            steps=steps,
            on_validation=on_validation,
            strict=strict,
        )
        for name, value in (
            ("seq_len", seq_len),
            ("probe_batch", probe_batch),
            ("entropy_tokens", entropy_tokens),
        ):
            if value < 2:
                raise ValueError(f"`{name}` must be >= 2, got {value}")
        if syntactic and corpus != "naturalstories":
            raise ValueError(
                f"`syntactic=True` scores heads against the Natural Stories dependency parses, "
                f"but `corpus` is {corpus!r}; set syntactic=False for other corpora"
            )
        self.seq_len, self.probe_batch, self.seed = int(seq_len), int(probe_batch), int(seed)
        self.entropy_stories, self.entropy_tokens = int(entropy_stories), int(entropy_tokens)
        self.syntactic, self.syntactic_stories = bool(syntactic), int(syntactic_stories)
        self.per_head_scalars = bool(per_head_scalars)
        if heatmap_every < 0:
            raise ValueError(f"`heatmap_every` must be >= 0 (0 = never), got {heatmap_every}")
        self.heatmap_every = int(heatmap_every)
        self.corpus_name, self.data_dir = corpus, data_dir
        self.model_attr = model_attr
        self._tokenizer, self.tokenizer_path, self.tokenizer_attr = (
            tokenizer,
            tokenizer_path,
            tokenizer_attr,
        )
        check_token_id("bos_token_id", bos_token_id)
        self.bos_token_id = bos_token_id
        self._measure: HeadMeasure | None = None
        self.last_per_head: dict[str, torch.Tensor] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(seq_len=self.seq_len, seed=self.seed)

    def describe(self) -> dict:
        return {
            "probe": f"{self.probe_batch} random sequences of {self.seq_len} tokens, twice",
            "seed": self.seed,
            "entropy_probe": f"{self.entropy_tokens} tokens x {self.entropy_stories} stories",
            "syntactic_stories": self.syntactic_stories if self.syntactic else 0,
            "units": "scores: attention mass in [0, 1]; entropy: nats",
        }

    def _head_measure(self) -> HeadMeasure:
        if self._measure is None:
            corpus = dependencies = None
            if self.entropy_stories > 0 or self.syntactic:
                corpus = load(self.corpus_name, data_dir=self.data_dir)
            if self.syntactic:
                dependencies = load_dependencies(data_dir=self.data_dir)
            self._measure = HeadMeasure(
                seq_len=self.seq_len,
                probe_batch=self.probe_batch,
                seed=self.seed,
                corpus=corpus,
                dependencies=dependencies,
                entropy_stories=self.entropy_stories,
                entropy_tokens=self.entropy_tokens,
                syntactic_stories=self.syntactic_stories if self.syntactic else 0,
            )
        return self._measure

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict, dict]:
        probe = resolve_model(pl_module, self.model_attr)
        try:
            tokenizer = resolve_tokenizer(
                pl_module,
                self._tokenizer,
                self.tokenizer_path,
                self.tokenizer_attr,
                self.bos_token_id,
            )
        except AttributeError:
            tokenizer = None  # head scores need none; entropy and syntactic are skipped
        scalars, per_head = self._head_measure().measure(probe, tokenizer)
        if self.per_head_scalars:
            for name, scores in per_head.items():
                prefix = (
                    keys.ATTN_ENTROPY_PREFIX if name == "entropy" else f"{keys.HEADS_PREFIX}/{name}"
                )
                for layer in range(scores.shape[0]):
                    for head in range(scores.shape[1]):
                        key = keys.per_head_key(prefix, layer, head)
                        scalars[key] = float(scores[layer, head])
        by_key = score_keys()
        extras = {
            "per_head": {by_key[k]: v for k, v in per_head.items() if k in by_key},
            "heads": per_head,
        }
        return scalars, extras

    def after_measurement(self, trainer, pl_module, step, scalars, extras) -> None:
        self.last_per_head = extras["heads"]
        _logging.append_history(
            trainer,
            {
                "kind": "heads",
                "step": step,
                "tokens": self.tokens_seen,
                "per_head": {k: v.tolist() for k, v in extras["heads"].items()},
            },
        )
        measured = len(self.history.get(keys.HEADS_INDUCTION_MAX, []))  # this one included
        draw = self.heatmap_every and (measured - 1) % self.heatmap_every == 0
        if draw and _logging.tensorboard(trainer) is not None:
            figure = head_heatmaps(extras["heads"], f"step {step} ({self.tokens_seen:,} tokens)")
            _logging.log_figure(trainer, keys.HEADS_HEATMAPS, figure, step)

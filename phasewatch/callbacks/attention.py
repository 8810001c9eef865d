"""AttentionMonitor: per-head attention entropy and head-specialization scores during training."""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks import _logging
from phasewatch.callbacks._args import bool_arg, int_arg
from phasewatch.callbacks._resolve import check_token_id, resolve_model, resolve_tokenizer
from phasewatch.callbacks.base import PhasewatchMonitor
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.head_kinds import head_series, score_keys
from phasewatch.measures.snapshot import DEFAULT_SEQ_LEN, HeadMeasure
from phasewatch.report.head_image import head_images, image_row

log = logging.getLogger("phasewatch")

#: The arguments that set each part of a measurement, named when that part fails.
_PART_ARGUMENTS = {
    "repeated_token": "seq_len, probe_batch",
    "entropy": "entropy_tokens, entropy_stories (0 turns it off)",
    "syntactic": "syntactic_max_tokens, syntactic_stories, syntactic=False (off)",
}


class AttentionMonitor(PhasewatchMonitor):
    """Log per-head attention entropy and specialization scores, with per-head heatmaps.

    At each scheduled step:

    - induction, previous-token and duplicate-token scores of every head from ONE forward pass over
      a fixed probe of random token sequences repeated twice
      (:func:`phasewatch.measures.all_head_scores`; ``seq_len``, ``probe_batch``, ``seed``);
      ``seq_len`` defaults to 50 tokens per repeat (the paper's code), or ``max_length // 2``
      for a model whose context is shorter than 100 positions;
    - attention entropy (nats, mean over query positions) on natural text: the first
      ``entropy_tokens`` tokens (at most the model's context) of each of the first
      ``entropy_stories`` corpus stories;
    - with ``syntactic=True``, the syntactic attention score against the corpus's own dependency
      arcs (``corpus.dependencies``) on its first ``syntactic_stories`` stories, in windows of
      ``syntactic_max_tokens`` tokens (default: the model's context). A corpus without arcs turns
      the syntactic score off with one warning (``strict=True`` raises).

    The three parts fail alone: a part that raises (e.g. a context too short for the probe) is
    logged as a warning naming the arguments that set it, and the others are logged as usual
    (``strict=True`` raises instead).

    Logs ``heads/induction_max``, ``heads/prev_token_max``, ``heads/duplicate_token_max``,
    ``heads/syntactic_max`` (each the max over heads, in [0, 1]; one key per row of
    :data:`phasewatch.head_kinds.HEAD_KINDS`), ``heads/sas`` (syntactic attention score: the best
    head per relation, hits pooled over all arcs, in [0, 1]), ``attn/entropy_mean`` (nats),
    optionally ``attn/entropy/L{l}H{h}`` and ``heads/<kind>/L{l}H{h}`` per head, and heatmap
    images to every TensorBoard, CSV, W&B and MLflow logger: ``heads/heatmaps/<measure>`` each and
    ``heads/heatmaps`` all in a row.
    The per-head tensors also go to the run's history.

    Args:
        seq_len, probe_batch, seed: the repeated-random-token probe (tokens per repeat, default
            ``min(50, max_length // 2)``; sequences; seed).
        entropy_stories, entropy_tokens: the natural-text probe for entropy (needs a tokenizer).
        syntactic, syntactic_stories, syntactic_max_tokens: the syntactic score (needs a tokenizer
            and a corpus with dependency arcs), window length in tokens (default: the model's
            ``max_length``).
        per_head_scalars: also log one scalar per head and measure.
        heatmap_every: draw the heatmap images at every k-th measurement (default 1;
            0 = never). They are colour-table arrays, no matplotlib: about 3 ms on CPU
            (docs/performance.md); the per-head values always go to the run's history.
        corpus, data_dir: the corpus for the natural-text probes and the arcs of the syntactic
            score: a registered name (default Natural Stories) or a
            :class:`~phasewatch.corpora.ReadingTimeCorpus` (e.g. from ``load_tsv(..., head=,
            relation=)``); ``data_dir`` is where a named corpus's files are.
        model_attr, tokenizer, tokenizer_path, tokenizer_attr: where the model and tokenizer are
            (a raw ``tokenizers.Tokenizer`` works too).
        bos_token_id: the id put in front of the natural-text probes (entropy, syntactic);
            default the tokenizer's ``bos_token_id``, else its ``eos_token_id`` — the rule
            :class:`PPPMonitor` uses. The random-token head-score probe has no BOS.
        every_n_steps, log_spaced, per_decade, steps, on_validation, strict, max_overhead: see
            :class:`~phasewatch.callbacks.base.PhasewatchMonitor`.
    """

    produces = (*head_series(), keys.ATTN_ENTROPY_MEAN)

    def __init__(
        self,
        *,
        seq_len: int | None = None,
        probe_batch: int = 32,
        seed: int = 0,
        entropy_stories: int = 4,
        entropy_tokens: int = 128,
        syntactic: bool = True,
        syntactic_stories: int = 2,
        syntactic_max_tokens: int | None = None,
        per_head_scalars: bool = False,
        heatmap_every: int = 1,
        corpus: str | ReadingTimeCorpus = "naturalstories",
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
        max_overhead: float | None = None,
    ) -> None:
        super().__init__(
            every_n_steps=every_n_steps,
            log_spaced=log_spaced,
            per_decade=per_decade,
            steps=steps,
            on_validation=on_validation,
            strict=strict,
            max_overhead=max_overhead,
        )
        for name, value in (
            ("seq_len", seq_len),
            ("probe_batch", probe_batch),
            ("entropy_tokens", entropy_tokens),
            ("syntactic_max_tokens", syntactic_max_tokens),
        ):
            if value is not None:
                int_arg(name, value, 2)
        for name, value in (
            ("seed", seed),
            ("entropy_stories", entropy_stories),
            ("syntactic_stories", syntactic_stories),
        ):
            int_arg(name, value, 0)
        bool_arg("syntactic", syntactic)
        bool_arg("per_head_scalars", per_head_scalars)
        if not isinstance(corpus, str | ReadingTimeCorpus):
            raise TypeError(
                "`corpus` must be a registered corpus name (see "
                "phasewatch.corpora.reading_time_corpora()) or a ReadingTimeCorpus, got "
                f"{type(corpus).__name__}"
            )
        self.seq_len = None if seq_len is None else int(seq_len)
        self.probe_batch, self.seed = int(probe_batch), int(seed)
        self.entropy_stories, self.entropy_tokens = int(entropy_stories), int(entropy_tokens)
        self.syntactic, self.syntactic_stories = bool(syntactic), int(syntactic_stories)
        self.syntactic_max_tokens = (
            None if syntactic_max_tokens is None else int(syntactic_max_tokens)
        )
        self.per_head_scalars = bool(per_head_scalars)
        int_arg("heatmap_every", heatmap_every, 0, "0 = never")
        self.heatmap_every = int(heatmap_every)
        self._corpus = corpus if isinstance(corpus, ReadingTimeCorpus) else None
        self.corpus_name = corpus.name if isinstance(corpus, ReadingTimeCorpus) else corpus
        self.data_dir = data_dir
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
        # the default probe keeps the key it had when seq_len defaulted to 50 (old checkpoints)
        seq_len = DEFAULT_SEQ_LEN if self.seq_len is None else self.seq_len
        return self._generate_state_key(seq_len=seq_len, seed=self.seed)

    def describe(self) -> dict:
        seq_len = "min(50, max_length // 2)" if self.seq_len is None else self.seq_len
        return {
            "probe": f"{self.probe_batch} random sequences of {seq_len} tokens, twice",
            "seed": self.seed,
            "entropy_probe": f"{self.entropy_tokens} tokens x {self.entropy_stories} stories",
            "syntactic_stories": self.syntactic_stories if self.syntactic else 0,
            "units": "scores: attention mass in [0, 1]; entropy: nats",
        }

    def _head_measure(self) -> HeadMeasure:
        if self._measure is None:
            corpus = None
            try:
                if self._corpus is not None:
                    corpus = self._corpus
                elif self.entropy_stories > 0 or self.syntactic:
                    corpus = load(self.corpus_name, data_dir=self.data_dir)
            except Exception as err:
                if self.strict:
                    raise
                # the head scores need no corpus: they go on; entropy and syntactic are off
                corpus = None
                log.warning(
                    "AttentionMonitor: the %s corpus could not be loaded (%s: %s); attention "
                    "entropy and the syntactic score are off for this run, the head scores go on "
                    "(set data_dir= or PHASEWATCH_DATA, or entropy_stories=0, syntactic=False)",
                    self.corpus_name,
                    type(err).__name__,
                    str(err).splitlines()[0],
                )
            dependencies = self._corpus_arcs(corpus) if self.syntactic else None
            self._measure = HeadMeasure(
                seq_len=self.seq_len,
                probe_batch=self.probe_batch,
                seed=self.seed,
                corpus=corpus,
                dependencies=dependencies,
                entropy_stories=self.entropy_stories,
                entropy_tokens=self.entropy_tokens,
                syntactic_stories=self.syntactic_stories if self.syntactic else 0,
                syntactic_max_tokens=self.syntactic_max_tokens,
            )
        return self._measure

    def _corpus_arcs(self, corpus: ReadingTimeCorpus | None):
        """The corpus's own dependency arcs; a corpus without them turns the syntactic score off
        with one warning (strict: raises). Never another corpus's arcs."""
        if corpus is None or corpus.has_dependencies:
            return None if corpus is None else corpus.dependencies
        message = (
            f"AttentionMonitor: the corpus {corpus.name!r} has no dependency arcs, so the "
            f"syntactic score ({keys.HEADS_SYNTACTIC_MAX}, {keys.HEADS_SAS}) is off for this "
            "run; give the corpus its arcs (load_tsv(..., head=, relation=) or "
            "ReadingTimeCorpus(..., dependencies=)), or pass syntactic=False"
        )
        if self.strict:
            raise ValueError(message)
        log.warning(message)
        return None

    def resolve(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Load the probes' corpus and find the model (at fit start, rank zero); the tokenizer is
        optional (without one, entropy and syntactic are skipped)."""
        self._head_measure()
        resolve_model(pl_module, self.model_attr)

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
        head_measure = self._head_measure()
        scalars, per_head = head_measure.measure(probe, tokenizer, keep_going=not self.strict)
        for part, error in head_measure.failures.items():
            self._warn_part_failed(trainer.global_step, part, error)
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

    def _warn_part_failed(self, step: int, part: str, error: Exception) -> None:
        """One part failed (rank zero measures alone): say which, why, and what sets it."""
        log.warning(
            "AttentionMonitor: the %s part failed at step %d and is not logged; the other parts "
            "are. Its arguments: %s.\n%s",
            part,
            step,
            _PART_ARGUMENTS[part],
            "".join(traceback.format_exception(error)).rstrip(),
        )

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
        if draw and _logging.sinks(trainer):  # rank zero, a logger that takes images
            self._log_heatmaps(trainer, extras["heads"], step)

    def _log_heatmaps(self, trainer, per_head: dict[str, torch.Tensor], step: int) -> None:
        """Heatmap images (no matplotlib, ~3 ms): each measure, and all in a row, at ``step``.

        Scores on viridis 0–1; entropy on magma 0 … ln(entropy_tokens) nats (uniform attention).
        """
        images = head_images(per_head, entropy_max=math.log(max(self.entropy_tokens, 2)))
        if not images:
            return
        for name, image in images.items():
            _logging.log_image(trainer, keys.heatmap_key(name), image, step)
        _logging.log_image(trainer, keys.HEADS_HEATMAPS, image_row(images), step)

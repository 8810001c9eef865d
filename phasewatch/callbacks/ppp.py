"""PPPMonitor: psychometric predictive power (ΔLL of reading times) during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch import LightningModule, Trainer

from phasewatch.callbacks._resolve import resolve_model, resolve_tokenizer
from phasewatch.callbacks.base import PhasewatchMonitor
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.measures.snapshot import PPP_KEYS, PPPMeasure


class PPPMonitor(PhasewatchMonitor):
    """Log the model's psychometric predictive power on a reading-time corpus.

    At each scheduled step, word surprisal (bits) of the whole corpus is computed with
    :func:`phasewatch.measures.word_surprisal`, and :func:`phasewatch.measures.delta_loglik` fits
    reading times (ms) on length and log frequency with ``spillover`` lags, with and without
    surprisal, in ``folds``-fold cross-validation (fold ids fixed per word, so checkpoints are
    compared on the same folds).

    Logs:
        ``ppp/delta_ll``: ΔLL, nats per word (held-out, mean over words);
        ``ppp/delta_ll_se``: its standard error (nats/word);
        ``ppp/surprisal_coef``: fitted coefficient of the current word's surprisal (ms per bit);
        ``ppp/surprisal_mean``: mean word surprisal (bits);
        ``ppp/n_words``: words in the regression.

    Args:
        corpus: name of a bundled corpus (default ``"naturalstories"``) or a ``ReadingTimeCorpus``.
        data_dir: where the corpus files are (default ``$PHASEWATCH_DATA``, else the user cache).
        spillover: lags of each predictor (current word + ``spillover - 1`` previous; 4 for SPR).
        folds: cross-validation folds.
        control_tokens: add subword tokens per word (and lags) to the baseline (see docs/ppp.md).
        whitespace_correction: the word-boundary correction of Pimentel & Meister (2024).
        batch_size: windows per forward pass in the surprisal pass.
        model_attr: attribute of the LightningModule holding the model (default: search).
        tokenizer, tokenizer_path, tokenizer_attr: the tokenizer object, a path to load it from,
            or the attribute holding it (default ``"tokenizer"``; also looked up on the
            datamodule).
        every_n_steps, log_spaced, per_decade, steps, on_validation, strict: see
            :class:`~phasewatch.callbacks.base.PhasewatchMonitor`.

    Measured on rank zero; the numbers are broadcast so every rank logs and decides alike.
    """

    produces = PPP_KEYS

    def __init__(
        self,
        corpus: Any = "naturalstories",
        *,
        data_dir: str | None = None,
        spillover: int = 4,
        folds: int = 10,
        control_tokens: bool = False,
        whitespace_correction: bool = False,
        batch_size: int = 8,
        model_attr: str | None = None,
        tokenizer: Any = None,
        tokenizer_path: str | None = None,
        tokenizer_attr: str = "tokenizer",
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
        if spillover < 1:
            raise ValueError(f"`spillover` must be >= 1 (the current word counts), got {spillover}")
        if folds < 2:
            raise ValueError(f"`folds` must be >= 2, got {folds}")
        if not isinstance(corpus, (str, ReadingTimeCorpus)):
            raise TypeError(
                f"`corpus` must be a corpus name such as 'naturalstories' or a ReadingTimeCorpus, "
                f"got {type(corpus).__name__}"
            )
        self.corpus = corpus
        self.data_dir = data_dir
        self.spillover = int(spillover)
        self.folds = int(folds)
        self.control_tokens = bool(control_tokens)
        self.whitespace_correction = bool(whitespace_correction)
        self.batch_size = int(batch_size)
        self.model_attr = model_attr
        self._tokenizer = tokenizer
        self.tokenizer_path = tokenizer_path
        self.tokenizer_attr = tokenizer_attr
        self._measure: PPPMeasure | None = None
        self.last_result = None

    @property
    def corpus_name(self) -> str:
        return self.corpus if isinstance(self.corpus, str) else self.corpus.name

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            corpus=self.corpus_name, spillover=self.spillover, folds=self.folds
        )

    @property
    def baseline(self) -> tuple[str, ...]:
        base = ("length", "log_freq")
        return (*base, "n_tokens") if self.control_tokens else base

    def describe(self) -> dict:
        return {
            "corpus": self.corpus_name,
            "spillover": self.spillover,
            "folds": self.folds,
            "baseline": list(self.baseline),
            "whitespace_correction": self.whitespace_correction,
            "units": "ΔLL nats/word; surprisal bits; rt ms",
        }

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict, dict]:
        if self._measure is None:
            corpus = self.corpus
            if isinstance(corpus, str):
                corpus = load(corpus, data_dir=self.data_dir)
            self._measure = PPPMeasure(
                corpus,
                spillover=self.spillover,
                folds=self.folds,
                control_tokens=self.control_tokens,
                whitespace_correction=self.whitespace_correction,
                batch_size=self.batch_size,
            )
        probe = resolve_model(pl_module, self.model_attr)
        tokenizer = resolve_tokenizer(
            pl_module, self._tokenizer, self.tokenizer_path, self.tokenizer_attr
        )
        scalars, self.last_result = self._measure.measure(probe, tokenizer)
        return scalars, {}

"""PPPMonitor: psychometric predictive power (ΔLL of reading times) during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch import LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks._args import int_arg, optional_str_arg
from phasewatch.callbacks._resolve import check_token_id, resolve_model, resolve_tokenizer
from phasewatch.callbacks.base import PhasewatchMonitor, log
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.measures.delta_loglik import spillover_meaning
from phasewatch.measures.paired import PairedPeakTest
from phasewatch.measures.snapshot import CONTROL_TOKENS, PPP_KEYS, PPP_TOKCTRL_KEYS, PPPMeasure

#: Version of this monitor's saved state. 1 (phasewatch 0.1): ``spillover`` counted the current
#: word (S = current + S − 1 previous); 2: ``spillover`` counts previous words, paired state kept.
STATE_FORMAT = 2


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
        ``ppp/n_words``: words in the regression;
        ``ppp/decline_since_best`` ± ``ppp/decline_since_best_se``: the paired decline since the
        best evaluation so far, mean over words of ``ΔLL_i(best) − ΔLL_i(now)`` (nats/word; 0 ± 0
        at a new best). Folds are fixed per word, so two evaluations are compared word by word
        (:mod:`phasewatch.measures.paired`); :class:`PeakMonitor` and the report decide on it;
        ``ppp/rise_before_best`` ± ``ppp/rise_before_best_se``: the paired rise of the best over
        the first evaluation (nats/word);
        with ``control_tokens="both"`` also ``ppp/delta_ll_tokctrl`` (± ``_se``) and its paired
        ``ppp/decline_since_best_tokctrl`` / ``ppp/rise_before_best_tokctrl`` (± ``_se``).

    Args:
        corpus: name of a bundled corpus (default ``"naturalstories"``) or a ``ReadingTimeCorpus``.
        data_dir: where the corpus files are (default ``$PHASEWATCH_DATA``, else the user cache).
        spillover: previous words whose predictors enter the regression besides the current
            word's: 4 = current + 4 previous words, the paper's choice for self-paced reading; 2
            for eye tracking. Default: the corpus's ``default_spillover`` (4 for the bundled
            Natural Stories). Before phasewatch 0.2 it counted the current word.
        folds: cross-validation folds.
        control_tokens: ``False``; ``True`` adds subword tokens per word (and lags) to the
            baseline of ``ppp/delta_ll``; ``"both"`` logs ``ppp/delta_ll`` without and
            ``ppp/delta_ll_tokctrl`` with it, from one surprisal pass (see docs/ppp.md).
        whitespace_correction: the word-boundary correction of Pimentel & Meister (2024).
        batch_size: windows per forward pass in the surprisal pass.
        model_attr: attribute of the LightningModule holding the model (default: search).
        tokenizer, tokenizer_path, tokenizer_attr: the tokenizer object, a path to load it from,
            or the attribute holding it (default ``"tokenizer"``; also looked up on the
            datamodule). A raw ``tokenizers.Tokenizer`` works too.
        bos_token_id: the id put in front of every story (default: the tokenizer's
            ``bos_token_id``, else its ``eos_token_id``); needed for a tokenizer that has neither,
            such as a raw ``tokenizers.Tokenizer``.
        prefix: a name for this monitor's keys, for several PPPMonitors in one run (another
            corpus, spillover or tokenizer): ``prefix="dundee"`` logs ``ppp/dundee/delta_ll``
            and so on (:func:`phasewatch.keys.with_prefix`). Default None: ``ppp/delta_ll``.
            Two monitors that would write the same keys raise ``ValueError`` at setup.
        every_n_steps, log_spaced, per_decade, steps, on_validation, strict: see
            :class:`~phasewatch.callbacks.base.PhasewatchMonitor`.

    Measured on rank zero; the numbers are broadcast so every rank logs and decides alike.
    """

    def __init__(
        self,
        corpus: Any = "naturalstories",
        *,
        data_dir: str | None = None,
        spillover: int | None = None,
        folds: int = 10,
        control_tokens: bool | str = False,
        whitespace_correction: bool = False,
        batch_size: int = 8,
        model_attr: str | None = None,
        tokenizer: Any = None,
        tokenizer_path: str | None = None,
        tokenizer_attr: str = "tokenizer",
        bos_token_id: int | None = None,
        prefix: str | None = None,
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
        if spillover is None:
            spillover = corpus.default_spillover if isinstance(corpus, ReadingTimeCorpus) else 4
        if isinstance(spillover, bool) or not isinstance(spillover, int) or spillover < 0:
            raise ValueError(
                f"`spillover` must be an int >= 0 (previous words besides the current one; 4 = "
                f"current + 4 previous), got {spillover!r}"
            )
        if control_tokens not in CONTROL_TOKENS:
            raise ValueError(
                f"`control_tokens` can be False, True or 'both', got {control_tokens!r}"
            )
        folds = int_arg("folds", folds, 2, "cross-validation folds")
        batch_size = int_arg("batch_size", batch_size, 1, "windows per forward pass")
        optional_str_arg("model_attr", model_attr)
        optional_str_arg("tokenizer_attr", tokenizer_attr)
        if prefix is not None and (
            not isinstance(prefix, str)
            or not prefix
            or not prefix.replace("_", "").replace("-", "").isalnum()
        ):
            raise ValueError(
                f"`prefix` must be None or a non-empty name of letters, digits, '_' or '-' "
                f"(keys become ppp/<prefix>/delta_ll), got {prefix!r}"
            )
        if not isinstance(corpus, (str, ReadingTimeCorpus)):
            raise TypeError(
                f"`corpus` must be a corpus name such as 'naturalstories' or a ReadingTimeCorpus, "
                f"got {type(corpus).__name__}"
            )
        self.corpus = corpus
        self.data_dir = data_dir
        self.spillover = int(spillover)
        self.folds = int(folds)
        self.control_tokens = control_tokens
        self.whitespace_correction = bool(whitespace_correction)
        self.batch_size = int(batch_size)
        self.model_attr = model_attr
        self._tokenizer = tokenizer
        self.tokenizer_path = tokenizer_path
        self.tokenizer_attr = tokenizer_attr
        check_token_id("bos_token_id", bos_token_id)
        self.bos_token_id = bos_token_id
        self.prefix = prefix
        self._text_tokenizer = None
        self._measure: PPPMeasure | None = None
        self.last_result = None
        # rank zero's per-word ΔLL of the first and best evaluation, per ΔLL series
        self._paired = PairedPeakTest()
        self.produces = tuple(
            self.key(k)
            for k in (
                *PPP_KEYS,
                *(PPP_TOKCTRL_KEYS if control_tokens == "both" else ()),
                *(k for series in self._series for k in keys.PAIRED_KEYS[series]),
            )
        )

    def key(self, key: str) -> str:
        """``key`` as this monitor logs it (with its ``prefix``, if any)."""
        return keys.with_prefix(key, self.prefix)

    @property
    def _series(self) -> tuple[str, ...]:
        if self.control_tokens == "both":
            return (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL)
        return (keys.PPP_DELTA_LL,)

    @property
    def series(self) -> tuple[str, ...]:
        """The ΔLL series this monitor logs: ``ppp/delta_ll`` and, with "both", the controlled
        (with this monitor's ``prefix``)."""
        return tuple(self.key(k) for k in self._series)

    @property
    def corpus_name(self) -> str:
        return self.corpus if isinstance(self.corpus, str) else self.corpus.name

    @property
    def state_key(self) -> str:
        named = {} if self.prefix is None else {"prefix": self.prefix}
        return self._generate_state_key(
            corpus=self.corpus_name, spillover_previous=self.spillover, folds=self.folds, **named
        )

    def _format1_state_key(self) -> str:
        """The key phasewatch 0.1 saved this monitor's state under (spillover counted the word)."""
        return self._generate_state_key(
            corpus=self.corpus_name, spillover=self.spillover + 1, folds=self.folds
        )

    @property
    def baseline(self) -> tuple[str, ...]:
        """Baseline predictors of ``ppp/delta_ll``."""
        base = ("length", "log_freq")
        return (*base, "n_tokens") if self.control_tokens is True else base

    def describe(self) -> dict:
        return {
            **({} if self.prefix is None else {"prefix": self.prefix}),
            "corpus": self.corpus_name,
            "spillover": self.spillover,
            "spillover_meaning": spillover_meaning(self.spillover),
            "folds": self.folds,
            "baseline": list(self.baseline),
            "control_tokens": self.control_tokens,
            "whitespace_correction": self.whitespace_correction,
            "units": "ΔLL nats/word; surprisal bits; rt ms",
        }

    def resolve(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Load the corpus, find the model and the tokenizer (at fit start, rank zero)."""
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
        resolve_model(pl_module, self.model_attr)
        self._text_tokenizer = resolve_tokenizer(
            pl_module, self._tokenizer, self.tokenizer_path, self.tokenizer_attr, self.bos_token_id
        )

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> tuple[dict, dict]:
        if self._measure is None or self._text_tokenizer is None:
            self.resolve(trainer, pl_module)  # measured outside fit (e.g. called directly)
        probe = resolve_model(pl_module, self.model_attr)
        scalars, results = self._measure.measure(probe, self._text_tokenizer)
        self.last_result = results[keys.PPP_DELTA_LL]
        paired_scalars, paired = self._paired.update(trainer.global_step, results)
        scalars.update(paired_scalars)
        return (
            {self.key(k): v for k, v in scalars.items()},
            {"paired": {self.key(k): v for k, v in paired.items()}},
        )

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["format_version"] = STATE_FORMAT
        state["spillover_previous"] = self.spillover
        state["best"] = self._paired.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._paired.load_state_dict(state_dict.get("best", {}))

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint) -> None:
        """Convert a state saved by phasewatch 0.1, whose ``spillover`` counted the current word."""
        states = checkpoint.get("callbacks") or {}
        old_key = self._format1_state_key()
        if self.state_key in states or old_key not in states:
            return
        states[self.state_key] = states.pop(old_key)
        if trainer.is_global_zero:
            log.info(
                "PPPMonitor: loaded a state saved with the old spillover meaning (phasewatch 0.1, "
                "spillover=%d = current + %d previous words) as spillover=%d (same regression); "
                "its history is kept, the paired peak test starts afresh",
                self.spillover + 1,
                self.spillover,
                self.spillover,
            )

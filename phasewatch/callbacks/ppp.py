"""PPPMonitor: psychometric predictive power (ΔLL of reading times) during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.pytorch import LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks._args import bool_arg, int_arg, optional_str_arg
from phasewatch.callbacks._resolve import check_token_id, resolve_model, resolve_tokenizer
from phasewatch.callbacks.base import PhasewatchMonitor, log
from phasewatch.corpora import READING_TIMES, ReadingTimeCorpus, corpus_entry, load
from phasewatch.measures.delta_loglik import spillover_meaning
from phasewatch.measures.paired import PairedPeakTest
from phasewatch.measures.ppp_corpora import (
    CorporaPPP,
    check_corpus_key_name,
    check_optional_spillover,
    scalar_keys,
    series_keys,
)
from phasewatch.measures.snapshot import CONTROL_TOKENS, _readers_for_mixed

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

    Logs (one corpus):
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
        ``ppp/decline_since_best_tokctrl`` / ``ppp/rise_before_best_tokctrl`` (± ``_se``);
        with ``mixed_effects=True`` also ``ppp/delta_ll_mixed`` (in-sample mixed-effects ΔLL,
        nats per reader × word observation), ``ppp/delta_ll_mixed_per_word`` (the same gain,
        nats/word) and ``ppp/delta_ll_mixed_p`` (its likelihood-ratio p-value).

    Logs (several corpora, ``corpora=[...]``; :class:`~phasewatch.measures.ppp_corpora.CorporaPPP`):
        every key above per corpus as ``ppp/<corpus>/…`` (``ppp/naturalstories/delta_ll`` …,
        each corpus with its own spillover and its own paired test), and the mean over corpora:
        ``ppp/delta_ll`` = (1/K) Σ_k ΔLL_k ± ``ppp/delta_ll_se`` = √(Σ_k SE_k²)/K (nats/word;
        corpora independent), ``ppp/n_words`` (words in all) and the mean's paired
        ``ppp/decline_since_best`` / ``ppp/rise_before_best`` (± ``_se``): best = the evaluation
        with the best mean, decline = mean over corpora of each corpus's paired difference.
        :class:`PeakMonitor` and the report use the mean unless given a per-corpus key. The
        mixed-effects keys come per corpus only (``ppp/<corpus>/delta_ll_mixed`` …), no mean.

    Args:
        corpus: one corpus: a registered name (default ``"naturalstories"``) or a
            ``ReadingTimeCorpus``.
        corpora: several corpora (names or ``ReadingTimeCorpus`` objects, distinct names of
            letters, digits, ``_``, ``-``), instead of ``corpus``; giving both raises.
        data_dir: where the corpus files are (default ``$PHASEWATCH_DATA``, else the user cache).
        spillover: previous words whose predictors enter the regression besides the current
            word's: 4 = current + 4 previous words, the paper's choice for self-paced reading; 2
            for eye tracking. Default None: each corpus's own by its measure type (a
            ``ReadingTimeCorpus``'s ``default_spillover``; for a name, its registry entry's: 4
            for the bundled Natural Stories); an int applies to every corpus. Before phasewatch
            0.2 it counted the current word.
        folds: cross-validation folds.
        control_tokens: ``False``; ``True`` adds subword tokens per word (and lags) to the
            baseline of ``ppp/delta_ll``; ``"both"`` logs ``ppp/delta_ll`` without and
            ``ppp/delta_ll_tokctrl`` with it, from one surprisal pass (see docs/ppp.md).
        whitespace_correction: the word-boundary correction of Pimentel & Meister (2024).
        batch_size: windows per forward pass in the surprisal pass.
        mixed_effects: also fit the in-sample mixed-effects ΔLL on each corpus's per-reader data
            (:func:`~phasewatch.measures.delta_loglik_mixed.delta_loglik_mixed`: crossed random
            intercepts for readers and items, same surprisal pass, spillover and baseline as
            ``ppp/delta_ll``). Off by default: ~16 s more per evaluation at Natural Stories' size
            (docs/ppp.md). Every corpus needs per-reader data (``ReadingTimeCorpus.readers``,
            e.g. ``load_tsv(path, reader=...)``), else ``ValueError`` (at construction for a
            corpus object, at fit start for a name).
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
        every_n_steps, log_spaced, per_decade, steps, on_validation, strict, max_overhead: see
            :class:`~phasewatch.callbacks.base.PhasewatchMonitor`.

    Measured on rank zero; the numbers are broadcast so every rank logs and decides alike.
    """

    def __init__(
        self,
        corpus: Any = None,
        *,
        corpora: Sequence[Any] | None = None,
        data_dir: str | None = None,
        spillover: int | None = None,
        folds: int = 10,
        control_tokens: bool | str = False,
        whitespace_correction: bool = False,
        batch_size: int = 8,
        mixed_effects: bool = False,
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
        items = _corpus_items(corpus, corpora)
        check_optional_spillover(spillover)
        if control_tokens not in CONTROL_TOKENS:
            raise ValueError(
                f"`control_tokens` can be False, True or 'both', got {control_tokens!r}"
            )
        folds = int_arg("folds", folds, 2, "cross-validation folds")
        batch_size = int_arg("batch_size", batch_size, 1, "windows per forward pass")
        mixed_effects = bool_arg("mixed_effects", mixed_effects)
        if mixed_effects:  # a corpus object without per-reader data: refused now, not at fit
            for item in items:
                if isinstance(item, ReadingTimeCorpus):
                    _readers_for_mixed(item)
        optional_str_arg("model_attr", model_attr)
        optional_str_arg("tokenizer_attr", tokenizer_attr)
        if prefix is not None and not keys.is_key_part(prefix):
            raise ValueError(
                f"`prefix` must be None or a non-empty name of letters, digits, '_' or '-' "
                f"(keys become ppp/<prefix>/delta_ll), got {prefix!r}"
            )
        #: the corpora (names or ReadingTimeCorpus objects), in the order given
        self.corpora = items
        #: corpus name → previous words in its regression
        self.spillovers = {
            _name(item): int(spillover if spillover is not None else _default_spillover(item))
            for item in items
        }
        #: the one corpus (None with several)
        self.corpus = items[0] if len(items) == 1 else None
        shared = set(self.spillovers.values())
        #: the spillover of every corpus when they share one, else None (see ``spillovers``)
        self.spillover = shared.pop() if len(shared) == 1 else None
        self.data_dir = data_dir
        self.folds = int(folds)
        self.control_tokens = control_tokens
        self.whitespace_correction = bool(whitespace_correction)
        self.batch_size = int(batch_size)
        self.mixed_effects = mixed_effects
        self.model_attr = model_attr
        self._tokenizer = tokenizer
        self.tokenizer_path = tokenizer_path
        self.tokenizer_attr = tokenizer_attr
        check_token_id("bos_token_id", bos_token_id)
        self.bos_token_id = bos_token_id
        self.prefix = prefix
        self._text_tokenizer = None
        self._measure: CorporaPPP | None = None
        self.last_result = None
        # rank zero's per-word ΔLL of the first and best evaluation, per ΔLL series
        self._paired = PairedPeakTest()
        self.produces = tuple(
            self.key(k)
            for k in (
                *scalar_keys(self.corpus_names, control_tokens, mixed_effects),
                *(k for series in self._series for k in keys.paired_keys(series)),
            )
        )

    def key(self, key: str) -> str:
        """``key`` as this monitor logs it (with its ``prefix``, if any)."""
        return keys.with_prefix(key, self.prefix)

    @property
    def _series(self) -> tuple[str, ...]:
        return series_keys(self.corpus_names, self.control_tokens)

    @property
    def series(self) -> tuple[str, ...]:
        """The ΔLL series this monitor logs (with its ``prefix``): ``ppp/delta_ll`` and, with
        "both", the controlled; with several corpora these are the means, then each corpus's."""
        return tuple(self.key(k) for k in self._series)

    @property
    def corpus_names(self) -> tuple[str, ...]:
        return tuple(_name(item) for item in self.corpora)

    @property
    def corpus_name(self) -> str:
        """The corpus's name; several corpora joined by `` + ``."""
        return " + ".join(self.corpus_names)

    @property
    def state_key(self) -> str:
        named = {} if self.prefix is None else {"prefix": self.prefix}
        if len(self.corpora) > 1:  # every corpus with its spillover
            return self._generate_state_key(corpora=self.spillovers, folds=self.folds, **named)
        return self._generate_state_key(
            corpus=self.corpus_name, spillover_previous=self.spillover, folds=self.folds, **named
        )

    def _format1_state_key(self) -> str | None:
        """The key phasewatch 0.1 saved this monitor's state under (spillover counted the word);
        None with several corpora, which 0.1 did not have."""
        if len(self.corpora) > 1:
            return None
        return self._generate_state_key(
            corpus=self.corpus_name, spillover=self.spillover + 1, folds=self.folds
        )

    @property
    def baseline(self) -> tuple[str, ...]:
        """Baseline predictors of ``ppp/delta_ll``."""
        base = ("length", "log_freq")
        return (*base, "n_tokens") if self.control_tokens is True else base

    def describe(self) -> dict:
        if len(self.corpora) > 1:
            corpora = {
                "corpus": self.corpus_name,
                "corpora": list(self.corpus_names),
                "spillover": dict(self.spillovers),
                "spillover_meaning": {n: spillover_meaning(s) for n, s in self.spillovers.items()},
                "aggregate": "ppp/delta_ll = mean over corpora of ppp/<corpus>/delta_ll; "
                "SE = sqrt(sum of SE_k^2) / K (corpora independent)",
            }
        else:
            corpora = {
                "corpus": self.corpus_name,
                "spillover": self.spillover,
                "spillover_meaning": spillover_meaning(self.spillover),
            }
        return {
            **({} if self.prefix is None else {"prefix": self.prefix}),
            **corpora,
            "folds": self.folds,
            "baseline": list(self.baseline),
            "control_tokens": self.control_tokens,
            "whitespace_correction": self.whitespace_correction,
            "mixed_effects": self.mixed_effects,
            "units": "ΔLL nats/word (ppp/delta_ll_mixed: nats/observation, in-sample); "
            "surprisal bits; rt ms",
        }

    def resolve(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Load the corpus, find the model and the tokenizer (at fit start, rank zero)."""
        if self._measure is None:
            corpora = [
                load(c, data_dir=self.data_dir) if isinstance(c, str) else c for c in self.corpora
            ]
            self._measure = CorporaPPP(
                corpora,
                spillover=self.spillovers,
                folds=self.folds,
                control_tokens=self.control_tokens,
                whitespace_correction=self.whitespace_correction,
                batch_size=self.batch_size,
                mixed_effects=self.mixed_effects,
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
        if old_key is None or self.state_key in states or old_key not in states:
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


def _name(item: str | ReadingTimeCorpus) -> str:
    return item if isinstance(item, str) else item.name


def _corpus_items(corpus: Any, corpora: Any) -> tuple[str | ReadingTimeCorpus, ...]:
    """The monitor's corpora from ``corpus=`` (one) or ``corpora=`` (several), checked."""
    if corpus is not None and corpora is not None:
        raise ValueError(
            "give `corpus` (one corpus) or `corpora` (several), not both: e.g. "
            "PPPMonitor(corpora=['naturalstories', other_corpus])"
        )
    if corpora is None:
        items = ("naturalstories" if corpus is None else corpus,)
        what = "`corpus`"
    elif isinstance(corpora, (str, ReadingTimeCorpus)) or not isinstance(corpora, Sequence):
        raise TypeError(
            f"`corpora` must be a list of corpus names or ReadingTimeCorpus objects, got "
            f"{type(corpora).__name__}; for one corpus use corpus="
        )
    else:
        items, what = tuple(corpora), "every item of `corpora`"
    if not items:
        raise ValueError("`corpora` is empty: pass at least one corpus name or ReadingTimeCorpus")
    for item in items:
        if not isinstance(item, (str, ReadingTimeCorpus)):
            raise TypeError(
                f"{what} must be a corpus name such as 'naturalstories' or a ReadingTimeCorpus, "
                f"got {type(item).__name__}"
            )
    names = [_name(item) for item in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"`corpora` names {twice} more than once; each corpus gets its own keys "
            "(ppp/<name>/delta_ll): give each a distinct name"
        )
    if len(items) > 1:
        for name in names:
            check_corpus_key_name(name)
    return items


def _default_spillover(item: str | ReadingTimeCorpus) -> int:
    """Previous words by the corpus's measure type: its own, or its registry entry's for a name."""
    if isinstance(item, ReadingTimeCorpus):
        return item.default_spillover
    entry = corpus_entry(item, role=READING_TIMES)
    if entry.default_spillover is None:
        raise ValueError(
            f"corpus {item!r} has measure {entry.measure!r}, whose kind has no default spillover; "
            "pass `spillover=` (previous words: 4 for self-paced reading, 2 for eye tracking)"
        )
    return entry.default_spillover

"""Every metric and event key phasewatch logs: one place, imported by producers and consumers.

Keys are public (users monitor them with ``EarlyStopping`` / ``ModelCheckpoint`` and read them in
their loggers), so a key is never renamed without a deprecated alias here. This module imports
nothing heavy: reading a key must not pull in torch or Lightning.
"""

from __future__ import annotations

from collections.abc import Iterable

# --- PPP (PPPMonitor) ----------------------------------------------------------------------------
#: ΔLL of reading times from adding surprisal, held-out mean, nats/word.
PPP_DELTA_LL = "ppp/delta_ll"
#: Standard error of :data:`PPP_DELTA_LL` over words, nats/word.
PPP_DELTA_LL_SE = "ppp/delta_ll_se"
#: Fitted coefficient of the current word's surprisal, ms per bit.
PPP_SURPRISAL_COEF = "ppp/surprisal_coef"
#: Mean word surprisal over the corpus, bits.
PPP_SURPRISAL_MEAN = "ppp/surprisal_mean"
#: Words in the regression.
PPP_N_WORDS = "ppp/n_words"
#: ΔLL with subword tokens per word (and its spillover lags) in the baseline, nats/word.
PPP_DELTA_LL_TOKCTRL = "ppp/delta_ll_tokctrl"
#: Standard error of :data:`PPP_DELTA_LL_TOKCTRL`, nats/word.
PPP_DELTA_LL_TOKCTRL_SE = "ppp/delta_ll_tokctrl_se"
#: Mixed-effects ΔLL on per-reader data (``mixed_effects=True``): in-sample, ML, crossed random
#: intercepts for readers and items; nats per reader × word observation.
PPP_DELTA_LL_MIXED = "ppp/delta_ll_mixed"
#: The same gain per word, ``(ℓ_full − ℓ_base) / words``, nats/word (in-sample).
PPP_DELTA_LL_MIXED_PER_WORD = "ppp/delta_ll_mixed_per_word"
#: Likelihood-ratio test p-value of the mixed-effects ΔLL, ``χ²(spillover + 1)``; unitless.
PPP_DELTA_LL_MIXED_P = "ppp/delta_ll_mixed_p"
#: Paired decline of ΔLL since the best evaluation so far: mean over words of
#: ``ΔLL_i(best) − ΔLL_i(now)``, nats/word (positive = worse than the best; 0 at a new best).
PPP_DECLINE = "ppp/decline_since_best"
#: Paired standard error of :data:`PPP_DECLINE`, nats/word.
PPP_DECLINE_SE = "ppp/decline_since_best_se"
#: Paired rise of the best evaluation over the first one: mean of ``ΔLL_i(best) − ΔLL_i(first)``,
#: nats/word (0 while the first evaluation is the best).
PPP_RISE = "ppp/rise_before_best"
#: Paired standard error of :data:`PPP_RISE`, nats/word.
PPP_RISE_SE = "ppp/rise_before_best_se"
#: The same four for the tokens-per-word-controlled series (``control_tokens="both"``).
PPP_DECLINE_TOKCTRL = "ppp/decline_since_best_tokctrl"
PPP_DECLINE_TOKCTRL_SE = "ppp/decline_since_best_tokctrl_se"
PPP_RISE_TOKCTRL = "ppp/rise_before_best_tokctrl"
PPP_RISE_TOKCTRL_SE = "ppp/rise_before_best_tokctrl_se"

#: ΔLL series → its paired keys (decline, decline SE, rise, rise SE).
PAIRED_KEYS: dict[str, tuple[str, str, str, str]] = {
    PPP_DELTA_LL: (PPP_DECLINE, PPP_DECLINE_SE, PPP_RISE, PPP_RISE_SE),
    PPP_DELTA_LL_TOKCTRL: (
        PPP_DECLINE_TOKCTRL,
        PPP_DECLINE_TOKCTRL_SE,
        PPP_RISE_TOKCTRL,
        PPP_RISE_TOKCTRL_SE,
    ),
}

# --- attention heads (AttentionMonitor) ----------------------------------------------------------
#: Max over heads of the induction (prefix-matching) score, in [0, 1].
HEADS_INDUCTION_MAX = "heads/induction_max"
#: Max over heads of the previous-token score, in [0, 1].
HEADS_PREV_TOKEN_MAX = "heads/prev_token_max"
#: Max over heads of the duplicate-token score, in [0, 1].
HEADS_DUPLICATE_TOKEN_MAX = "heads/duplicate_token_max"
#: Accuracy of the single best head over all dependency arcs, in [0, 1].
HEADS_SYNTACTIC_MAX = "heads/syntactic_max"
#: Syntactic attention score (Chen et al., 2024): best head per relation, hits pooled; [0, 1].
HEADS_SAS = "heads/sas"
#: Mean attention entropy over layers, heads and query positions, nats.
ATTN_ENTROPY_MEAN = "attn/entropy_mean"
#: Prefix of per-head entropy scalars (``attn/entropy/L{l}H{h}``).
ATTN_ENTROPY_PREFIX = "attn/entropy"
#: Prefix of per-head score scalars (``heads/<kind>/L{l}H{h}``).
HEADS_PREFIX = "heads"
#: Image tag of the per-head heatmaps (all measures in a row; one each: :func:`heatmap_key`).
HEADS_HEATMAPS = "heads/heatmaps"

# --- training loss (TransitionMonitor) -----------------------------------------------------------
#: The smoothed training loss, nats/token, read from ``training_step``'s output.
LOSS = "loss"
#: Loss keys the report looks for, in order.
LOSS_KEYS = (LOSS, "train/loss")

# --- regularizers (phasewatch.control) -----------------------------------------------------------
#: Group of the unweighted regularizer penalties (``reg/<name>``), logged at every training step.
REG_PREFIX = "reg"
#: Copying penalty: mean per query position of the attention (max over layers and heads) paid to
#: the tokens after earlier occurrences of its token; in [0, n_occurrences], attention mass.
REG_COPYING = "reg/copying"
#: Syntactic penalty: mean over gold dependency arcs of the attention (max over layers and heads)
#: along the arc; in [0, 1], attention probability ("promote" mode logs 1 minus it).
REG_SYNTACTIC = "reg/syntactic"

# --- events --------------------------------------------------------------------------------------
#: Text tag of transition alerts.
TRANSITION_EVENTS = "transition/events"
#: Text tag of peak events.
PEAK_EVENTS = "peak/events"


def is_key_part(name: object) -> bool:
    """Whether ``name`` can stand as one part of a key (``ppp/<name>/delta_ll``): a non-empty
    string of letters, digits, ``_`` or ``-``."""
    return isinstance(name, str) and bool(name) and name.replace("_", "").replace("-", "").isalnum()


def with_prefix(key: str, prefix: str | None) -> str:
    """``key`` as a monitor with ``prefix=`` logs it: ``ppp/delta_ll`` → ``ppp/<prefix>/delta_ll``.

    ``None`` leaves the key as is (one monitor of its kind needs no prefix).
    """
    if not prefix:
        return key
    group, _, name = key.partition("/")
    return f"{group}/{prefix}/{name}"


def split_prefix(key: str) -> tuple[str, str | None]:
    """Undo :func:`with_prefix`: ``ppp/x/dundee/delta_ll`` → ``("ppp/delta_ll", "x/dundee")``.

    A key of one ``group/name`` has no prefix (None).
    """
    group, _, rest = key.partition("/")
    middle, _, name = rest.rpartition("/")
    return (f"{group}/{name}", middle or None) if middle else (key, None)


#: ΔLL series → its standard-error key.
SE_KEYS: dict[str, str] = {
    PPP_DELTA_LL: PPP_DELTA_LL_SE,
    PPP_DELTA_LL_TOKCTRL: PPP_DELTA_LL_TOKCTRL_SE,
}


def se_key(series: str) -> str:
    """The SE key of a (possibly prefixed) ΔLL series: ``ppp/dundee/delta_ll`` →
    ``ppp/dundee/delta_ll_se``. Raises KeyError for a key that is not a ΔLL series."""
    base, prefix = split_prefix(series)
    return with_prefix(SE_KEYS[base], prefix)


def paired_keys(series: str) -> tuple[str, str, str, str]:
    """:data:`PAIRED_KEYS` of a (possibly prefixed) ΔLL series, with the same prefix:
    ``ppp/dundee/delta_ll`` → ``ppp/dundee/decline_since_best``, … Raises KeyError for a key that
    is not a ΔLL series."""
    base, prefix = split_prefix(series)
    return tuple(with_prefix(k, prefix) for k in PAIRED_KEYS[base])  # type: ignore[return-value]


def delta_ll_series(available: Iterable[str]) -> list[str]:
    """The keys among ``available`` that are ΔLL series (``ppp/delta_ll``, ``ppp/<c>/delta_ll``,
    the tokctrl ones), in the order given."""
    return [key for key in available if split_prefix(key)[0] in SE_KEYS]


def per_head_key(prefix: str, layer: int, head: int) -> str:
    """``<prefix>/L{layer}H{head}``: one head's scalar."""
    return f"{prefix}/L{layer}H{head}"


def heatmap_key(measure: str) -> str:
    """``heads/heatmaps/<measure>``: one measure's per-head heatmap image."""
    return f"{HEADS_HEATMAPS}/{measure}"


def transition_marker_key(metric: str) -> str:
    """Scalar set to 1 at the step of a transition in ``metric``."""
    return f"transition/{metric}"


def peak_value_key(monitor: str) -> str:
    """Best value so far of ``monitor`` (logged by PeakMonitor)."""
    return f"{monitor}_peak"


def peak_step_key(monitor: str) -> str:
    """Step of the best value so far of ``monitor`` (logged by PeakMonitor)."""
    return f"{monitor}_peak_step"


#: The unit of each key's values, in words (alert texts name it after the key).
UNITS: dict[str, str] = {
    PPP_DELTA_LL: "nats/word",
    PPP_DELTA_LL_SE: "nats/word",
    PPP_DELTA_LL_TOKCTRL: "nats/word",
    PPP_DELTA_LL_TOKCTRL_SE: "nats/word",
    PPP_DELTA_LL_MIXED_PER_WORD: "nats/word",
    PPP_DECLINE: "nats/word",
    PPP_RISE: "nats/word",
    PPP_SURPRISAL_COEF: "ms per bit",
    PPP_SURPRISAL_MEAN: "bits",
    HEADS_INDUCTION_MAX: "attention score in [0, 1]",
    HEADS_PREV_TOKEN_MAX: "attention score in [0, 1]",
    HEADS_DUPLICATE_TOKEN_MAX: "attention score in [0, 1]",
    HEADS_SYNTACTIC_MAX: "accuracy in [0, 1]",
    HEADS_SAS: "score in [0, 1]",
    ATTN_ENTROPY_MEAN: "nats",
    LOSS: "nats/token, smoothed training loss",
}


def unit(key: str) -> str | None:
    """The unit of a (possibly prefixed) key's values (:data:`UNITS`); None for a key phasewatch
    does not produce (a user's ``val/score``)."""
    return UNITS.get(key, UNITS.get(split_prefix(key)[0]))

"""The run summary: what happened, computed from the history, never written in."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from phasewatch import keys
from phasewatch.detect import PeakEvent, TransitionEvent
from phasewatch.detect.events import PairedDifference, z_score
from phasewatch.detect.peak import DEFAULT_MIN_Z
from phasewatch.report.history import RunHistory

PPP_KEY, PPP_SE_KEY = keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE
_LABELS = {
    keys.PPP_DELTA_LL: "PPP",
    keys.PPP_DELTA_LL_TOKCTRL: "PPP, tokens per word controlled",
}


def curve_label(key: str, *, several_corpora: bool = False) -> str:
    """Words for a ΔLL series: ``ppp/delta_ll`` → "PPP" ("PPP, mean over corpora" when the run
    measured several); ``ppp/dundee/delta_ll`` → "PPP on dundee"."""
    base, prefix = keys.split_prefix(key)
    label = _LABELS.get(base, base)
    if prefix is not None:
        return label.replace("PPP", f"PPP on {prefix}", 1)
    return label.replace("PPP", "PPP, mean over corpora", 1) if several_corpora else label


@dataclass(frozen=True)
class PPPPoint:
    """One PPP evaluation: ΔLL (nats/word) ± SE at a step."""

    step: int
    tokens: int | None  # None: not recorded (e.g. a checkpoint series analysed offline)
    delta_ll: float
    se: float

    def __str__(self) -> str:
        tokens = "" if self.tokens is None else f" ({self.tokens:,} tokens)"
        return f"{self.delta_ll:+.4f} ± {self.se:.4f} nats/word at step {self.step}{tokens}"


@dataclass(frozen=True)
class PPPCurve:
    """One ΔLL series of a run: its first, highest and final evaluations and the peak verdict.

    ``peaked`` is True only when, at the final evaluation, the paired decline since the highest
    evaluation and the paired rise of the highest over the first both reach ``min_z`` standard
    errors (:mod:`phasewatch.measures.paired`; word by word on fixed folds). ``verdict`` says in
    words what was found or what is missing.
    """

    key: str
    first: PPPPoint
    best: PPPPoint
    final: PPPPoint
    decline: PairedDifference | None
    rise: PairedDifference | None
    min_z: float
    peaked: bool
    verdict: str
    monitor_peak: PeakEvent | None = None
    label: str = ""

    def lines(self) -> list[str]:
        label = self.label or curve_label(self.key)
        out = [f"  {label}:", f"    first:   {self.first}", f"    highest: {self.best}"]
        out.append(f"    final:   {self.final}")
        out.append(f"    {self.verdict}")
        event = self.monitor_peak
        if event is not None and event.decline is not None:
            when = f"step {event.confirmed_step}" if event.confirmed_step is not None else None
            when = when or f"{event.evaluations_since} evaluations after it"
            z = z_score(event.decline, event.decline_se)
            out.append(
                f"    PeakMonitor confirmed the peak of step {event.step} at {when} (paired "
                f"decline then {event.decline:.4f} ± {event.decline_se:.4f} nats/word, z = {z:.2f})"
                + ("" if self.peaked else "; at the final evaluation the decline does not pass")
            )
        return out


@dataclass(frozen=True)
class RunSummary:
    """Transitions and the PPP curves' landmarks (``curves``: one per logged ΔLL series: the
    unprefixed ones, then each corpus's or prefixed monitor's ``ppp/<name>/delta_ll``).

    ``ppp_first`` / ``ppp_max`` / ``ppp_final`` / ``ppp_peaked`` are those of ``key`` (default
    ``ppp/delta_ll``: with several corpora, their mean).
    """

    transitions: tuple[TransitionEvent, ...]
    curves: tuple[PPPCurve, ...]
    evaluations: int
    config: dict
    key: str = keys.PPP_DELTA_LL

    @property
    def several_corpora(self) -> bool:
        """The run measured PPP on several corpora (``ppp/delta_ll`` is their mean)."""
        return len(self.config.get("corpora") or ()) > 1

    @property
    def _main(self) -> PPPCurve | None:
        return next((c for c in self.curves if c.key == self.key), None)

    @property
    def ppp_first(self) -> PPPPoint | None:
        return self._main.first if self._main else None

    @property
    def ppp_max(self) -> PPPPoint | None:
        return self._main.best if self._main else None

    @property
    def ppp_final(self) -> PPPPoint | None:
        return self._main.final if self._main else None

    @property
    def ppp_peaked(self) -> bool:
        return bool(self._main and self._main.peaked)

    def lines(self) -> list[str]:
        out = []
        if self.transitions:
            for event in self.transitions:
                out.append(f"transition: {event}")
        else:
            out.append("transition: none detected in the watched series")
        cfg = self.config
        if not self.curves:
            out.append("PPP: not measured")
            return out
        tokctrl = any(keys.split_prefix(c.key)[0] == keys.PPP_DELTA_LL_TOKCTRL for c in self.curves)
        out.append(
            "PPP = ΔLL of reading times from adding surprisal (held-out, "
            f"{cfg.get('folds', '?')}-fold CV, {_spillover_words(cfg)}, baseline "
            f"{' + '.join(cfg.get('baseline', ['length', 'log_freq']))}"
            f"{' (+ tokens per word for the controlled curve)' if tokctrl else ''}; "
            f"{cfg.get('corpus', 'corpus')}, {self.evaluations} evaluations)"
        )
        if self.several_corpora:
            out.append(
                "  the mean over corpora is ppp/delta_ll = (1/K) Σ_k ΔLL_k ± √(Σ_k SE_k²)/K; "
                "its paired tests average each corpus's"
            )
        if self.key != keys.PPP_DELTA_LL:
            out.append(f"  the peak is decided on {self.key}")
        for curve in self.curves:
            out.extend(curve.lines())
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def ppp_series(history: RunHistory) -> list[str]:
    """The ΔLL series of a run: ``ppp/delta_ll`` and ``ppp/delta_ll_tokctrl`` first, then the
    prefixed ones (``ppp/<corpus>/delta_ll``…) in the order first logged."""
    found = [k for k in keys.delta_ll_series(history.series) if history.get(k) is not None]
    plain = [k for k in (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL) if k in found]
    return plain + [k for k in found if k not in plain]


def summarize_run(
    history: RunHistory,
    transition_metrics: tuple[str, ...] | None = None,
    *,
    min_z: float = DEFAULT_MIN_Z,
    key: str = keys.PPP_DELTA_LL,
) -> RunSummary:
    """Summarize a run's history; ``transition_metrics`` restricts which events are reported.

    ``min_z``: threshold of the paired tests that call a PPP peak (default 2.0 standard errors).
    ``key``: the ΔLL series whose peak the summary decides on (default ``ppp/delta_ll``, the mean
    over corpora when the run measured several; ``"ppp/<corpus>/delta_ll"`` for one corpus).
    Every ΔLL series of the run gets its own curve and verdict.

    Raises:
        ValueError: ``key`` is not a ΔLL series this history holds (the message lists them).
    """
    series = ppp_series(history)
    if key not in series and key != keys.PPP_DELTA_LL:
        raise ValueError(f"`key` must be a ΔLL series of this run, one of {series}, got {key!r}")
    events = tuple(
        e
        for e in history.transitions
        if transition_metrics is None or e.metric in transition_metrics
    )
    config = next((c for c in history.configs if c.get("monitor") == "PPPMonitor"), {})
    several = len(config.get("corpora") or ()) > 1
    curves = tuple(
        curve
        for series_key in series
        if (curve := _curve(history, series_key, min_z, several)) is not None
    )
    ppp = history.get(key)
    return RunSummary(events, curves, 0 if ppp is None else len(ppp), config, key)


def _curve(history: RunHistory, key: str, min_z: float, several: bool) -> PPPCurve | None:
    ppp = history.get(key)
    if ppp is None:
        return None
    se = history.get(keys.se_key(key))
    se_by_step = dict(zip(se["step"], se["value"], strict=True)) if se is not None else {}

    def point(i: int) -> PPPPoint:
        row = ppp.iloc[i]
        step = int(row["step"])
        tokens = None if pd.isna(row["tokens"]) else int(row["tokens"])
        return PPPPoint(
            step, tokens, float(row["value"]), float(se_by_step.get(step, float("nan")))
        )

    best = int(ppp["value"].to_numpy().argmax())
    first, top, final = point(0), point(best), point(len(ppp) - 1)
    decline_key, decline_se_key, rise_key, rise_se_key = keys.paired_keys(key)
    decline = _last_paired(history, decline_key, decline_se_key, final.step)
    rise = _last_paired(history, rise_key, rise_se_key, final.step)
    peaked, verdict = _verdict(first, top, final, decline, rise, min_z)
    confirmed = [p for p in history.peaks if p.metric == key and p.kind == "confirmed"]
    monitor_peak = confirmed[-1] if confirmed else None
    label = curve_label(key, several_corpora=several)
    return PPPCurve(
        key, first, top, final, decline, rise, min_z, peaked, verdict, monitor_peak, label
    )


def _last_paired(history: RunHistory, key: str, se_key: str, step: int) -> PairedDifference | None:
    """The paired value logged at ``step`` (the final evaluation), or None if not logged."""
    values, ses = history.get(key), history.get(se_key)
    if values is None or ses is None:
        return None
    value = values[values["step"] == step]["value"]
    se = ses[ses["step"] == step]["value"]
    if value.empty or se.empty:
        return None
    return PairedDifference(float(value.iloc[-1]), float(se.iloc[-1]))


def _verdict(first, top, final, decline, rise, min_z) -> tuple[bool, str]:
    """(peaked, the reason in words), from the paired tests at the final evaluation."""
    if top.step == first.step:
        return False, (
            "no PPP peak: the highest value is the first one; PPP never rose above its value at "
            "the first evaluation (at random init, surprisal tracks subword tokens per word; see "
            "docs/ppp.md on control_tokens)"
        )
    if top.step == final.step:
        return False, "no PPP peak: the highest value is the last one (still rising)"
    if decline is None or rise is None:
        return False, (
            "no PPP peak called: this history has no paired test (recorded before phasewatch 0.2 "
            "or without PPPMonitor); the decline cannot be tested"
        )
    if rise.z < min_z:
        return (
            False,
            f"no PPP peak: the rise before the highest value, {rise}, is below z = {min_z:g}",
        )
    if decline.z < min_z:
        return False, (
            f"no PPP peak: the decline since the highest value, {decline}, is below z = {min_z:g}"
        )
    return True, (
        f"PPP peaked at step {top.step}: rise before it {rise}, decline after it to the final "
        f"evaluation {decline} (both >= z = {min_z:g})"
    )


def _spillover_words(config: dict) -> str:
    """``"spillover 4 = current + 4 previous words"``, from a run's PPP config record.

    A config with ``spillover_meaning`` counts previous words; one without it was written by
    phasewatch 0.1, whose ``spillover`` counted the current word too.
    """
    spillover = config.get("spillover")
    if isinstance(spillover, dict):  # several corpora, each its own
        meanings = config.get("spillover_meaning") or {}
        return "spillover " + ", ".join(
            f"{name} {s} = {meanings.get(name, '?')}" for name, s in spillover.items()
        )
    if not isinstance(spillover, int) or isinstance(spillover, bool):
        return f"spillover {spillover if spillover is not None else '?'}"
    if "spillover_meaning" in config:
        return f"spillover {spillover} = {config['spillover_meaning']}"
    return (
        f"spillover {spillover} as phasewatch 0.1 counted it = current + {spillover - 1} previous "
        "words"
    )

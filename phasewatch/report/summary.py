"""The run summary: what happened, computed from the history, never written in."""

from __future__ import annotations

from dataclasses import dataclass

from phasewatch.detect import TransitionEvent
from phasewatch.report.history import RunHistory

PPP_KEY, PPP_SE_KEY = "ppp/delta_ll", "ppp/delta_ll_se"


@dataclass(frozen=True)
class PPPPoint:
    """One PPP evaluation: ΔLL (nats/word) ± SE at a step."""

    step: int
    tokens: int
    delta_ll: float
    se: float

    def __str__(self) -> str:
        return (
            f"{self.delta_ll:+.4f} ± {self.se:.4f} nats/word at step {self.step} "
            f"({self.tokens:,} tokens)"
        )


@dataclass(frozen=True)
class RunSummary:
    """Transitions and the PPP curve's landmarks.

    ``ppp_peaked`` is True only when PPP rose to its highest value (not at the first evaluation),
    that value came before the last evaluation, and the final PPP lies more than one SE (of the
    peak value) below it: a rise, then a fall. Otherwise the run shows no PPP peak, and
    :meth:`lines` says which part is missing.
    """

    transitions: tuple[TransitionEvent, ...]
    ppp_max: PPPPoint | None
    ppp_final: PPPPoint | None
    ppp_first: PPPPoint | None
    ppp_peaked: bool
    evaluations: int
    config: dict

    def lines(self) -> list[str]:
        out = []
        if self.transitions:
            for event in self.transitions:
                out.append(f"transition: {event}")
        else:
            out.append("transition: none detected in the watched series")
        cfg = self.config
        if self.ppp_max is None:
            out.append("PPP: not measured")
            return out
        out.append(
            "PPP = ΔLL of reading times from adding surprisal (held-out, "
            f"{cfg.get('folds', '?')}-fold CV, {_spillover_words(cfg.get('spillover'))}, baseline "
            f"{' + '.join(cfg.get('baseline', ['length', 'log_freq']))}; "
            f"{cfg.get('corpus', 'corpus')}, {self.evaluations} evaluations)"
        )
        out.append(f"  first: {self.ppp_first}")
        if self.ppp_peaked:
            out.append(f"  peak:  {self.ppp_max}")
        elif self.ppp_max.step == self.ppp_first.step:
            out.append(
                f"  no PPP peak: the highest value is the first one, {self.ppp_max}; PPP never "
                "rose above its value at the first evaluation (at random init, surprisal tracks "
                "subword tokens per word; see docs/ppp.md on control_tokens)"
            )
        else:
            out.append(
                f"  no PPP peak: the highest value, {self.ppp_max}, is not followed by a decline "
                "of more than 1 SE"
            )
        out.append(f"  final: {self.ppp_final}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def summarize_run(
    history: RunHistory, transition_metrics: tuple[str, ...] | None = None
) -> RunSummary:
    """Summarize a run's history; ``transition_metrics`` restricts which events are reported."""
    events = tuple(
        e
        for e in history.transitions
        if transition_metrics is None or e.metric in transition_metrics
    )
    ppp, se = history.get(PPP_KEY), history.get(PPP_SE_KEY)
    config = next((c for c in history.configs if c.get("monitor") == "PPPMonitor"), {})
    if ppp is None:
        return RunSummary(events, None, None, None, False, 0, config)
    se_by_step = dict(zip(se["step"], se["value"], strict=True)) if se is not None else {}

    def point(i: int) -> PPPPoint:
        row = ppp.iloc[i]
        step = int(row["step"])
        return PPPPoint(
            step, int(row["tokens"]), float(row["value"]), float(se_by_step.get(step, float("nan")))
        )

    best = int(ppp["value"].to_numpy().argmax())
    first, top, final = point(0), point(best), point(len(ppp) - 1)
    peaked = 0 < best < len(ppp) - 1 and final.delta_ll < top.delta_ll - top.se
    return RunSummary(events, top, final, first, bool(peaked), len(ppp), config)


def _spillover_words(spillover: object) -> str:
    """``"spillover 4 = current + 4 previous words"`` (the count of previous words)."""
    if not isinstance(spillover, int) or isinstance(spillover, bool):
        return f"spillover {spillover if spillover is not None else '?'}"
    if spillover == 0:
        return "spillover 0 = current word only"
    return f"spillover {spillover} = current + {spillover} previous word{'s' * (spillover != 1)}"

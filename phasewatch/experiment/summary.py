"""What the causal experiment measured: the transition in each run and paired ΔLL differences.

At every step both runs measured PPP, the paired difference of per-word ΔLL between the runs
(:func:`phasewatch.measures.paired.paired_difference`, nats/word):

    d_i = ΔLL_i(regularized) − ΔLL_i(baseline),   mean ± SD(d_i)/√n,

over the words both evaluations used (fold ids are fixed per word, so the two runs' ``ΔLL_i``
come from the same split). The verdicts are stated whatever the outcome: transition delayed,
suppressed, not delayed, or absent; PPP higher, lower, or not distinguishable (|z| < ``min_z``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from phasewatch import keys
from phasewatch.detect.events import PairedDifference
from phasewatch.detect.peak import DEFAULT_MIN_Z
from phasewatch.measures.paired import paired_difference
from phasewatch.report.history import RunHistory

#: ΔLL series compared between the runs, in print order.
COMPARED_SERIES = (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL)


@dataclass(frozen=True)
class StepDifference:
    """Paired ΔLL difference (regularized − baseline, nats/word) of one series at one step."""

    series: str
    step: int
    difference: PairedDifference

    @property
    def z(self) -> float:
        """``mean / se`` of the paired difference."""
        return self.difference.z


def paired_between_runs(
    baseline: dict[str, dict[int, pd.Series]],
    regularized: dict[str, dict[int, pd.Series]],
    series: tuple[str, ...] = COMPARED_SERIES,
) -> list[StepDifference]:
    """Paired differences ``regularized − baseline`` at every step both runs measured.

    As input: each run's ``{series: {step: per-word ΔLL (nats)}}``
    (:func:`~phasewatch.experiment.keep_per_word`).
    As output: one :class:`StepDifference` per series and matched step, in step order.
    """
    rows = []
    for name in series:
        a, b = regularized.get(name, {}), baseline.get(name, {})
        for step in sorted(set(a) & set(b)):
            rows.append(StepDifference(name, step, paired_difference(a[step], b[step])))
    return rows


@dataclass(frozen=True)
class RunOutcome:
    """One run's induction curve: its transition step (None: none detected), max and final;
    ``ppp_final``: ΔLL series → (last value, its SE), nats/word."""

    label: str
    transition_step: int | None
    induction_max: float | None
    induction_max_step: int | None
    induction_final: float | None
    ppp_final: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, label: str, history: RunHistory) -> RunOutcome:
        curve = history.get(keys.HEADS_INDUCTION_MAX)
        events = [e for e in history.transitions if e.metric == keys.HEADS_INDUCTION_MAX]
        step = events[0].step if events else None
        ppp = {}
        for series in COMPARED_SERIES:
            values, se = history.get(series), history.get(keys.se_key(series))
            if values is not None and se is not None:
                ppp[series] = (float(values["value"].iloc[-1]), float(se["value"].iloc[-1]))
        if curve is None:
            return cls(label, step, None, None, None, ppp)
        top = curve.loc[curve["value"].idxmax()]
        final = float(curve["value"].iloc[-1])
        return cls(label, step, float(top["value"]), int(top["step"]), final, ppp)


@dataclass(frozen=True)
class ExperimentSummary:
    """The printed summary: both runs' transitions, verdicts, and the paired differences."""

    baseline: RunOutcome
    regularized: RunOutcome
    weight: float
    differences: list[StepDifference] = field(default_factory=list)
    min_z: float = DEFAULT_MIN_Z

    @property
    def transition_verdict(self) -> str:
        b, r = self.baseline.transition_step, self.regularized.transition_step
        bound = (
            f"induction max stayed <= {self.regularized.induction_max:.3f} for the whole run"
            if self.regularized.induction_max is not None
            else "induction not measured"
        )
        if b is None and r is None:
            return (
                "no transition in either run: the recipe did not show one here, so this run "
                f"cannot say what the regularizer does to it ({bound} with it)"
            )
        if b is not None and r is None:
            return f"suppressed: the baseline's transition at step {b} has no counterpart ({bound})"
        if b is None:
            return f"no transition in the baseline, one at step {r} with the regularizer"
        if r > b:
            return f"delayed by {r - b} steps (baseline step {b}, regularized step {r})"
        return f"not delayed (baseline step {b}, regularized step {r})"

    def ppp_verdict(self, series: str = keys.PPP_DELTA_LL) -> str:
        rows = [d for d in self.differences if d.series == series]
        if not rows:
            return f"{series}: not compared (no matched evaluations)"
        last = rows[-1]
        d = last.difference
        if abs(last.z) < self.min_z:
            word = f"not distinguishable (|z| = {abs(last.z):.1f} < {self.min_z:g})"
        else:
            word = "higher" if d.mean > 0 else "lower"
            word = f"{word} with the regularizer (z = {last.z:.1f})"
        return (
            f"{series} at the last matched step {last.step}: {word}; "
            f"regularized − baseline = {d.mean:+.5f} ± {d.se:.5f} nats/word (n = {d.n} words)"
        )

    def __str__(self) -> str:
        lines = [
            f"causal experiment: the same seed twice, without and with the copying regularizer "
            f"(λ = {self.weight:g})",
        ]
        for run in (self.baseline, self.regularized):
            at = "none detected" if run.transition_step is None else f"step {run.transition_step}"
            top = (
                "not measured"
                if run.induction_max is None
                else f"max {run.induction_max:.3f} at step {run.induction_max_step}, "
                f"final {run.induction_final:.3f}"
            )
            lines.append(f"  {run.label:<12} induction transition: {at}; induction score {top}")
            for series, (value, se) in run.ppp_final.items():
                lines.append(f"  {'':<12} {series} at the end: {value:.5f} ± {se:.5f} nats/word")
        lines.append(f"transition: {self.transition_verdict}")
        for series in COMPARED_SERIES:
            lines.append(f"PPP: {self.ppp_verdict(series)}")
        if self.differences:
            lines.append(
                "paired ΔLL differences, regularized − baseline (nats/word, ± paired SE; "
                "same words, same folds):"
            )
            lines.append(f"  {'step':>6}  " + "  ".join(f"{s:>28}" for s in COMPARED_SERIES))
            by_step: dict[int, dict[str, StepDifference]] = {}
            for row in self.differences:
                by_step.setdefault(row.step, {})[row.series] = row
            for step, row in sorted(by_step.items()):
                cells = []
                for s in COMPARED_SERIES:
                    d = row[s].difference if s in row else None
                    cell = "-" if d is None else f"{d.mean:+.2e} ± {d.se:.1e} (z {row[s].z:+.1f})"
                    cells.append(f"{cell:>28}")
                lines.append(f"  {step:>6}  " + "  ".join(cells))
        return "\n".join(lines)

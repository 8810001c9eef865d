"""Typed events emitted by the detectors: plain data, serialisable, readable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class TransitionEvent:
    """An abrupt, sustained change of a monitored series (a phase transition).

    Rule ``"abrupt"``: ``step`` and ``tokens`` are those of the first confirming evaluation past
    half the change, ``confirmed_step``/``confirmed_tokens`` those of the evaluation that confirmed
    it (the alert); ``before`` is the level the reference predicted, ``after`` the mean of the
    confirming evaluations from ``step`` on, ``threshold`` the change that was required (metric
    units). Rule
    ``"threshold"``: ``step`` is the first evaluation past ``threshold`` (the level), ``before`` the
    previous evaluation's value, ``after`` this one's. ``heads`` lists the (layer, head) pairs that
    carry the change, when the series is a head score.
    """

    step: int
    metric: str
    before: float
    after: float
    threshold: float
    direction: str = "rise"
    tokens: int | None = None
    confirmed_step: int | None = None
    heads: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    confirmed_tokens: int | None = None
    rule: str = "abrupt"

    @property
    def change(self) -> float:
        return self.after - self.before

    def to_dict(self) -> dict:
        d = asdict(self)
        d["heads"] = [list(h) for h in self.heads]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TransitionEvent:
        d = dict(d)
        d["heads"] = tuple(tuple(h) for h in d.get("heads", ()))
        return cls(**d)

    def __str__(self) -> str:
        tokens = f" ({self.tokens:,} tokens)" if self.tokens is not None else ""
        heads = ""
        if self.heads:
            heads = "; heads " + ", ".join(f"L{layer}H{head}" for layer, head in self.heads)
        if self.rule == "threshold":
            side = "above" if self.direction == "rise" else "below"
            return (
                f"phase transition in {self.metric} at step {self.step}{tokens}: first "
                f"evaluation {side} {self.threshold:.4g} ({self.before:.4g} -> {self.after:.4g})"
                f"{heads}"
            )
        return (
            f"phase transition in {self.metric} at step {self.step}{tokens}: "
            f"{self.before:.4g} -> {self.after:.4g} (mean {self.direction} of "
            f"{abs(self.change):.4g} over the confirming evaluations; entry threshold "
            f"{self.threshold:.4g}){heads}"
        )


@dataclass(frozen=True)
class PeakEvent:
    """The best value so far of a monitored series, or its confirmation as the peak.

    ``kind`` is ``"new_best"`` when the (smoothed) value improved by at least ``min_delta``, and
    ``"confirmed"`` once :class:`~phasewatch.detect.PeakTracker`'s conditions held (patience,
    training, a rise before the best, a significant paired decline). For a confirmed peak,
    ``decline`` ± ``decline_se`` is the paired decline since the best and ``rise`` ± ``rise_se`` the
    paired rise of the best over the first evaluation (metric units, e.g. nats/word), when the
    series has per-word values; ``min_z`` the threshold they passed; ``confirmed_step`` the step of
    the evaluation that confirmed it.
    """

    kind: str
    metric: str
    step: int
    value: float
    smoothed: float
    tokens: int | None = None
    evaluations_since: int = 0
    decline: float | None = None
    decline_se: float | None = None
    rise: float | None = None
    rise_se: float | None = None
    min_z: float | None = None
    confirmed_step: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PeakEvent:
        return cls(**d)

    def __str__(self) -> str:
        tokens = f" ({self.tokens:,} tokens)" if self.tokens is not None else ""
        if self.kind != "confirmed":
            return f"new best {self.metric} at step {self.step}{tokens}: {self.value:.4g}"
        at = "" if self.confirmed_step is None else f" (confirmed at step {self.confirmed_step})"
        text = (
            f"{self.metric} peaked at step {self.step}{tokens}: {self.value:.4g} "
            f"(smoothed {self.smoothed:.4g}); no improvement in {self.evaluations_since} "
            f"evaluations since{at}"
        )
        if self.decline is None:
            return text + "; no per-word values, so no paired test: confirmed by patience alone"
        return (
            text + f"; paired decline since the peak {self.decline:.4g} ± {self.decline_se:.2g} "
            f"(z = {z_score(self.decline, self.decline_se):.2f} >= {self.min_z:g})"
            + (
                ""
                if self.rise is None
                else f", rise before it {self.rise:.4g} ± {self.rise_se:.2g} "
                f"(z = {z_score(self.rise, self.rise_se):.2f})"
            )
        )


def z_score(mean: float, se: float | None) -> float:
    """``mean / se``; ±inf for a zero or missing SE with a non-zero mean, 0 for 0 ± 0."""
    if se is not None and se > 0:
        return mean / se
    return float("inf") if mean > 0 else float("-inf") if mean < 0 else 0.0


@dataclass(frozen=True)
class PairedDifference:
    """``mean`` ± ``se`` (nats/word) of ``ΔLL_i(a) − ΔLL_i(b)`` between two evaluations, paired
    word by word over ``n`` shared words (``None`` when only the logged mean and SE are known, as
    in a run's history); ``z = mean / se``. Computed by
    :func:`phasewatch.measures.paired.paired_difference`; read back by the run summary.
    """

    mean: float
    se: float
    n: int | None = None

    @property
    def z(self) -> float:
        """``mean / se``; ±inf when the SE is 0 and the mean is not, 0 when both are."""
        return z_score(self.mean, self.se)

    def __str__(self) -> str:
        over = "" if self.n is None else f" over {self.n:,} words"
        return f"{self.mean:.4f} ± {self.se:.4f} nats/word (paired{over}, z = {self.z:.2f})"

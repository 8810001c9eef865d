"""Typed events emitted by the detectors: plain data, serialisable, readable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class TransitionEvent:
    """An abrupt, sustained change of a monitored series (a phase transition).

    ``step`` and ``tokens`` are those of the first evaluation past the threshold; ``before`` is the
    series' level before the change (median of the baseline window), ``after`` the mean of the
    evaluations that confirmed it; ``threshold`` the change that was required. ``heads`` lists the
    (layer, head) pairs that carry the change, when the series is a head score.
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
    ``"confirmed"`` once ``patience`` evaluations passed without improvement.
    """

    kind: str
    metric: str
    step: int
    value: float
    smoothed: float
    tokens: int | None = None
    evaluations_since: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        tokens = f" ({self.tokens:,} tokens)" if self.tokens is not None else ""
        if self.kind == "confirmed":
            return (
                f"{self.metric} peaked at step {self.step}{tokens}: {self.value:.4g} "
                f"(smoothed {self.smoothed:.4g}); no improvement in {self.evaluations_since} "
                "evaluations since"
            )
        return f"new best {self.metric} at step {self.step}{tokens}: {self.value:.4g}"

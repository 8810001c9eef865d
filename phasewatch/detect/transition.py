"""Online detector of abrupt, sustained changes in a metric series (phase transitions).

Two rules (``rule=``), both applied one evaluation at a time; docs/transition.md has them side by
side with the measured detection rates.

``"abrupt"`` (default) reasons on the log-token axis, so it does not depend on how often the series
is measured. For the evaluation at ``t`` tokens (steps when tokens are unknown):

1. Reference. The evaluations at tokens in ``[t / reference_span**2, t / reference_span]``
   (at least ``min_reference`` of them, else the latest ``min_reference`` at or below
   ``t / reference_span``) predict the level at ``t``: their median, or with ``detrend=True`` their
   values carried along their own slope on the log-token axis. Noise ``sigma``: from the mean
   absolute difference of consecutive evaluations since the reference span began (at least 32
   evaluations when there are; none before 6).
2. Candidate. A value past the prediction, in the watched ``direction``, by at least
   ``threshold = max(min_change, noise_factor * sigma)`` opens a candidate.
3. Confirmation. Every later value must stay ``hysteresis * threshold`` past the prediction until
   the series has been measured at ``confirm_span`` times the candidate's tokens, on at least
   ``confirm`` evaluations, and their mean is past the prediction by the threshold; then one
   :class:`TransitionEvent` fires. A value that falls back cancels the candidate, and its values
   never enter the reference: a single spike never alerts. A candidate still unconfirmed at
   ``reference_span`` times its tokens expires, its values joining the reference.
4. Placement. The event's ``step``/``tokens`` are those of the confirming evaluation from which the
   series stayed past half the largest change seen: inside the rise, not at its foot.
5. Re-arming. The reference restarts after the confirmation, and no new candidate opens until a
   whole reference span lies after it (``t >= reference_span**2`` times the confirming tokens).

``"threshold"`` is Aoyama & Wilcox's (2025) transition point: the first evaluation whose value is
strictly past ``level`` (0.1 of the max prefix-matching score); it fires once.

The detector keeps only plain numbers; ``state_dict``/``load_state_dict`` round-trip it exactly, and
:func:`detect_transitions` applies the very same rule to a whole history offline.
"""

from __future__ import annotations

import logging
import math
import warnings
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from phasewatch.detect.events import TransitionEvent
from phasewatch.detect.reference import (
    NOISE_MIN_DIFFS,
    NOISE_MIN_POINTS,
    noise_sd,
    reference_bounds,
    reference_level,
)

log = logging.getLogger("phasewatch")

RULES = ("abrupt", "threshold")
DIRECTIONS = ("rise", "drop")
#: Format of :meth:`TransitionDetector.state_dict`; 1 was the evaluation-count baseline (<= 0.1.0).
STATE_VERSION = 2


class TransitionDetector:
    """Detect an abrupt, sustained rise (or drop) of one metric, online.

    As input, :meth:`update` takes one evaluation: ``step``, ``value`` (metric units) and
    ``tokens`` (training tokens seen; give them on every update or on none, then steps are the
    axis). As output it returns a :class:`TransitionEvent` when a transition is confirmed.

    Args:
        metric: name of the watched series, copied into events (e.g. ``"heads/induction_max"``).
        rule: ``"abrupt"`` (default: change against a token-span reference) or ``"threshold"``
            (the paper's: first evaluation past ``level``).
        direction: ``"rise"`` or ``"drop"``.
        min_change: smallest change that counts, metric units (default 0.05: a twentieth of the
            attention mass for head scores, so a rise of 0.1 is found).
        noise_factor: the change must also exceed this many noise SDs of the series (default 4).
        reference_span: factor in tokens (> 1) of the reference span and of the gap before the
            current evaluation (default 2: tokens in ``[t/4, t/2]``).
        min_reference: fewest evaluations in the reference (default 3); no candidate before.
        confirm_span: the change must hold until this factor of the candidate's tokens (default
            1.2, >= 1).
        confirm: and over at least this many evaluations, the candidate included (default 2).
        hysteresis: fraction of the threshold the confirming evaluations must keep (default 0.5).
        detrend: predict along the reference's slope on the log-token axis instead of its level
            (for series that drift, such as a falling loss). Default False.
        start_step: evaluations before this step only fill the reference (default 0). Use it to
            skip a loss's initial descent from ln(vocabulary size).
        level: the threshold rule's level, metric units (default 0.1, the paper's).
        window: deprecated (it counted evaluations); sets ``min_reference``.

    Raises:
        ValueError: on an argument out of range, naming it and what it got.

    Example:
        >>> d = TransitionDetector("heads/induction_max")
        >>> values = [0.01] * 20 + [0.8] * 10
        >>> events = [e for s, v in enumerate(values, 1) if (e := d.update(s, v, tokens=s * 100))]
        >>> (events[0].step, events[0].confirmed_step)
        (21, 26)
    """

    def __init__(
        self,
        metric: str,
        *,
        rule: str = "abrupt",
        direction: str = "rise",
        min_change: float = 0.05,
        noise_factor: float = 4.0,
        reference_span: float = 2.0,
        min_reference: int = 3,
        confirm_span: float = 1.2,
        confirm: int = 2,
        hysteresis: float = 0.5,
        detrend: bool = False,
        start_step: int = 0,
        level: float = 0.1,
        window: int | None = None,
    ) -> None:
        if window is not None:
            warnings.warn(
                "`window` is deprecated: the reference is now a span of tokens "
                "(`reference_span`), not a count of evaluations; `window` sets `min_reference`, "
                "the fewest evaluations it may hold",
                DeprecationWarning,
                stacklevel=2,
            )
            min_reference = window
        _check_choice("rule", rule, RULES)
        _check_choice("direction", direction, DIRECTIONS)
        _check(min_change > 0, f"`min_change` must be > 0 (metric units), got {min_change}")
        _check(noise_factor >= 0, f"`noise_factor` must be >= 0, got {noise_factor}")
        _check(reference_span > 1, f"`reference_span` must be > 1 (a factor), got {reference_span}")
        _check(min_reference >= 1, f"`min_reference` must be >= 1 evaluation, got {min_reference}")
        _check(confirm_span >= 1, f"`confirm_span` must be >= 1 (a factor), got {confirm_span}")
        _check(confirm >= 1, f"`confirm` must be >= 1 evaluation, got {confirm}")
        _check(0 <= hysteresis <= 1, f"`hysteresis` must be in [0, 1], got {hysteresis}")
        _check(start_step >= 0, f"`start_step` must be >= 0, got {start_step}")
        _check(math.isfinite(level), f"`level` must be a finite number, got {level}")
        self.metric = metric
        self.rule = rule
        self.direction = direction
        self.min_change = float(min_change)
        self.noise_factor = float(noise_factor)
        self.reference_span = float(reference_span)
        self.min_reference = int(min_reference)
        self.confirm_span = float(confirm_span)
        self.confirm = int(confirm)
        self.hysteresis = float(hysteresis)
        self.detrend = bool(detrend)
        self.start_step = int(start_step)
        self.level = float(level)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen: history, pending candidate and events."""
        self._axis: str | None = None  # "tokens" or "steps", fixed by the first update
        self._points: list[list] = []  # accepted evaluations [step, position, value]
        self._candidate: dict | None = None
        self._armed_from: float | None = None  # position of the last confirmation
        self._last: list | None = None  # threshold rule: previous [step, value]
        self.events: list[TransitionEvent] = []

    @property
    def _sign(self) -> float:
        return 1.0 if self.direction == "rise" else -1.0

    @property
    def pending(self) -> bool:
        """True while a candidate waits for confirmation."""
        return self._candidate is not None

    @property
    def history(self) -> list[tuple[int, float, float]]:
        """The accepted evaluations kept for the reference: ``(step, position, value)``."""
        return [tuple(p) for p in self._points]

    @property
    def pending_step(self) -> int | None:
        """Step of the pending candidate's first evaluation, or None."""
        return None if self._candidate is None else self._candidate["run"][0][0]

    # -- input -------------------------------------------------------------------------------------

    def update(
        self,
        step: int,
        value: float,
        *,
        tokens: int | None = None,
        heads: Sequence[tuple[int, int]] = (),
    ) -> TransitionEvent | None:
        """Feed one evaluation; returns the event when a transition is confirmed, else None.

        Non-finite values are ignored (a failed measurement must not look like a transition).
        """
        value = float(value)
        if not math.isfinite(value):
            return None
        position = self._position(int(step), tokens)
        if self.rule == "threshold":
            return self._update_threshold(int(step), tokens, value, heads)
        tokens = None if tokens is None else int(tokens)
        entry = [int(step), tokens, position, value, [list(h) for h in heads]]
        if self._candidate is not None:
            return self._continue_candidate(entry)
        if step >= self.start_step and self._opens_candidate(entry):
            return self._fire() if self._confirmed() else None
        self._accept(entry)
        return None

    def _position(self, step: int, tokens: int | None) -> int:
        axis = "steps" if tokens is None else "tokens"
        if self._axis is None:
            self._axis = axis
        elif axis != self._axis:
            raise ValueError(
                f"{self.metric}: `tokens` was {'not ' if tokens is None else ''}given at step "
                f"{step} but the series is on the {self._axis} axis; pass `tokens=` on every "
                "update or on none"
            )
        return step if tokens is None else int(tokens)

    # -- the abrupt rule ---------------------------------------------------------------------------

    def _armed(self, position: float) -> bool:
        after = self._armed_from
        return after is None or position / self.reference_span**2 >= after

    def _opens_candidate(self, entry: list) -> bool:
        position, value = entry[2], entry[3]
        if position <= 0 or not self._armed(position):
            return False
        bounds = reference_bounds(self._points, position, self.reference_span, self.min_reference)
        if bounds is None:
            return False
        lo, hi = bounds
        n = len(self._points)
        sigma, diffs = noise_sd(
            self._points, max(0, min(lo, n - NOISE_MIN_POINTS)), n, self.detrend
        )
        if diffs < NOISE_MIN_DIFFS:
            return False
        predicted = reference_level(self._points, lo, hi, position, self.detrend)
        threshold = max(self.min_change, self.noise_factor * sigma)
        if self._sign * (value - predicted) < threshold:
            return False
        self._candidate = {"before": predicted, "threshold": threshold, "run": [entry]}
        return True

    def _confirmed(self) -> bool:
        cand = self._candidate
        run = cand["run"]
        if len(run) < self.confirm or run[-1][2] < self.confirm_span * run[0][2]:
            return False
        mean = sum(e[3] for e in run) / len(run)
        return self._sign * (mean - cand["before"]) >= cand["threshold"]

    def _continue_candidate(self, entry: list) -> TransitionEvent | None:
        cand = self._candidate
        keep = cand["before"] + self._sign * self.hysteresis * cand["threshold"]
        if self._sign * (entry[3] - keep) >= 0:
            cand["run"].append(entry)
            if self._confirmed():
                return self._fire()
            if entry[2] >= self.reference_span * cand["run"][0][2]:
                # Held a whole factor of tokens without a mean change past the threshold: a new
                # level too small to count. Its values become reference like any others.
                self._candidate = None
                for held in cand["run"]:
                    self._accept(held)
            return None
        # Fell back: the candidate was a spike. Its values never enter the reference.
        self._candidate = None
        self._accept(entry)
        return None

    def _accept(self, entry: list) -> None:
        step, _, position, value, _ = entry
        self._points.append([step, position, value])
        # Keep what a later reference can reach: the span below position / span**2 is never used
        # again, except the latest few evaluations a sparse cadence falls back on.
        cut = bisect_left(self._points, position / self.reference_span**2, key=lambda p: p[1])
        drop = cut - max(self.min_reference, NOISE_MIN_POINTS + 1)
        if drop > 0:
            del self._points[:drop]

    def _fire(self) -> TransitionEvent:
        cand, self._candidate = self._candidate, None
        run = cand["run"]
        before = cand["before"]
        # Place the event where the run passed half its largest change and stayed past it.
        half = before + 0.5 * max((e[3] - before for e in run), key=lambda c: self._sign * c)
        below = [i for i, e in enumerate(run) if self._sign * (e[3] - half) < 0]
        first = min(below[-1] + 1, len(run) - 1) if below else 0
        placed = run[first]
        after = sum(e[3] for e in run[first:]) / (len(run) - first)
        last = run[-1]
        event = TransitionEvent(
            step=placed[0],
            metric=self.metric,
            before=before,
            after=after,
            threshold=cand["threshold"],
            direction=self.direction,
            tokens=placed[1],
            confirmed_step=last[0],
            heads=tuple(tuple(h) for h in placed[4]),
            confirmed_tokens=last[1],
            rule=self.rule,
        )
        self.events.append(event)
        self._points = []
        self._armed_from = last[2]
        return event

    # -- the threshold rule (Aoyama & Wilcox, 2025) ------------------------------------------------

    def _update_threshold(self, step, tokens, value, heads) -> TransitionEvent | None:
        previous, self._last = self._last, [step, value]
        if self.events or step < self.start_step or self._sign * (value - self.level) <= 0:
            return None
        event = TransitionEvent(
            step=step,
            metric=self.metric,
            before=value if previous is None else previous[1],
            after=value,
            threshold=self.level,
            direction=self.direction,
            tokens=None if tokens is None else int(tokens),
            confirmed_step=step,
            heads=tuple(tuple(h) for h in heads),
            confirmed_tokens=None if tokens is None else int(tokens),
            rule=self.rule,
        )
        self.events.append(event)
        return event

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "axis": self._axis,
            "points": [list(p) for p in self._points],
            "candidate": None if self._candidate is None else _copy(self._candidate),
            "armed_from": self._armed_from,
            "last": None if self._last is None else list(self._last),
            "events": [e.to_dict() for e in self.events],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output; a phasewatch 0.1.0 state loads converted."""
        version = state.get("version", 1)
        if version > STATE_VERSION:
            raise ValueError(
                f"{self.metric}: detector state format {version} is newer than this phasewatch "
                f"reads ({STATE_VERSION}); upgrade phasewatch to resume from it"
            )
        self.reset()
        self.events = [TransitionEvent.from_dict(e) for e in state["events"]]
        if version == 1:
            self._load_v1()
            return
        self._axis = state["axis"]
        self._points = [list(p) for p in state["points"]]
        self._candidate = None if state["candidate"] is None else _copy(state["candidate"])
        self._armed_from = state["armed_from"]
        self._last = None if state["last"] is None else list(state["last"])

    def _load_v1(self) -> None:
        """Old states counted evaluations without tokens: keep the events, restart the reference."""
        if self.events:
            e = self.events[-1]
            self._armed_from = e.tokens if e.tokens is not None else (e.confirmed_step or e.step)
        log.info(
            "%s: transition-detector state of phasewatch 0.1.0 converted: %d event(s) kept; the "
            "reference (now a span of tokens) restarts from the next evaluation",
            self.metric,
            len(self.events),
        )

    def __repr__(self) -> str:
        if self.rule == "threshold":
            return (
                f"TransitionDetector({self.metric!r}, rule='threshold', "
                f"direction={self.direction!r}, level={self.level}, events={len(self.events)})"
            )
        return (
            f"TransitionDetector({self.metric!r}, direction={self.direction!r}, "
            f"min_change={self.min_change}, noise_factor={self.noise_factor}, "
            f"reference_span={self.reference_span}, confirm_span={self.confirm_span}, "
            f"events={len(self.events)})"
        )


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, f"`{name}` can be {' or '.join(allowed)}, got {value!r}")


def _copy(candidate: dict) -> dict:
    return {
        "before": candidate["before"],
        "threshold": candidate["threshold"],
        "run": [[*e[:4], [list(h) for h in e[4]]] for e in candidate["run"]],
    }


def detect_transitions(
    steps: Iterable[int],
    values: Iterable[float],
    *,
    metric: str = "metric",
    tokens: Iterable[int | None] | None = None,
    **params,
) -> list[TransitionEvent]:
    """Apply :class:`TransitionDetector` to a whole history, offline; same rule, same events.

    ``steps``, ``values`` (metric units) and ``tokens`` are parallel sequences; ``params`` are the
    detector's arguments.
    """
    steps, values = list(steps), list(values)
    if len(steps) != len(values):
        raise ValueError(f"`steps` and `values` differ in length: {len(steps)} vs {len(values)}")
    tokens = [None] * len(steps) if tokens is None else list(tokens)
    if len(tokens) != len(steps):
        raise ValueError(f"`tokens` and `steps` differ in length: {len(tokens)} vs {len(steps)}")
    detector = TransitionDetector(metric, **params)
    for step, value, tok in zip(steps, values, tokens, strict=True):
        detector.update(step, value, tokens=tok)
    return list(detector.events)

"""The text of an alert: one function, the same words in the log, the warning, every logger and
the webhook.

Plain events in, text out (no Lightning): what happened, where (step, tokens), which heads, in
which unit, what the user might do (the checkpoints to go back to) and, in one line, the paper's
finding, stated as theirs.
"""

from __future__ import annotations

import hashlib

from phasewatch import keys
from phasewatch.detect.events import PeakEvent, TransitionEvent, z_score

__all__ = ["PAPER_FINDING", "alert_kind", "alert_text", "event_id"]

#: The paper's finding in one line, stated as theirs (not a measurement of this run).
PAPER_FINDING = (
    "Aoyama & Wilcox (ACL 2025) report that a language model's fit to human reading times (PPP, "
    "nats/word) peaks at the attention-head phase transition, and that training past it makes "
    "the model less humanlike (their finding, not a measurement of this run)."
)


def alert_kind(event: TransitionEvent | PeakEvent) -> str:
    """``"transition"`` or ``"peak"`` (a confirmed peak); ValueError for anything else."""
    if isinstance(event, TransitionEvent):
        return "transition"
    if isinstance(event, PeakEvent) and event.kind == "confirmed":
        return "peak"
    raise ValueError(
        "an alert is made of a TransitionEvent or a confirmed PeakEvent, got "
        f"{getattr(event, 'kind', type(event).__name__)!r}: new bests are not alerts"
    )


def event_id(event: TransitionEvent | PeakEvent) -> str:
    """A stable id of the event: the first 16 hex digits of SHA-256 of kind, metric and step.

    The same event detected again (a rank, a resumed run, a retry) has the same id, so a
    receiver can drop a repeat.
    """
    text = f"{alert_kind(event)}|{event.metric}|{event.step}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_text(
    event: TransitionEvent | PeakEvent,
    *,
    checkpoint: str | None = None,
    peak_checkpoint: str | None = None,
    peak_step: int | None = None,
) -> str:
    """The alert for a transition or a confirmed peak, in a few lines of plain text.

    Args:
        event: a :class:`TransitionEvent`, or a :class:`PeakEvent` of kind ``"confirmed"``.
        checkpoint: the checkpoint saved at this event (``TransitionMonitor(checkpoint=True)``'s
            file; for a peak, the peak's weights), if any.
        peak_checkpoint: for a transition, the best-PPP checkpoint so far (PeakMonitor's), if any.
        peak_step: the step that ``peak_checkpoint`` holds.

    Numbers are in the metric's unit, named after the key (:func:`phasewatch.keys.unit`).
    """
    if alert_kind(event) == "transition":
        lines = [_transition_line(event), *_heads_line(event)]
        todo = _transition_todo(event, checkpoint, peak_checkpoint, peak_step)
    else:
        lines = [_peak_line(event)]
        todo = _peak_todo(event, checkpoint)
    return "\n".join([*lines, "What you might do: " + todo, PAPER_FINDING])


def _metric(metric: str) -> str:
    unit = keys.unit(metric)
    return metric if unit is None else f"{metric} ({unit})"


def _where(step: int, tokens: int | None) -> str:
    return f"step {step:,}" + ("" if tokens is None else f" ({tokens:,} tokens)")


def _transition_line(event: TransitionEvent) -> str:
    where = _where(event.step, event.tokens)
    confirmed = ""
    if event.confirmed_step is not None and event.confirmed_step != event.step:
        confirmed = f", confirmed at {_where(event.confirmed_step, event.confirmed_tokens)}"
    if event.rule == "threshold":
        side = "above" if event.direction == "rise" else "below"
        what = (
            f"first evaluation {side} the level {event.threshold:.4g} "
            f"({event.before:.4g} -> {event.after:.4g})"
        )
    else:
        what = (
            f"{event.before:.4g} -> {event.after:.4g}, an abrupt {event.direction} of "
            f"{abs(event.change):.4g} that held (required: {event.threshold:.4g})"
        )
    return f"phasewatch: phase transition in {_metric(event.metric)} at {where}{confirmed}: {what}."


def _heads_line(event: TransitionEvent) -> list[str]:
    if not event.heads:
        return []
    heads = ", ".join(f"L{layer}H{head}" for layer, head in event.heads)
    return [f"Heads (layer, head from 0): {heads}."]


def _transition_todo(
    event: TransitionEvent,
    checkpoint: str | None,
    peak_checkpoint: str | None,
    peak_step: int | None,
) -> str:
    steps = [f"compare PPP ({keys.PPP_DELTA_LL}, nats/word) before and after step {event.step:,}"]
    if peak_checkpoint:
        at = "" if peak_step is None else f" (step {peak_step:,})"
        steps.append(f"the best-PPP checkpoint so far is {peak_checkpoint}{at}")
    if checkpoint:
        steps.append(f"the weights at this transition are saved at {checkpoint}")
    else:
        steps.append("TransitionMonitor(checkpoint=True) would keep the weights at a transition")
    return "; ".join(steps) + "."


def _peak_line(event: PeakEvent) -> str:
    text = (
        f"phasewatch: {_metric(event.metric)} peaked at {_where(event.step, event.tokens)}: "
        f"{event.value:.4g} (smoothed {event.smoothed:.4g})"
    )
    if event.confirmed_step is not None:
        text += (
            f"; confirmed at step {event.confirmed_step:,} after {event.evaluations_since} "
            "evaluations without a new best"
        )
    if event.decline is None:
        return text + "; no per-word values, so no paired test: confirmed by patience alone."
    text += (
        f"; paired decline since the peak {event.decline:.4g} ± {event.decline_se:.2g} "
        f"(z = {z_score(event.decline, event.decline_se):.2f} >= {event.min_z:g})"
    )
    if event.rise is not None:
        text += (
            f", rise before it {event.rise:.4g} ± {event.rise_se:.2g} "
            f"(z = {z_score(event.rise, event.rise_se):.2f})"
        )
    return text + "."


def _peak_todo(event: PeakEvent, checkpoint: str | None) -> str:
    if checkpoint:
        return (
            f"the weights of step {event.step:,} are saved at {checkpoint}: keep them, or let "
            "PeakMonitor(restore_peak=True) load them at the end of training; "
            "PeakMonitor(stop=True) stops at a confirmed peak."
        )
    return (
        "no checkpoint of the peak was kept (PeakMonitor(save_peak=True) keeps one); "
        "PeakMonitor(stop=True) stops at a confirmed peak."
    )

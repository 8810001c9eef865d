"""The alert text and the webhook body: what happened, where, which heads, units, what to do."""

from __future__ import annotations

import hashlib

import pytest

from phasewatch import keys
from phasewatch.callbacks.notify import webhook_body
from phasewatch.detect.alert_text import PAPER_FINDING, alert_text, event_id
from phasewatch.detect.events import PeakEvent, TransitionEvent


def _transition(**changes):
    fields = dict(
        step=2600,
        metric=keys.HEADS_INDUCTION_MAX,
        before=0.05,
        after=0.42,
        threshold=0.05,
        tokens=8_320_000,
        confirmed_step=2800,
        confirmed_tokens=8_960_000,
        heads=((1, 0), (1, 3)),
    )
    return TransitionEvent(**{**fields, **changes})


def _peak(**changes):
    fields = dict(
        kind="confirmed",
        metric=keys.PPP_DELTA_LL,
        step=1400,
        value=0.0276,
        smoothed=0.0275,
        tokens=4_480_000,
        evaluations_since=7,
        decline=0.0021,
        decline_se=0.0008,
        rise=0.013,
        rise_se=0.003,
        min_z=2.0,
        confirmed_step=2100,
    )
    return PeakEvent(**{**fields, **changes})


def test_transition_alert_says_what_where_which_heads_unit_and_what_to_do():
    event = _transition()
    text = alert_text(
        event, checkpoint="/r/transition.ckpt", peak_checkpoint="/r/ppp_peak.ckpt", peak_step=1400
    )
    first = text.splitlines()[0]
    assert "phase transition in heads/induction_max (attention score in [0, 1])" in first
    assert "at step 2,600 (8,320,000 tokens), confirmed at step 2,800 (8,960,000 tokens)" in first
    assert f"0.05 -> 0.42, an abrupt rise of {0.42 - 0.05:.4g}" in first  # 0.37
    assert "Heads (layer, head from 0): L1H0, L1H3." in text
    assert "best-PPP checkpoint so far is /r/ppp_peak.ckpt (step 1,400)" in text
    assert "weights at this transition are saved at /r/transition.ckpt" in text
    assert "ppp/delta_ll, nats/word" in text
    assert text.endswith(PAPER_FINDING) and "Aoyama & Wilcox" in PAPER_FINDING
    assert "their finding" in PAPER_FINDING


def test_transition_alert_without_heads_or_checkpoints_says_how_to_keep_one():
    text = alert_text(_transition(heads=(), metric="val/score", rule="threshold", threshold=0.1))
    assert "Heads" not in text and "best-PPP checkpoint" not in text
    assert "in val/score at step" in text  # a user's key: no unit is made up
    assert "first evaluation above the level 0.1 (0.05 -> 0.42)" in text
    assert "TransitionMonitor(checkpoint=True)" in text


def test_peak_alert_has_the_paired_test_its_z_and_the_checkpoint():
    event = _peak()
    text = alert_text(event, checkpoint="/r/ppp_peak.ckpt")
    assert "ppp/delta_ll (nats/word) peaked at step 1,400 (4,480,000 tokens): 0.0276" in text
    assert "confirmed at step 2,100 after 7 evaluations" in text
    assert f"(z = {0.0021 / 0.0008:.2f} >= 2)" in text  # 2.62, computed here
    assert f"(z = {0.013 / 0.003:.2f})" in text  # the rise, 4.33
    assert "the weights of step 1,400 are saved at /r/ppp_peak.ckpt" in text
    assert PAPER_FINDING in text


def test_peak_alert_without_paired_values_or_checkpoint_says_so():
    text = alert_text(_peak(decline=None, decline_se=None, rise=None, rise_se=None))
    assert "confirmed by patience alone" in text
    assert "no checkpoint of the peak was kept (PeakMonitor(save_peak=True)" in text


def test_a_new_best_is_not_an_alert():
    with pytest.raises(ValueError, match="new bests are not alerts"):
        alert_text(_peak(kind="new_best"))


def test_event_id_is_a_hash_of_kind_metric_and_step_only():
    expected = hashlib.sha256(b"transition|heads/induction_max|2600").hexdigest()[:16]
    assert event_id(_transition()) == expected
    assert event_id(_transition(before=0.1, heads=())) == expected  # same event, other numbers
    assert event_id(_transition(step=2700)) != expected
    assert event_id(_transition(metric="loss")) != expected
    assert event_id(_peak(step=2600, metric=keys.HEADS_INDUCTION_MAX)) != expected


def test_webhook_body_has_slack_text_and_structured_fields():
    event = _transition()
    body = webhook_body(event, "the text")
    assert body["text"] == "the text"
    assert body["id"] == event_id(event) and body["kind"] == "transition"
    assert (body["metric"], body["step"], body["tokens"]) == ("heads/induction_max", 2600, 8320000)
    assert body["heads"] == [[1, 0], [1, 3]] and body["confirmed_step"] == 2800
    assert body["unit"] == "attention score in [0, 1]"
    peak = webhook_body(_peak(), "t")
    assert (peak["kind"], peak["heads"], peak["event"]["decline"]) == ("peak", [], 0.0021)

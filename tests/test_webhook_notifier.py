"""WebhookNotifier against a local HTTP server: one POST per event, no re-send on a resume or a
retry, a server that is down or slow never holds training up, and the URL is never shown."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader

from phasewatch.callbacks import (
    PeakMonitor,
    PhasewatchMonitor,
    TransitionMonitor,
    WebhookNotifier,
    WebhookWarning,
)
from phasewatch.callbacks.transition import PhaseTransitionWarning
from phasewatch.detect.events import TransitionEvent

SECRET = "/services/T0/B0/s3cr3tToken?key=hush"


class Hook:
    """A webhook on 127.0.0.1: records each POST's JSON body, answers ``statuses`` in turn
    (then 200), after ``delay`` seconds."""

    def __init__(self, statuses=(), delay=0.0):
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay)
                hook.bodies.append(body)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a slow handler does not hold the test's end
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Planted(PhasewatchMonitor):
    """Two planted series: a jump at step 20 (a transition) and a peak at step 10."""

    produces = ("planted/score", "planted/ppp")

    def __init__(self):
        super().__init__(every_n_steps=2, log_spaced=False)

    def measure(self, trainer, pl_module):
        step = trainer.global_step
        score = 0.01 if step < 20 else 0.8
        return {"planted/score": score, "planted/ppp": 0.05 - 0.0001 * (step - 10) ** 2}, {}


def _callbacks(url, **notifier):
    return [
        Planted(),
        TransitionMonitor(watch={"planted/score": {}}, checkpoint=True),
        PeakMonitor("planted/ppp", patience=3, min_steps=0),
        WebhookNotifier(url, **{"timeout": 2.0, "retries": 1, "backoff": 0.05, **notifier}),
    ]


def _fit(tmp_path, callbacks, max_steps=30, ckpt_path=None):
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=max_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhaseTransitionWarning)
        trainer.fit(TinyLM(), random_token_loader(300, n=800), ckpt_path=ckpt_path)
    return trainer


def test_one_post_per_event_with_the_text_every_channel_has(tmp_path, hook, caplog):
    callbacks = _callbacks(hook.url)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, callbacks)
    transition, peak = callbacks[1], callbacks[2]
    assert [b["kind"] for b in hook.bodies] == ["peak", "transition"]  # peak at 10 confirmed at 16
    by_kind = {b["kind"]: b for b in hook.bodies}
    event = transition.events[0]
    sent = by_kind["transition"]
    assert (sent["step"], sent["confirmed_step"], sent["metric"]) == (20, 24, "planted/score")
    assert sent["tokens"] == 20 * 8 * 32 and sent["event"] == event.to_dict()
    # the text is the one the log got, and it names the checkpoints
    assert sent["text"] in caplog.text and by_kind["peak"]["text"] in caplog.text
    assert str(Path(transition.checkpoints[0]).absolute()) in sent["text"]
    assert f"the best-PPP checkpoint so far is {peak.peak_path} (step 10)" in sent["text"]
    assert f"saved at {peak.peak_path}" in by_kind["peak"]["text"]
    assert callbacks[3].sent == {b["id"] for b in hook.bodies} and len(callbacks[3].sent) == 2


def test_a_resume_from_the_transition_checkpoint_does_not_send_again(tmp_path, hook):
    # The transition checkpoint is written right after the alert is queued: its state must
    # already count the alert as sent.
    first = _callbacks(hook.url)
    _fit(tmp_path, first)
    assert len(hook.bodies) == 2
    resumed = _callbacks(hook.url)
    _fit(tmp_path / "resumed", resumed, max_steps=40, ckpt_path=first[1].checkpoints[0])
    assert len(hook.bodies) == 2
    assert resumed[3].sent == first[3].sent


def test_an_alert_the_server_never_got_is_sent_by_the_resumed_run(tmp_path, hook):
    down = f"http://127.0.0.1:{_closed_port()}{SECRET}"
    first = _callbacks(down, retries=0)
    with pytest.warns(WebhookWarning):
        _fit(tmp_path, first)
    resumed = _callbacks(hook.url)
    _fit(tmp_path / "resumed", resumed, max_steps=40, ckpt_path=first[1].checkpoints[0])
    assert sorted(b["kind"] for b in hook.bodies) == ["peak", "transition"]  # once each
    assert resumed[3].sent == {b["id"] for b in hook.bodies}


def test_a_server_that_is_down_warns_naming_the_host_only(tmp_path, caplog):
    port = _closed_port()
    url = f"http://user:pw@127.0.0.1:{port}{SECRET}"
    callbacks = _callbacks(url)
    with (
        caplog.at_level(logging.WARNING, logger="phasewatch"),
        pytest.warns(WebhookWarning, match=f"2 alert\\(s\\) not delivered to 127.0.0.1:{port}"),
    ):
        trainer = _fit(tmp_path, callbacks)
    assert trainer.global_step == 30  # training finished
    assert f"could not be delivered to 127.0.0.1:{port}" in caplog.text
    shown = caplog.text + repr(callbacks[3]) + json.dumps(callbacks[3].state_dict())
    for secret in ("s3cr3tToken", "hush", "/services", "pw@"):
        assert secret not in shown


def test_a_slow_server_holds_training_up_no_longer_than_the_flush(tmp_path):
    slow = Hook(delay=4.0)
    spent = {"on_alert": 0.0, "on_fit_end": 0.0}

    class Timed(WebhookNotifier):
        def on_alert(self, *args):
            start = time.perf_counter()
            super().on_alert(*args)
            spent["on_alert"] += time.perf_counter() - start

        def on_fit_end(self, *args):
            start = time.perf_counter()
            super().on_fit_end(*args)
            spent["on_fit_end"] += time.perf_counter() - start

    callbacks = _callbacks(slow.url)[:3]
    callbacks[1] = TransitionMonitor(watch={"planted/score": {}})  # no checkpoint to wait for
    notifier = Timed(slow.url, timeout=3.0, retries=2, backoff=0.05, flush_timeout=0.5)
    try:
        with pytest.warns(WebhookWarning, match="not delivered to 127.0.0.1"):
            trainer = _fit(tmp_path, [*callbacks, notifier])
    finally:
        slow.close()
    assert trainer.global_step == 30
    # a POST in the training thread would take 4 s (the server's delay) or 3 s (the timeout)
    assert spent["on_alert"] < 0.3
    assert 0.4 < spent["on_fit_end"] < 1.5  # waited for the flush, and no longer


def _alert(notifier, step=20):
    event = TransitionEvent(step=step, metric="planted/score", before=0.0, after=1.0, threshold=0.1)
    notifier.on_alert(SimpleNamespace(is_global_zero=True), event, f"transition at {step}")


def test_a_retry_after_a_server_error_stops_once_accepted():
    server = Hook(statuses=[500, 503])
    try:
        notifier = WebhookNotifier(server.url, retries=4, backoff=0.01)
        _alert(notifier)
        assert notifier._sender.wait(5)
    finally:
        server.close()
    assert len(server.bodies) == 3  # 500, 503, then 200: no fourth POST
    assert len({b["id"] for b in server.bodies}) == 1 and len(notifier.sent) == 1
    assert notifier.state_dict() == {"sent": [server.bodies[0]["id"]], "pending": []}


def test_a_client_error_is_not_retried_and_the_alert_stays_pending():
    server = Hook(statuses=[404])
    try:
        notifier = WebhookNotifier(server.url, retries=3, backoff=0.01)
        _alert(notifier)
        _alert(notifier)  # the same event again (another monitor, a repeat): not queued twice
        assert notifier._sender.wait(5)
    finally:
        server.close()
    assert len(server.bodies) == 1 and notifier.sent == set()
    assert [b["step"] for b in notifier.state_dict()["pending"]] == [20]


def test_only_rank_zero_sends(hook):
    notifier = WebhookNotifier(hook.url)
    event = TransitionEvent(step=3, metric="m", before=0.0, after=1.0, threshold=0.1)
    notifier.on_alert(SimpleNamespace(is_global_zero=False), event, "text")
    assert notifier._sender is None and notifier.state_dict() == {"sent": [], "pending": []}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"url": "ftp://example.com" + SECRET}, ValueError, "scheme 'ftp'"),
        ({"url": "hooks.slack.com" + SECRET}, ValueError, "start with https:// or http://"),
        ({"url": "https://" + SECRET}, ValueError, "no valid host"),
        ({"url": "https://example.com:99999/x"}, ValueError, "no valid host"),
        ({"url": "https://example.com", "timeout": 0}, ValueError, "`timeout` must be > 0"),
        ({"url": "https://example.com", "timeout": -1}, ValueError, "`timeout` must be a number"),
        ({"url": "https://example.com", "retries": -1}, ValueError, "`retries` must be >= 0"),
        ({"url": "https://example.com", "flush_timeout": "5"}, TypeError, "`flush_timeout`"),
        ({"url": 5}, TypeError, "`url` must be a string"),
        ({"url_env": "PW_TEST_UNSET_HOOK"}, ValueError, "set the environment variable PW_TEST_"),
        ({"url_env": None}, ValueError, "no URL: pass url="),
    ],
)
def test_bad_arguments_say_what_to_fix_without_showing_the_url(kwargs, error, match, monkeypatch):
    monkeypatch.delenv("PW_TEST_UNSET_HOOK", raising=False)
    with pytest.raises(error, match=match) as raised:
        WebhookNotifier(**kwargs)
    assert "s3cr3t" not in str(raised.value)


def test_the_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PHASEWATCH_WEBHOOK_URL", "https://hooks.example.com:8443" + SECRET)
    notifier = WebhookNotifier()
    assert notifier.host == "hooks.example.com:8443"
    assert "s3cr3t" not in repr(notifier) and "s3cr3t" not in str(vars(notifier).get("url_env"))


def test_configured_from_lightning_cli_yaml(tmp_path, monkeypatch, hook):
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setenv("MY_HOOK_URL", hook.url)
    config = tmp_path / "config.yaml"
    config.write_text(
        """
trainer:
  max_steps: 2
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: phasewatch.WebhookNotifier
      init_args:
        url_env: MY_HOOK_URL
        timeout: 2.5
        retries: 1
        flush_timeout: 3
"""
    )
    cli = LightningCLI(TinyLM, run=False, args=["--config", str(config)])
    (notifier,) = [c for c in cli.trainer.callbacks if isinstance(c, WebhookNotifier)]
    assert (notifier.timeout, notifier.retries, notifier.flush_timeout) == (2.5, 1, 3.0)
    assert notifier.host == f"127.0.0.1:{hook.server.server_port}"
    _alert(notifier)
    assert notifier._sender.wait(5) and len(hook.bodies) == 1

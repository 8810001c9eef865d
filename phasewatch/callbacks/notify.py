"""WebhookNotifier: send each transition and confirmed-peak alert to a chat webhook."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch import Callback, LightningModule, Trainer

from phasewatch import keys
from phasewatch.callbacks._alerts import AlertListener
from phasewatch.callbacks._args import float_arg, int_arg, optional_str_arg
from phasewatch.callbacks._webhook import WebhookSender, webhook_host
from phasewatch.detect.alert_text import alert_kind, event_id
from phasewatch.detect.events import PeakEvent, TransitionEvent

log = logging.getLogger("phasewatch")

__all__ = ["DEFAULT_URL_ENV", "WebhookNotifier", "WebhookWarning", "webhook_body"]

#: The environment variable read for the URL when ``url`` is not given.
DEFAULT_URL_ENV = "PHASEWATCH_WEBHOOK_URL"
# A checkpoint written while an alert is in flight waits this long (s) at most for its answer,
# so that a resume from it does not send the alert again.
_SAVE_WAIT_S = 1.0


class WebhookWarning(UserWarning):
    """Warned at the end of training when alerts could not be delivered to the webhook."""


def webhook_body(event: TransitionEvent | PeakEvent, text: str) -> dict[str, Any]:
    """The JSON body POSTed for ``event``: Slack-compatible ``text`` and structured fields.

    ``{"text", "id", "kind": "transition"|"peak", "metric", "unit", "step", "tokens",
    "confirmed_step", "heads": [[layer, head], ...], "event": the event's fields,
    "source": "phasewatch"}``; ``id`` is :func:`~phasewatch.detect.alert_text.event_id`.
    """
    heads = [list(h) for h in event.heads] if isinstance(event, TransitionEvent) else []
    return {
        "text": text,
        "id": event_id(event),
        "kind": alert_kind(event),
        "metric": event.metric,
        "unit": keys.unit(event.metric),
        "step": event.step,
        "tokens": event.tokens,
        "confirmed_step": event.confirmed_step,
        "heads": heads,
        "event": event.to_dict(),
        "source": "phasewatch",
    }


class WebhookNotifier(AlertListener, Callback):
    """POST every phase-transition and confirmed-peak alert to a webhook (Slack, Mattermost,
    Rocket.Chat, or any endpoint that takes JSON).

    The alerts come from :class:`TransitionMonitor` and :class:`PeakMonitor` in the same Trainer,
    with the text they log (:func:`phasewatch.detect.alert_text.alert_text`). Rank zero sends,
    from a daemon thread: training never waits on the network, except at the end of fit
    (``flush_timeout`` at most) and when a checkpoint is written while an alert is in flight (1 s
    at most, so that a resume from it does not send that alert again). Each body has the event's
    stable ``id``; an id the server accepted (2xx) is never sent again, by a retry or by a run
    resumed from a checkpoint written after it (the ids sent are in this callback's state). An
    alert not yet accepted when a checkpoint is written is in that state too and is sent by a
    run resumed from it. Delivery failures are logged once, and summed up in a
    :class:`WebhookWarning` at the end of fit, naming the host only: a webhook URL is a secret.

    Args:
        url: ``http://`` or ``https://`` URL. Default None: read from the environment variable
            ``url_env``, so the secret need not be written in a config file.
        url_env: the environment variable holding the URL when ``url`` is None (default
            ``PHASEWATCH_WEBHOOK_URL``), read at construction.
        timeout: seconds to wait for the server's answer per attempt (> 0, default 5).
        retries: further attempts after a connection error, timeout, 5xx, 408, 425 or 429
            (default 3; another 4xx is final).
        backoff: seconds before the first retry, doubled at each further one (default 1).
        flush_timeout: seconds the end of fit waits at most for alerts still queued (default 10).
        queue_size: alerts queued at most; one more is dropped with a log line (default 100).

    Raises:
        ValueError: no URL (neither ``url`` nor the variable ``url_env``); a URL that is not
            http(s) or has no host; ``timeout``/``backoff``/``flush_timeout`` out of range.

    Example::

        trainer = L.Trainer(callbacks=[
            pw.AttentionMonitor(), pw.TransitionMonitor(), pw.PeakMonitor(), pw.PPPMonitor(),
            pw.WebhookNotifier(url_env="PHASEWATCH_WEBHOOK_URL"),
        ])
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        url_env: str | None = DEFAULT_URL_ENV,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 1.0,
        flush_timeout: float = 10.0,
        queue_size: int = 100,
    ) -> None:
        optional_str_arg("url", url)
        optional_str_arg("url_env", url_env)
        self.timeout = _positive("timeout", timeout)
        self.retries = int_arg("retries", retries, 0, "further attempts after a failure")
        self.backoff = float_arg("backoff", backoff, 0.0, None, "seconds before the first retry")
        self.flush_timeout = float_arg("flush_timeout", flush_timeout, 0.0, None, "seconds")
        self.queue_size = int_arg("queue_size", queue_size, 1, "alerts")
        self.url_env = url_env
        self._url = _checked_url(url if url is not None else _url_from_env(url_env))
        self.host = webhook_host(self._url)
        self.sent: set[str] = set()  # ids the server accepted
        self._pending: dict[str, dict] = {}  # id -> body, not accepted yet
        self._lock = threading.Lock()
        self._sender: WebhookSender | None = None
        self._requeue = False  # pending bodies came from a checkpoint: queue them at train start
        self._last_failure: str | None = None
        self._failure_logged = False
        self._dropped = 0

    def __getstate__(self) -> dict:
        """Picklable (``ddp_spawn`` pickles the callbacks): without the lock and the thread."""
        state = dict(self.__dict__)
        state["_lock"] = None
        state["_sender"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the URL: its path or query is the secret
        return f"{type(self).__name__}(host={self.host!r}, timeout={self.timeout:g})"

    # -- alerts ------------------------------------------------------------------------------------

    def on_alert(self, trainer: Trainer, event: TransitionEvent | PeakEvent, text: str) -> None:
        if not trainer.is_global_zero:
            return
        body = webhook_body(event, text)
        with self._lock:
            if body["id"] in self.sent or body["id"] in self._pending:
                return
            self._pending[body["id"]] = body
        self._queue(body)

    def _queue(self, body: dict) -> None:
        if self._sender is None:
            self._sender = WebhookSender(
                self._url,
                timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                queue_size=self.queue_size,
                headers={"User-Agent": "phasewatch"},
                on_sent=self._accepted,
                on_failed=self._failed,
            )
        if not self._sender.put(body["id"], body):
            self._dropped += 1
            log.warning(
                "WebhookNotifier: the alert of step %s was not queued for %s: %d alerts are "
                "already waiting (queue_size=%d); it stays in the checkpoint's state",
                body["step"],
                self.host,
                self.queue_size,
                self.queue_size,
            )

    def _accepted(self, body_id: str) -> None:
        with self._lock:
            self.sent.add(body_id)
            self._pending.pop(body_id, None)

    def _failed(self, body_id: str, reason: str) -> None:
        self._last_failure = reason
        if not self._failure_logged:
            self._failure_logged = True
            log.warning(
                "WebhookNotifier: an alert could not be delivered to %s: %s. Training goes on; "
                "further failures are summed up at the end of fit (the URL's path and query are "
                "not shown: webhook URLs are secrets)",
                self.host,
                reason,
            )

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._requeue and trainer.is_global_zero:
            with self._lock:
                bodies = list(self._pending.values())
            for body in bodies:
                self._queue(body)
        self._requeue = False

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._flush(trainer)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._flush(trainer)

    def _flush(self, trainer: Trainer) -> None:
        sender, self._sender = self._sender, None
        if sender is None:
            return
        sender.flush(self.flush_timeout)
        with self._lock:
            undelivered = len(self._pending)
        if undelivered and trainer.is_global_zero:
            why = self._last_failure or f"no answer within flush_timeout={self.flush_timeout:g} s"
            message = (
                f"WebhookNotifier: {undelivered} alert(s) not delivered to {self.host} ({why}); "
                "training was not held up. They stay in this callback's checkpoint state: a run "
                "resumed from a checkpoint sends them (the URL's path and query are not shown)"
            )
            log.warning(message)
            warnings.warn(message, WebhookWarning, stacklevel=2)

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """``{"sent": ids accepted, "pending": bodies not accepted yet}``; never the URL."""
        if self._sender is not None and self._pending:
            self._sender.wait(min(self.timeout, _SAVE_WAIT_S))
        with self._lock:
            return {"sent": sorted(self.sent), "pending": list(self._pending.values())}

    def load_state_dict(self, state_dict: dict) -> None:
        with self._lock:
            self.sent = set(state_dict.get("sent", ()))
            self._pending = {b["id"]: b for b in state_dict.get("pending", ())}
        self._requeue = bool(self._pending)


def _positive(name: str, value: Any) -> float:
    value = float_arg(name, value, 0.0, None, "seconds")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0 seconds, got {value!r}")
    return value


def _url_from_env(url_env: str | None) -> str:
    url = os.environ.get(url_env) if url_env else None
    if not url:
        where = f"set the environment variable {url_env}" if url_env else "set url_env="
        raise ValueError(
            f"WebhookNotifier has no URL: pass url='https://...', or {where} to the webhook's "
            "URL (keeps the secret out of config files)"
        )
    return url


def _checked_url(url: str) -> str:
    """``url`` if it is http(s) with a host; the message shows the scheme, never the URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"WebhookNotifier's url must start with https:// or http://, got a URL with scheme "
            f"{parts.scheme or 'none'!r} (the URL itself is not shown: it may be a secret)"
        )
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if not parts.hostname or not port_ok:
        raise ValueError(
            "WebhookNotifier's url has no valid host[:port] after the scheme, e.g. "
            "https://hooks.slack.com/services/... (the URL itself is not shown)"
        )
    return url.strip()

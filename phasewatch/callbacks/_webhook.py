"""POST JSON to a webhook from a daemon thread: a bounded queue, a timeout, retries with backoff.

Training never waits on the network: :meth:`WebhookSender.put` returns at once (a full queue
drops the alert and says so), a dead or slow server costs the sending thread, not the training
loop, and :meth:`WebhookSender.flush` waits a bounded time. Only ``urllib.request``. The URL is a
secret (chat webhooks carry their token in the path): messages name the host only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger("phasewatch")

# 408 Request Timeout, 425 Too Early, 429 Too Many Requests: worth another try, like 5xx.
_RETRIED_4XX = frozenset({408, 425, 429})


def webhook_host(url: str) -> str:
    """``host[:port]`` of ``url``, without user, password, path or query (safe to print)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return host if parts.port is None else f"{host}:{parts.port}"


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` and its path, query and credentials replaced by ``<redacted>``."""
    parts = urlsplit(url)
    secrets = [url, parts.path, parts.query, parts.username, parts.password]
    for secret in sorted({s for s in secrets if s and s != "/"}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


class WebhookSender:
    """One daemon thread that POSTs queued JSON bodies to ``url``.

    Each body is tried at most ``1 + retries`` times: a 2xx answer ends it (never sent again),
    a connection error, timeout, 5xx, 408, 425 or 429 is retried after ``backoff * 2**attempt``
    seconds, any other 4xx is final. ``on_sent(body_id)`` / ``on_failed(body_id, reason)`` are
    called from the thread.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        queue_size: int,
        headers: dict[str, str],
        on_sent: Callable[[str], None],
        on_failed: Callable[[str, str], None],
    ) -> None:
        self.url = url
        self.host = webhook_host(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers = {"Content-Type": "application/json", **headers}
        self._on_sent = on_sent
        self._on_failed = on_failed
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"phasewatch-webhook-{self.host}", daemon=True
        )
        self._thread.start()

    def put(self, body_id: str, body: dict) -> bool:
        """Queue ``body`` without waiting; False when the queue is full or the sender stopped."""
        if self._stopping.is_set():
            return False
        try:
            self._queue.put_nowait((body_id, body))
        except queue.Full:
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Wait at most ``seconds`` until every queued body is sent or given up; True if so."""
        deadline = time.monotonic() + seconds
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def flush(self, seconds: float) -> bool:
        """:meth:`wait` at most ``seconds``, then stop the thread (a POST in flight may finish
        later: the thread is a daemon and never keeps the process alive). True if all went."""
        done = self.wait(seconds)
        self._stopping.set()  # backoff sleeps end now; queued bodies are not tried again
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        return done

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if not self._stopping.is_set():
                    self._deliver(*item)
            finally:
                self._queue.task_done()
            if self._stopping.is_set() and self._queue.empty():
                return  # stopped with the queue too full for the sentinel

    def _deliver(self, body_id: str, body: dict) -> None:
        data = json.dumps(body).encode("utf-8")
        reason, tried = "", 0
        for attempt in range(1 + self.retries):
            if attempt and self._stopping.wait(self.backoff * 2 ** (attempt - 1)):
                reason += "; not tried again: training ended"
                break
            reason, retry = self._post(data)
            tried += 1
            if not reason:
                self._on_sent(body_id)
                return
            if not retry:
                break
        self._on_failed(body_id, f"{reason} (after {tried} attempt(s))")

    def _post(self, data: bytes) -> tuple[str, bool]:
        """POST once: ``("", False)`` on 2xx, else (why, whether to retry), redacted."""
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            retry = err.code >= 500 or err.code in _RETRIED_4XX
            return redact(f"HTTP {err.code} {err.reason}", self.url), retry
        except (urllib.error.URLError, OSError, ValueError) as err:
            why = getattr(err, "reason", err)
            return redact(f"{type(err).__name__}: {why}", self.url), True
        if 200 <= status < 300:
            return "", False
        return f"HTTP {status}", status >= 500

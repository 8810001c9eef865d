"""WebhookNotifier in a 2-process ddp_spawn run: the monitors fire each event on both ranks, the
webhook gets one POST per event (rank 0's), and the callback survives the spawn's pickling."""

from __future__ import annotations

import pickle
import warnings

import pytest
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp
from test_webhook_notifier import Hook, _callbacks

from phasewatch.callbacks import WebhookNotifier
from phasewatch.callbacks.transition import PhaseTransitionWarning


def test_the_notifier_pickles_without_its_lock_or_thread():
    notifier = WebhookNotifier("http://127.0.0.1:9/x", timeout=2.0)
    copy = pickle.loads(pickle.dumps(notifier))
    assert (copy.host, copy.timeout, copy._sender) == ("127.0.0.1:9", 2.0, None)
    with copy._lock:  # a working lock of its own
        pass


@pytest.mark.slow
def test_two_ranks_send_one_post_per_event(tmp_path):
    hook = Hook()
    try:
        callbacks = _callbacks(hook.url)
        callbacks[1].checkpoint = False  # no checkpoint files: only the POSTs are compared
        trainer = quiet_trainer(tmp_path, callbacks, max_steps=30, devices=2, strategy=spawn_ddp())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PhaseTransitionWarning)
            trainer.fit(TinyLM(), random_token_loader(300, n=800))
    finally:
        hook.close()
    assert sorted(b["kind"] for b in hook.bodies) == ["peak", "transition"]
    assert len({b["id"] for b in hook.bodies}) == 2

"""A real phase transition: a tiny GPT-2 learns induction on tiled random spans (issue #4)."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from lightning_helpers import TinyLM
from torch.utils.data import DataLoader, IterableDataset

from phasewatch.callbacks import AttentionMonitor, PhaseTransitionWarning, TransitionMonitor
from phasewatch.callbacks.transition import DEFAULT_WATCH
from phasewatch.detect import detect_transitions


class TiledRandomSpans(IterableDataset):
    """Sequences of ``length`` tokens: a random span of 20–50 tokens repeated to fill them."""

    def __init__(self, vocab_size=256, length=100, seed=0):
        self.vocab_size, self.length, self.seed = vocab_size, length, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            span = int(torch.randint(20, 51, (1,), generator=g))
            tokens = torch.randint(0, self.vocab_size, (span,), generator=g)
            yield tokens.repeat(self.length // span + 1)[: self.length]


@pytest.mark.slow
def test_induction_transition_alert_fires_once_inside_the_jump(tmp_path):
    torch.manual_seed(0)
    module = TinyLM(vocab_size=256, n_layer=2, n_head=4, n_embd=64, n_positions=128, lr=1e-3)
    seen = []
    attention = AttentionMonitor(every_n_steps=50, per_decade=6, probe_batch=16, syntactic=False)
    monitor = TransitionMonitor(on_transition=lambda t, m, e: seen.append(e))
    trainer = L.Trainer(
        max_steps=800,
        callbacks=[attention, monitor],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhaseTransitionWarning)
        trainer.fit(module, DataLoader(TiledRandomSpans(), batch_size=32))

    induction = attention.history["heads/induction_max"]
    events = [e for e in seen if e.metric == "heads/induction_max"]
    assert len(events) == 1, (events, induction)
    (event,) = events
    before = [v for step, _, v in induction if step < event.step]
    after = [v for step, _, v in induction if step > event.confirmed_step]
    # The alert sits inside the jump: flat below 0.1 before it, above 0.7 within 3 evaluations.
    assert max(before[-4:]) < 0.1 and max(after[:3]) > 0.7
    assert 300 <= event.step <= 850
    assert event.tokens == event.step * 32 * 100
    assert event.heads and all(layer == 1 for layer, _ in event.heads)  # induction needs layer 1
    # Offline, the same detector over the whole history agrees with the online verdict.
    steps, tokens, values = zip(*induction, strict=True)
    offline = detect_transitions(
        steps, values, tokens=tokens, metric="heads/induction_max", **DEFAULT_WATCH[event.metric]
    )
    assert [(e.step, e.confirmed_step, e.after) for e in offline] == [
        (event.step, event.confirmed_step, event.after)
    ]

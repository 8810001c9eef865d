"""CopyingRegularizer in training: acceptance 1 of issue 11, bf16-mixed and DDP.

Acceptance: on the synthetic recipe with a sharp induction transition (TinyLM, 2 layers x 4 heads
x 64, tiled random spans, 800 steps), λ = 3 keeps the max induction score below 0.05 for the
whole run while λ = 0 shows the transition (above 0.5); λ = 0 is bit-identical to no regularizer.
"""

from __future__ import annotations

import math

import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp
from test_transition_integration import TiledRandomSpans
from torch.utils.data import DataLoader

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor
from phasewatch.control import CopyingRegularizer, RegularizedModule

BOUND = 0.05  # max induction score allowed with λ = 3, whole run
LAMBDA = 3.0


class RegTiny(RegularizedModule, TinyLM):
    """The tests' TinyLM with the regularizer mixin (its training_step is wrapped)."""


def _recipe(tmp_path, weight, steps=800, monitor=True):
    torch.manual_seed(0)
    module = RegTiny(vocab_size=256, n_layer=2, n_head=4, n_embd=64, n_positions=128, lr=1e-3)
    callbacks = []
    if monitor:
        callbacks.append(
            AttentionMonitor(every_n_steps=50, per_decade=6, probe_batch=16, syntactic=False)
        )
    if weight is not None:
        callbacks.append(CopyingRegularizer(weight, length=100, batch_size=8, strict=True))
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=steps)
    trainer.fit(module, DataLoader(TiledRandomSpans(), batch_size=32))
    induction = callbacks[0].history[keys.HEADS_INDUCTION_MAX] if monitor else None
    return module, induction, trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("copying")
    return {weight: _recipe(root, weight) for weight in (0.0, LAMBDA)}


@pytest.mark.slow
def test_large_lambda_keeps_induction_below_the_bound_for_the_whole_run(runs):
    _, induction, trainer = runs[LAMBDA]
    assert induction[-1][0] == 800
    assert max(v for _, _, v in induction) < BOUND, induction
    penalty = float(trainer.callback_metrics[keys.REG_COPYING])
    assert 0 < penalty < 0.2 and math.isfinite(penalty)


@pytest.mark.slow
def test_lambda_zero_shows_the_transition(runs):
    _, induction, trainer = runs[0.0]
    values = [v for _, _, v in induction]
    assert values[0] < BOUND and values[-1] > 0.5, induction
    assert keys.REG_COPYING not in trainer.callback_metrics  # λ = 0: no pass, nothing logged


def test_lambda_zero_is_bit_identical_to_no_regularizer_on_the_recipe(tmp_path):
    plain, _, _ = _recipe(tmp_path, None, steps=10, monitor=False)
    zero, _, _ = _recipe(tmp_path, 0.0, steps=10, monitor=False)
    moved, _, _ = _recipe(tmp_path, LAMBDA, steps=10, monitor=False)
    a, b, c = plain.state_dict(), zero.state_dict(), moved.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the check can fail


def test_bf16_mixed_on_cpu(tmp_path):
    torch.manual_seed(0)
    module = RegTiny(vocab_size=60)
    reg = CopyingRegularizer(1.0, batch_size=2, length=40, strict=True)
    trainer = quiet_trainer(tmp_path, [reg], max_steps=2, precision="bf16-mixed")
    trainer.fit(module, random_token_loader(60))
    assert reg.draws == 2 and reg.failures == 0
    penalty = float(trainer.callback_metrics[keys.REG_COPYING])
    assert 0 < penalty < 1 and math.isfinite(penalty)


@pytest.mark.slow
def test_ddp_spawn_children_get_attentions(tmp_path):
    # transformers registers output capture per process: a spawned rank must re-register (strict
    # would raise on an empty attention tuple).
    torch.manual_seed(0)
    module = RegTiny(vocab_size=60)
    reg = CopyingRegularizer(1.0, batch_size=2, length=40, strict=True)
    trainer = quiet_trainer(tmp_path, [reg], max_steps=2, devices=2, strategy=spawn_ddp())
    trainer.fit(module, random_token_loader(60))
    penalty = float(trainer.callback_metrics[keys.REG_COPYING])
    assert 0 < penalty < 1 and math.isfinite(penalty)

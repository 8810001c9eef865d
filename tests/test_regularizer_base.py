"""The regularizer base: RegularizedModule adds Σ λ·penalty to the loss Lightning trains on."""

from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, random_token_loader, spawn_ddp
from torch import nn

from phasewatch import keys
from phasewatch.control import CopyingRegularizer, RegularizedModule, Regularizer


class SquaredWeight(Regularizer):
    """Penalty = Σ w² of one linear layer; fails on the steps listed in ``fail_at``."""

    key = keys.REG_PREFIX + "/test_squared"

    def __init__(self, weight, fail_at=(), **kwargs):
        super().__init__(weight, **kwargs)
        self.calls, self.fail_at = 0, set(fail_at)

    def penalty(self, pl_module, batch):
        self.calls += 1
        if pl_module.trainer.global_step in self.fail_at:
            raise RuntimeError("planted failure")
        return (pl_module.layer.weight**2).sum()


class Linear(RegularizedModule, L.LightningModule):
    """y = W x, loss = mean(y²); SGD(lr) so one step is W ← W − lr · ∇."""

    def __init__(self, as_dict=False):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 2, bias=False)
        self.as_dict = as_dict
        self.returned = []

    def training_step(self, batch, batch_idx):
        (x,) = batch
        loss = (self.layer(x) ** 2).mean()
        return {"loss": loss, "extra": 1} if self.as_dict else loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.returned.append(outputs)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data():
    x = torch.arange(12, dtype=torch.float32).view(4, 3) / 10
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=4)


@pytest.mark.parametrize("as_dict", [False, True])
def test_one_step_matches_a_hand_gradient(tmp_path, as_dict):
    module = Linear(as_dict=as_dict)
    w0 = module.layer.weight.detach().clone()
    reg = SquaredWeight(0.5)
    quiet_trainer(tmp_path, [reg], max_steps=1).fit(module, _data())
    # Independent: loss = mean over 4×2 of (W x)², penalty = Σ W²; ∇ = 2/8 Σ_n (W x_n) x_nᵀ + λ·2W.
    x = next(iter(_data()))[0]
    grad = 2 / 8 * (x @ w0.T).T @ x + 0.5 * 2 * w0
    torch.testing.assert_close(module.layer.weight.detach(), w0 - 0.1 * grad)
    assert reg.calls == 1
    out = module.returned[0]
    loss = out["loss"] if isinstance(out, dict) else out
    expected = (x @ w0.T).pow(2).mean() + 0.5 * w0.pow(2).sum()
    torch.testing.assert_close(loss.detach(), expected)
    if as_dict:
        assert out["extra"] == 1


def test_weight_zero_runs_no_penalty_and_is_bit_identical(tmp_path):
    def run(callbacks):
        torch.manual_seed(0)
        module = type("RegTiny", (RegularizedModule, TinyLM), {})(vocab_size=50)
        quiet_trainer(tmp_path, callbacks, max_steps=4).fit(module, random_token_loader(50))
        return module.state_dict()

    plain = run([])
    off = SquaredWeight(0.0)
    with_zero = run([off, CopyingRegularizer(0.0)])
    assert off.calls == 0
    assert plain.keys() == with_zero.keys()
    assert all(torch.equal(plain[k], with_zero[k]) for k in plain)
    # And a non-zero λ does change the run (the comparison above can fail).
    moved = run([CopyingRegularizer(1.0, batch_size=2, length=16)])
    assert not all(torch.equal(plain[k], moved[k]) for k in plain)


def test_non_strict_failure_is_logged_once_and_the_step_trains_on(tmp_path, caplog):
    module = Linear()
    reg = SquaredWeight(0.5, fail_at=(0, 1))
    with caplog.at_level(logging.WARNING, logger="phasewatch.control.regularizer"):
        quiet_trainer(tmp_path, [reg], max_steps=3).fit(module, _data())
    assert reg.failures == 2
    assert sum("planted failure" in r.getMessage() for r in caplog.records) == 1
    # Steps 0 and 1 trained on the plain loss, step 2 on loss + λ·penalty (hand SGD).
    x = next(iter(_data()))[0]
    w = Linear().layer.weight.detach().clone()
    for step in range(3):
        grad = 2 / 8 * (x @ w.T).T @ x + (0.5 * 2 * w if step == 2 else 0)
        w = w - 0.1 * grad
    torch.testing.assert_close(module.layer.weight.detach(), w)
    assert reg.calls == 3


def test_strict_failure_raises(tmp_path):
    with pytest.raises(RuntimeError, match="planted failure"):
        quiet_trainer(tmp_path, [SquaredWeight(0.5, fail_at=(0,), strict=True)], max_steps=2).fit(
            Linear(), _data()
        )


def test_module_without_the_mixin_is_refused_with_the_fix(tmp_path):
    with pytest.raises(TypeError, match=r"RegularizedModule, L.LightningModule"):
        quiet_trainer(tmp_path, [SquaredWeight(0.5)], max_steps=1).fit(
            TinyLM(vocab_size=50), random_token_loader(50)
        )


def test_bad_weight_names_the_argument():
    with pytest.raises(TypeError, match="`weight`"):
        SquaredWeight("0.1")


def _one_hand_step(w0, lam):
    x = next(iter(_data()))[0]
    return w0 - 0.1 * (2 / 8 * (x @ w0.T).T @ x + lam * 2 * w0)


def test_gradient_accumulation_scales_the_penalty_with_the_loss(tmp_path):
    # Two micro-batches of 2 rows, accumulated: Lightning divides each returned loss by 2, so
    # λ·penalty enters once per optimizer step, as in one step on the 4 rows together.
    module = Linear()
    w0 = module.layer.weight.detach().clone()
    data = torch.utils.data.DataLoader(_data().dataset, batch_size=2)
    reg = SquaredWeight(0.5)
    quiet_trainer(tmp_path, [reg], max_steps=1, accumulate_grad_batches=2).fit(module, data)
    assert reg.calls == 2
    torch.testing.assert_close(module.layer.weight.detach(), _one_hand_step(w0, 0.5))


@pytest.mark.slow
def test_ddp_all_reduce_covers_the_penalty(tmp_path):
    # 2 gloo processes, rows {0, 2} and {1, 3}: the mean of the ranks' gradients of
    # (mean loss + λ·penalty) is the one-process gradient on all 4 rows.
    module = Linear()
    w0 = module.layer.weight.detach().clone()
    data = torch.utils.data.DataLoader(_data().dataset, batch_size=2)
    trainer = quiet_trainer(
        tmp_path, [SquaredWeight(0.5)], max_steps=1, devices=2, strategy=spawn_ddp()
    )
    trainer.fit(module, data)
    torch.testing.assert_close(module.layer.weight.detach(), _one_hand_step(w0, 0.5))

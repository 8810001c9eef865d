"""copying_penalty against hand computations and a span-based loop (the paper's mask)."""

from __future__ import annotations

import pytest
import torch
from lightning_helpers import TinyLM

from phasewatch.control import (
    CopyingRegularizer,
    attentions_with_grad,
    copying_penalty,
    tiled_random_spans,
)


def _uniform(t):
    return torch.tril(torch.ones(t, t)) / torch.arange(1, t + 1)[:, None]


def _one_hot(targets):
    t = len(targets)
    rows = torch.zeros(t, t)
    rows[torch.arange(t), torch.tensor(targets)] = 1.0
    return rows


IDS = torch.tensor([[5, 7, 9, 5, 7, 5]])
# Earlier occurrences: i=3 (5 at 0) → key 1; i=4 (7 at 1) → key 2; i=5 (5 at 0 and 3) → keys 1, 4.
PREV_TOKEN = _one_hot([0, 0, 1, 2, 3, 4])
INDUCTION = _one_hot([0, 0, 0, 1, 2, 4])
TO_FIRST = _one_hot([0] * 6)


def _attentions(layer1_head0):
    layer0 = torch.stack([_uniform(6), PREV_TOKEN])[None]
    layer1 = torch.stack([layer1_head0, _uniform(6)])[None]
    return [layer0, layer1]


def test_hand_built_pattern_with_an_induction_head():
    # max over heads: A[3,1] = 1, A[4,2] = 1, A[5,1] = 1/6 (uniform), A[5,4] = 1; 3 query positions.
    value = copying_penalty(_attentions(INDUCTION), IDS)
    assert value.item() == pytest.approx((1 + 1 + 1 / 6 + 1) / 3)


def test_hand_built_pattern_without_one():
    # A[3,1] = 1/4, A[4,2] = 1/5, A[5,1] = 1/6 (uniform), A[5,4] = 1 (previous-token head).
    value = copying_penalty(_attentions(TO_FIRST), IDS)
    assert value.item() == pytest.approx((1 / 4 + 1 / 5 + 1 / 6 + 1) / 3)


def test_normalised_per_query_position_with_an_earlier_occurrence():
    # A second row with no repeated token adds no query position: the mean is unchanged.
    ids = torch.cat([IDS, torch.tensor([[1, 2, 3, 4, 8, 6]])])
    atts = [torch.cat([a, a]) for a in _attentions(INDUCTION)]
    assert copying_penalty(atts, ids).item() == pytest.approx((1 + 1 + 1 / 6 + 1) / 3)
    # No repeats at all: zero, still differentiable.
    att = _uniform(4)[None, None].repeat(1, 2, 1, 1).requires_grad_()
    zero = copying_penalty([att], torch.tensor([[1, 2, 3, 4]]))
    zero.backward()
    assert zero.item() == 0.0 and att.grad is not None


def test_equals_the_span_based_loop_on_tiled_spans():
    # The paper builds its mask from the span length: key j = i + 1 - m·span for m >= 1. With no
    # token repeated inside a span, that is the token-defined mask here (leaving out key 0, which
    # the paper's mask also holds for i = m·span - 1, though no token precedes it).
    g = torch.Generator().manual_seed(3)
    spans, length = [7, 11], 40
    ids = torch.stack([torch.randperm(50, generator=g)[:s].repeat(length)[:length] for s in spans])
    atts = [torch.rand(2, 3, length, length, generator=g) for _ in range(2)]
    total, queries = 0.0, 0
    for b, span in enumerate(spans):
        for i in range(length):
            keys = [j for j in range(1, i + 1) if (i + 1 - j) % span == 0]
            queries += bool(keys)
            for j in keys:
                total += max(float(a[b, h, i, j]) for a in atts for h in range(3))
    assert copying_penalty(atts, ids).item() == pytest.approx(total / queries, rel=1e-6)


def test_shape_mismatch_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"expected \[B, H, T, T\]"):
        copying_penalty([torch.zeros(1, 2, 5, 5)], IDS)
    with pytest.raises(ValueError, match="one \\[B, H, T, T\\] tensor per layer"):
        copying_penalty([], IDS)


def test_tiled_random_spans_repeat_a_span_of_the_asked_length():
    g = torch.Generator().manual_seed(0)
    ids = tiled_random_spans(6, 90, 300, (20, 25), g)
    assert ids.shape == (6, 90) and int(ids.max()) < 300
    for row in ids:
        period = next(p for p in range(20, 26) if torch.equal(row[p:], row[:-p]))
        assert 20 <= period <= 25


def test_regularizer_pass_has_gradient_and_leaves_the_model_on_sdpa():
    model = TinyLM(vocab_size=60)
    before = model.model.config._attn_implementation
    reg = CopyingRegularizer(1.0, batch_size=2, length=30, seed=4)
    ids = reg.regularization_batch(model)
    value = copying_penalty(attentions_with_grad(model, ids), ids)
    value.backward()
    assert model.model.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0
    assert model.model.config._attn_implementation == before
    # Batches are reproducible from (seed, draw count) and differ between draws.
    again = CopyingRegularizer(1.0, batch_size=2, length=30, seed=4)
    assert torch.equal(again.regularization_batch(model), ids)
    assert not torch.equal(again.regularization_batch(model), ids)
    again.load_state_dict(reg.state_dict() | {"draws": 0})
    assert torch.equal(again.regularization_batch(model), ids)

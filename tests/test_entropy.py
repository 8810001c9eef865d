"""attention_entropy and the AttentionEntropy metric against analytic and independent values."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from tiny_models import tiny_gpt2

from phasewatch.measures.entropy import attention_entropy
from phasewatch.measures.metrics import AttentionEntropy
from phasewatch.models import induction_circuit_model, uniform_attention_model

VOCAB = 64


gpt2 = partial(tiny_gpt2, VOCAB, n_positions=64)


def uniform_entropy(tokens: int) -> float:
    """Mean of ln(i+1) over query positions 1..T-1 (position 0 is left out)."""
    return sum(math.log(i + 1) for i in range(1, tokens)) / (tokens - 1)


def reference_entropy(attentions: list[torch.Tensor]) -> torch.Tensor:
    """Independent float64 loop: -sum p ln p per row, mean over batch and positions 1..T-1."""
    out = torch.zeros(len(attentions), attentions[0].shape[1], dtype=torch.float64)
    for layer, a in enumerate(attentions):
        a = a.double()
        batch, heads, tokens, _ = a.shape
        for h in range(heads):
            total = 0.0
            for b in range(batch):
                for i in range(1, tokens):
                    p = a[b, h, i, : i + 1]
                    total += float(-(p[p > 0] * p[p > 0].log()).sum())
            out[layer, h] = total / (batch * (tokens - 1))
    return out


@pytest.mark.parametrize("model_kind", ["protocol", "gpt2"])
def test_uniform_attention_has_entropy_ln_i_plus_one(model_kind):
    model = uniform_attention_model(vocab_size=VOCAB) if model_kind == "protocol" else gpt2(True)
    ids = torch.randint(0, VOCAB, (3, 40), generator=torch.Generator().manual_seed(0))
    entropy = attention_entropy(model, ids)
    assert entropy.shape == (2, 2) and entropy.device.type == "cpu"
    torch.testing.assert_close(entropy, torch.full((2, 2), uniform_entropy(40)), atol=1e-5, rtol=0)
    normalized = attention_entropy(model, ids, normalize=True)
    torch.testing.assert_close(normalized, torch.ones(2, 2), atol=1e-5, rtol=0)


def test_entropy_matches_an_independent_computation_on_a_random_gpt2():
    model = gpt2().eval()
    ids = torch.randint(0, VOCAB, (2, 17), generator=torch.Generator().manual_seed(3))
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(ids, output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    expected = reference_entropy(list(attentions)).float()
    torch.testing.assert_close(attention_entropy(model, ids), expected, atol=1e-5, rtol=0)


def test_sharp_heads_have_low_entropy_and_uniform_heads_the_maximum():
    model = induction_circuit_model(vocab_size=VOCAB, max_length=64)
    ids = torch.randperm(VOCAB, generator=torch.Generator().manual_seed(0))[:30]
    entropy = attention_entropy(model, ids.repeat(2), normalize=True)
    assert entropy[0, 0] < 1e-3  # previous-token head: one key per query
    torch.testing.assert_close(entropy[:, 1], torch.ones(2), atol=1e-5, rtol=0)  # uniform heads


def test_right_padding_mask_gives_the_count_weighted_mean_of_the_unpadded_sequences():
    model = gpt2()
    generator = torch.Generator().manual_seed(5)
    long, short = (
        torch.randint(1, VOCAB, (12,), generator=generator),
        torch.randint(1, VOCAB, (7,), generator=generator),
    )
    padded = torch.zeros(2, 12, dtype=torch.long)
    padded[0], padded[1, :7] = long, short
    mask = (torch.arange(12) < torch.tensor([[12], [7]])).long()
    combined = attention_entropy(model, padded, attention_mask=mask)
    # each sequence contributes T-1 scored query positions
    expected = (11 * attention_entropy(model, long) + 6 * attention_entropy(model, short)) / 17
    torch.testing.assert_close(combined, expected, atol=1e-5, rtol=0)


def test_metric_accumulated_over_two_half_batches_equals_one_full_batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, 9, 9, generator=generator)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    attentions = [logits.masked_fill(~causal, float("-inf")).softmax(-1), logits.softmax(-1)]
    for normalize in (False, True):
        full = AttentionEntropy(2, 3, normalize=normalize)
        full.update(attentions)
        halves = AttentionEntropy(2, 3, normalize=normalize)
        halves.update([a[:2] for a in attentions])
        halves.update([a[2:] for a in attentions])
        torch.testing.assert_close(halves.compute(), full.compute())


def test_metric_rejects_attention_of_the_wrong_shape():
    metric = AttentionEntropy(2, 3)
    with pytest.raises(ValueError, match="one tensor per layer"):
        metric.update([torch.ones(1, 3, 4, 4)])
    with pytest.raises(ValueError, match=r"shape \[B, 3, T, T\]"):
        metric.update([torch.ones(1, 2, 4, 4)] * 2)

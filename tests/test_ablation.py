"""Head ablation: a planted induction circuit loses its score, real tiny Hugging Face models are
bit-identical after the block, and mean-ablation matches a computation done here by hand."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from tiny_models import tiny_gpt2, tiny_llama, tiny_neox

from phasewatch.control.ablation import (
    ablate_heads,
    format_heads,
    mask_ablated,
    nanmax,
    output_projections,
    parse_heads,
)
from phasewatch.measures.head_scores import all_head_scores
from phasewatch.models import (
    HandBuiltTransformer,
    LogitsFunction,
    as_probe_model,
    induction_circuit_model,
    uniform_attention_model,
)

VOCAB = 40
BUILDERS = {"gpt2": tiny_gpt2, "neox": tiny_neox, "llama": tiny_llama}


class AblatableCircuit(HandBuiltTransformer):
    """The hand-built induction circuit with the protocol's optional ``ablate_heads`` method:
    the forward pass of :class:`HandBuiltTransformer`, with chosen heads' outputs set to 0."""

    def __init__(self, source: HandBuiltTransformer) -> None:
        super().__init__(
            source.token_embedding,
            source.position_embedding,
            source.query,
            source.key,
            source.value,
            source.unembedding,
        )
        self.ablated: list[tuple[int, int]] = []
        self.calls: list[dict] = []

    @contextmanager
    def ablate_heads(self, heads, *, mode, mean_over):
        self.calls.append({"heads": heads, "mode": mode, "mean_over": mean_over})
        if mode != "zero":
            raise ValueError("this model ablates with mode='zero' only")
        previous, self.ablated = self.ablated, list(heads)
        try:
            yield
        finally:
            self.ablated = previous

    def forward_with_attentions(self, input_ids):
        tokens = input_ids.shape[1]
        x = self.token_embedding[input_ids] + self.position_embedding[:tokens]
        future = torch.ones(tokens, tokens, dtype=torch.bool).triu(1)
        attentions = []
        for layer in range(self.num_layers):
            q = torch.einsum("btd,hdk->bhtk", x, self.query[layer])
            k = torch.einsum("btd,hdk->bhtk", x, self.key[layer])
            pattern = (q @ k.transpose(-1, -2)).masked_fill(future, float("-inf")).softmax(-1)
            outputs = pattern @ torch.einsum("btd,hde->bhte", x, self.value[layer])
            for ablated_layer, head in self.ablated:
                if ablated_layer == layer:
                    outputs[:, head] = 0.0
            x = x + outputs.sum(dim=1)
            attentions.append(pattern)
        return x @ self.unembedding, attentions


def _induction(model):
    return all_head_scores(model, seq_len=16, batch_size=4)["induction"]


def test_ablating_the_planted_previous_token_head_removes_the_induction_score():
    model = AblatableCircuit(induction_circuit_model(VOCAB, 64))
    before = _induction(model)
    assert before[1, 0] > 0.99  # the planted induction head
    with ablate_heads(model, "L0H0") as heads:
        inside = _induction(model)
    assert heads == [(0, 0)] and model.calls[-1] == {
        "heads": [(0, 0)],
        "mode": "zero",
        "mean_over": None,
    }
    # Without the previous-token head's output the induction head's keys are all alike: it
    # attends uniformly (score ~ 1/(s+1), below 0.05 on 16-token repeats), no induction left.
    assert inside[1, 0] < 0.05
    assert torch.equal(_induction(model), before)  # exactly as before after the block


def test_ablating_the_planted_induction_head_removes_its_prediction_and_its_reported_score():
    model = AblatableCircuit(induction_circuit_model(VOCAB, 64))
    n = 16
    first = torch.stack(
        [torch.randperm(VOCAB, generator=torch.Generator().manual_seed(i))[:n] for i in range(4)]
    )
    ids = torch.cat([first, first], dim=1)  # distinct tokens, repeated once
    second = slice(n, 2 * n - 1)  # queries of the second repeat
    target = ids[:, n + 1 :]  # the token each of them should predict

    def accuracy():
        logits = model.forward_with_attentions(ids)[0]
        return (logits[:, second].argmax(-1) == target).float().mean().item()

    assert accuracy() == 1.0  # the circuit copies the next token of the first repeat
    with ablate_heads(model, [(1, 0)]):
        assert accuracy() < 0.2  # nothing written: the logits are all 0, argmax is token 0
        per_head = mask_ablated({"induction": _induction(model)}, [(1, 0)])
    assert torch.isnan(per_head["induction"][1, 0])
    assert nanmax(per_head["induction"]) < 0.05  # no other head does induction
    assert accuracy() == 1.0


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_hugging_face_outputs_change_inside_and_are_bit_identical_after(name):
    model = BUILDERS[name](VOCAB).eval()
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = [(dict(m._forward_pre_hooks), dict(m._forward_hooks)) for m in model.modules()]
    with torch.no_grad():
        before = model(ids).logits
        with ablate_heads(model, "L0H1"):
            zero = model(ids).logits
        with ablate_heads(model, "L0H1,L1H0", mode="mean"):
            mean = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(zero, before, atol=1e-4)
    assert not torch.allclose(mean, before, atol=1e-4)
    assert not torch.allclose(mean, zero, atol=1e-4)
    assert torch.equal(after, before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert hooks == [(dict(m._forward_pre_hooks), dict(m._forward_hooks)) for m in model.modules()]


def test_ablation_through_a_lightning_style_container_and_in_training_mode_keeps_gradients():
    container = torch.nn.Module()
    container.model = tiny_gpt2(VOCAB)
    ids = torch.randint(0, VOCAB, (2, 8))
    with ablate_heads(container, "L1H1"):
        loss = container.model(ids, labels=ids).loss
    loss.backward()
    assert container.model.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_mean_ablation_equals_the_mean_context_vector_through_the_projection(name):
    """Layer 0's projection input does not depend on the ablation: replace head 1's slice by its
    mean over batch and positions here, apply the projection's weights by hand, compare."""
    model = BUILDERS[name](VOCAB).eval()
    heads = as_probe_model(model).num_heads
    projection = output_projections(model, 2)[0]
    ids = torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(2))
    other = torch.randint(0, VOCAB, (5, 7), generator=torch.Generator().manual_seed(3))
    seen: dict[str, torch.Tensor] = {}
    handle = projection.register_forward_hook(
        lambda m, args, out: seen.update(x=args[0].clone(), y=out.clone())
    )

    def by_hand(x, mean_from):
        split = x.reshape(*x.shape[:-1], heads, -1).clone()
        split[..., 1, :] = mean_from.reshape(*mean_from.shape[:-1], heads, -1)[..., 1, :].mean(
            dim=(0, 1)
        )
        merged = split.reshape(x.shape)
        if name == "gpt2":  # Conv1D: x @ W + b, W [in, out]
            return merged @ projection.weight + projection.bias
        return merged @ projection.weight.T  # Linear without bias

    try:
        with torch.no_grad():
            model(other)
            x_other = seen["x"]
            model(ids)
            x_ids = seen["x"]
            with ablate_heads(model, "L0H1", mode="mean"):
                model(ids)
            own = seen["y"]
            with ablate_heads(model, "L0H1", mode="mean", mean_over=other):
                model(ids)
            fixed = seen["y"]
    finally:
        handle.remove()
    torch.testing.assert_close(own, by_hand(x_ids, x_ids), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fixed, by_hand(x_ids, x_other), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(own, fixed, atol=1e-4)


def test_head_scores_inside_the_block_keep_layer_0_and_change_layer_1():
    """Ablating a layer-0 head's output cannot change any layer-0 attention pattern (exactly),
    but changes layer 1's: the probe passes (eager switch included) run with the hooks."""
    model = tiny_gpt2(VOCAB)
    before = all_head_scores(model, seq_len=10, batch_size=2)
    with ablate_heads(model, "L0H0,L0H1"):
        inside = all_head_scores(model, seq_len=10, batch_size=2)
    for kind, scores in before.items():
        assert torch.equal(inside[kind][0], scores[0]), kind
    assert not torch.allclose(inside["induction"][1], before["induction"][1], atol=1e-6)


def _enter(model, heads, **options):
    with ablate_heads(model, heads, **options):
        pass


@pytest.mark.parametrize(
    "heads, message",
    [
        ("L1X0", "'L<layer>H<head>'"),
        ("L2H0", "has 2 layers"),
        ("L0H2", "has 2 heads per layer"),
        ([(0, 1.5)], "(layer, head) pairs"),
        ("", "'L<layer>H<head>'"),
        ([], "no head to ablate"),
    ],
)
def test_unreadable_or_missing_heads_are_named(heads, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _enter(tiny_gpt2(VOCAB), heads)


def test_bad_mode_and_models_without_heads_say_what_to_do():
    with pytest.raises(ValueError, match="`mode` must be one of zero, mean"):
        _enter(tiny_gpt2(VOCAB), "L0H0", mode="resample")
    with pytest.raises(ValueError, match="mean_over"):
        _enter(tiny_gpt2(VOCAB), "L0H0", mean_over=torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="ablate_heads"):
        _enter(uniform_attention_model(), "L0H0")
    with pytest.raises(TypeError, match="no heads to ablate"):
        _enter(LogitsFunction(lambda ids: torch.zeros(*ids.shape, 3)), "L0H0")


def test_heads_parse_and_format_round_trip():
    assert parse_heads(" l1h2 ,L0H3,L1H2") == [(0, 3), (1, 2)]
    assert parse_heads([(1, 0), "L0H1"]) == [(0, 1), (1, 0)]
    assert format_heads(parse_heads("L1H0,L0H3")) == "L0H3,L1H0"


def test_the_heads_a_transition_alert_names_can_be_ablated_as_they_are():
    # "PPP without the induction heads found by the transition alert": event.heads is a tuple of
    # (layer, head) pairs, also after a round trip through the history file's dict
    from phasewatch.detect import TransitionEvent

    event = TransitionEvent.from_dict(
        {
            "metric": "heads/induction_max",
            "step": 10,
            "before": 0.1,
            "after": 0.8,
            "threshold": 0.5,
            "heads": [[1, 0]],
        }
    )
    model = tiny_gpt2(VOCAB).eval()
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with ablate_heads(model, event.heads):
            by_event = model(ids).logits
        with ablate_heads(model, "L1H0"):
            by_name = model(ids).logits
    assert torch.equal(by_event, by_name)

"""A model unpickled in another process (``ddp_spawn``) still gives attention probabilities.

transformers 5 registers a model class's output capture when a model is constructed; a
``ddp_spawn`` worker unpickles the model and never constructs it, so the class is missing from
the registry. Removing the class from the registry puts this process in the worker's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from tiny_models import tiny_gpt2, tiny_llama, tiny_neox
from transformers import PreTrainedModel
from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY

from phasewatch.measures import all_head_scores
from phasewatch.models._huggingface import (
    eager_attention,
    huggingface_forward,
    no_new_hooks,
    register_output_capture,
)

BUILDERS = {"gpt2": tiny_gpt2, "neox": tiny_neox, "llama": tiny_llama}


@contextmanager
def as_in_a_spawned_worker(model: torch.nn.Module) -> Iterator[None]:
    """The registry as a process that never constructed ``model``'s classes sees it."""
    names = {str(type(m)) for m in model.modules() if isinstance(m, PreTrainedModel)}
    saved = {name: dict.__getitem__(_CAN_RECORD_REGISTRY, name) for name in names}
    for name in names:
        dict.__delitem__(_CAN_RECORD_REGISTRY, name)
    try:
        yield
    finally:
        for name, value in saved.items():
            dict.__setitem__(_CAN_RECORD_REGISTRY, name, value)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_an_unregistered_model_is_registered_and_scores_as_in_its_own_process(name):
    model = BUILDERS[name](64)
    want = all_head_scores(model, seq_len=10, batch_size=3)  # the process that built it
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    with as_in_a_spawned_worker(model):
        # the bug's state: on eager, and transformers returns no attentions; the error says why
        with (
            torch.no_grad(),
            no_new_hooks(model),
            eager_attention(model),
            pytest.raises(RuntimeError, match="output capture") as error,
        ):
            huggingface_forward(model, ids, attention=True, attention_mask=None, logits=False)
        assert "SDPA and flash attention never" not in str(error.value)
        got = all_head_scores(model, seq_len=10, batch_size=3)  # registers it again
        assert register_output_capture(model) == 0  # already done by the probe
    for kind, scores in want.items():
        torch.testing.assert_close(got[kind], scores, rtol=0, atol=0, msg=kind)


def test_a_users_own_attention_call_in_the_worker_does_not_block_the_probe():
    model = tiny_gpt2(64)
    want = all_head_scores(model, seq_len=10, batch_size=3)
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    model.set_attn_implementation("eager")
    with as_in_a_spawned_worker(model):
        with torch.no_grad():  # the user's call: no attentions, and no hook or mark left behind
            assert model(input_ids=ids, output_attentions=True).attentions is None
        assert not hasattr(model.transformer, "_output_capturing_hooks_installed")
        got = all_head_scores(model, seq_len=10, batch_size=3)
        assert model(input_ids=ids, output_attentions=True).attentions is not None
    for kind, scores in want.items():
        torch.testing.assert_close(got[kind], scores, rtol=0, atol=0, msg=kind)


def test_registering_twice_changes_nothing():
    model = tiny_gpt2(64)
    assert register_output_capture(model) == 0  # constructed here: already registered
    with as_in_a_spawned_worker(model):
        assert register_output_capture(model) == 2  # GPT2LMHeadModel and its GPT2Model
        assert register_output_capture(model) == 0

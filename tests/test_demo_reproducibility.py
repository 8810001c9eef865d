"""The demo's reproducibility: same thread count, same bits; another thread count, other bits."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from test_demo_data import TEXTS

from phasewatch.demo.config import DemoConfig
from phasewatch.demo.novels import NovelSplits
from phasewatch.demo.reproducibility import RunEnvironment, make_reproducible
from phasewatch.demo.tokenizer import train_bpe_tokenizer

STEPS = 3


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _train(tmp_path, num_threads: int) -> dict[str, torch.Tensor]:
    """The demo's model shape, batch and optimiser for a few steps on a small text."""
    config = DemoConfig().with_(vocab_size=300, max_steps=STEPS, num_threads=num_threads)
    make_reproducible(config.seed, config.num_threads)
    documents = NovelSplits(train=(TEXTS[0] * 2,), validation=(TEXTS[0],), val_fraction=0.1)
    data = config.data_module(cache_dir=tmp_path, documents=documents)
    model = config.model(data.tokenizer)
    trainer = L.Trainer(
        **{**config.trainer_kwargs(), "val_check_interval": None},
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_same_thread_count_gives_bit_identical_weights_and_another_count_does_not(tmp_path):
    first, second = _train(tmp_path, 2), _train(tmp_path, 2)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # The control: one thread splits the float sums differently, so the weights differ after
    # a few steps (this is why the demo fixes its thread count).
    one_thread = _train(tmp_path, 1)
    largest = max((first[k].float() - one_thread[k].float()).abs().max().item() for k in first)
    assert 0.0 < largest < 1e-3


def test_two_fresh_tokenizer_trainings_are_identical():
    a = train_bpe_tokenizer(TEXTS, 300).backend_tokenizer.to_str()
    b = train_bpe_tokenizer(TEXTS, 300).backend_tokenizer.to_str()
    assert a == b
    assert '"merges"' in a and len(a) > 1000


def test_run_environment_names_threads_torch_and_cpu():
    environment = make_reproducible(seed=0, num_threads=1)
    assert environment.num_threads == torch.get_num_threads() == 1
    assert type(environment.torch_version) is str and environment.torch_version == torch.__version__
    line = environment.describe()
    assert "1 torch threads" in line and torch.__version__ in line
    assert environment.cpu_capability in line and environment.cpu_model in line
    assert RunEnvironment.current() == environment
    assert environment.to_dict()["env/num_threads"] == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_thread_count_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match=r"`num_threads` must be a positive integer.*got"):
        make_reproducible(seed=0, num_threads=bad)

"""Induction, previous-token and duplicate-token scores: analytic, planted, cross-backend; the
head-kinds table they are read from."""

from __future__ import annotations

import ast
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_gpt2, tiny_llama, tiny_neox

import phasewatch
from phasewatch import head_kinds, keys
from phasewatch.head_kinds import HEAD_KINDS, REPEATED_TOKENS, HeadKind
from phasewatch.measures.attention import HeadSummary, summarize
from phasewatch.measures.head_scores import all_head_scores, head_scores, repeated_token_probe
from phasewatch.measures.metrics import HEAD_SCORE_KINDS, HeadScore
from phasewatch.models import induction_circuit_model, uniform_attention_model

VOCAB = 64


gpt2 = partial(tiny_gpt2, VOCAB)


def uniform_score(seq_len: int, prefix: int) -> float:
    """Mean over the second repeat's queries s of 1/(s+1): what a uniform head pays any one key."""
    queries = range(prefix + seq_len, prefix + 2 * seq_len)
    return sum(1 / (s + 1) for s in queries) / seq_len


@pytest.mark.parametrize("model_kind", ["protocol", "gpt2"])
@pytest.mark.parametrize("bos_token_id", [None, 0])
def test_uniform_attention_scores_the_analytic_mean_of_one_over_s_plus_one(
    model_kind, bos_token_id
):
    model = uniform_attention_model(vocab_size=VOCAB) if model_kind == "protocol" else gpt2(True)
    scores = all_head_scores(model, seq_len=20, batch_size=4, bos_token_id=bos_token_id)
    expected = uniform_score(20, prefix=int(bos_token_id is not None))
    assert set(scores) == set(HEAD_SCORE_KINDS)
    for kind in HEAD_SCORE_KINDS:
        torch.testing.assert_close(scores[kind], torch.full((2, 2), expected), atol=1e-5, rtol=0)


def test_hand_built_circuit_scores_its_previous_token_and_induction_heads():
    scores = all_head_scores(induction_circuit_model(VOCAB, 64), seq_len=25, batch_size=8)
    previous, induction = scores["previous_token"], scores["induction"]
    assert previous[0, 0] > 0.9 and induction[1, 0] > 0.9
    elsewhere = torch.ones(2, 2, dtype=torch.bool)
    elsewhere[0, 0] = False
    assert (previous[elsewhere] < 0.1).all()
    elsewhere = torch.ones(2, 2, dtype=torch.bool)
    elsewhere[1, 0] = False
    assert (induction[elsewhere] < 0.1).all()
    assert (scores["duplicate_token"] < 0.1).all()
    assert summarize(induction) == HeadSummary(max=float(induction[1, 0]), layer=1, head=0)


def test_sdpa_model_scores_like_the_same_weights_on_eager_and_is_restored():
    model = gpt2()
    model.train()
    assert model.config._attn_implementation == "sdpa"
    sdpa_scores = all_head_scores(model, seq_len=20, batch_size=4)
    assert model.config._attn_implementation == "sdpa"
    assert model.training and all(m.training for m in model.modules())
    assert not model._forward_hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model.set_attn_implementation("eager")
    eager_scores = all_head_scores(model, seq_len=20, batch_size=4)
    for kind in HEAD_SCORE_KINDS:
        torch.testing.assert_close(sdpa_scores[kind], eager_scores[kind], atol=1e-5, rtol=0)


neox = partial(tiny_neox, VOCAB)
llama = partial(tiny_llama, VOCAB)


@pytest.mark.parametrize("name", ["gpt2", "neox", "llama", "protocol"])
def test_scores_on_every_architecture_are_probabilities_of_shape_layers_by_heads(name):
    torch.manual_seed(0)
    builders = {"gpt2": gpt2, "neox": neox, "llama": llama, "protocol": induction_circuit_model}
    model = builders[name]() if name != "protocol" else induction_circuit_model(VOCAB, 128)
    heads = 2 if name in ("gpt2", "protocol") else 4
    scores = all_head_scores(model, seq_len=16, batch_size=2)
    for kind, value in scores.items():
        assert value.shape == (2, heads), kind
        assert value.dtype == torch.float32 and value.device.type == "cpu"
        assert ((value >= 0) & (value <= 1)).all(), kind
    single = head_scores(model, "previous_token", seq_len=16, batch_size=2)
    torch.testing.assert_close(single, scores["previous_token"])


def test_probe_is_repeated_distinct_tokens_seeded_locally():
    rng_before = torch.get_rng_state()
    probe = repeated_token_probe(
        VOCAB, seq_len=30, batch_size=5, seed=3, exclude_ids=[1, 2], bos_token_id=0
    )
    assert torch.equal(torch.get_rng_state(), rng_before)
    ids = probe.input_ids
    assert ids.shape == (5, 61) and probe.prefix_length == 1 and probe.seq_len == 30
    assert (ids[:, 0] == 0).all()
    assert torch.equal(ids[:, 1:31], ids[:, 31:])
    assert all(len(set(row[1:31].tolist())) == 30 for row in ids)
    assert not torch.isin(ids[:, 1:], torch.tensor([0, 1, 2])).any()
    again = repeated_token_probe(
        VOCAB, seq_len=30, batch_size=5, seed=3, exclude_ids=[1, 2], bos_token_id=0
    )
    assert torch.equal(again.input_ids, ids)
    other = repeated_token_probe(VOCAB, seq_len=30, batch_size=5, seed=4)
    assert not torch.equal(other.input_ids[:, :30], ids[:, 1:31])


def test_probe_as_long_as_the_allowed_vocabulary_uses_each_allowed_token_once():
    probe = repeated_token_probe(
        20, seq_len=15, batch_size=6, exclude_ids=[0, 3, 4, 19], bos_token_id=7
    )
    allowed = set(range(20)) - {0, 3, 4, 7, 19}
    assert all(set(row[1:16].tolist()) == allowed for row in probe.input_ids)


def test_large_vocabulary_probe_has_distinct_tokens_too():
    probe = repeated_token_probe(50257, seq_len=50, batch_size=64, seed=1, exclude_ids=range(100))
    first = probe.input_ids[:, :50]
    assert all(len(set(row.tolist())) == 50 for row in first)
    assert first.min() >= 100 and first.max() < 50257
    again = repeated_token_probe(50257, seq_len=50, batch_size=64, seed=1, exclude_ids=range(100))
    assert torch.equal(again.input_ids, probe.input_ids)


def test_measuring_leaves_the_global_rng_alone():
    model = gpt2()
    rng_before = torch.get_rng_state()
    all_head_scores(model, seq_len=10, batch_size=2)
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_prebuilt_probe_gives_the_same_scores():
    model = gpt2()
    probe = repeated_token_probe(VOCAB, seq_len=12, batch_size=3, seed=7)
    direct = all_head_scores(model, seq_len=12, batch_size=3, seed=7)
    reused = all_head_scores(model, probe=probe)
    for kind in HEAD_SCORE_KINDS:
        torch.testing.assert_close(direct[kind], reused[kind])


def test_metric_accumulated_over_two_half_batches_equals_one_full_batch():
    generator = torch.Generator().manual_seed(0)
    seq_len, prefix = 5, 1
    tokens = prefix + 2 * seq_len
    causal = torch.ones(tokens, tokens, dtype=torch.bool).tril()
    scores = torch.randn(6, 3, tokens, tokens, generator=generator)
    attentions = [scores.masked_fill(~causal, float("-inf")).softmax(-1)] * 2
    for kind in HEAD_SCORE_KINDS:
        full = HeadScore(kind, 2, 3, seq_len=seq_len, prefix_length=prefix)
        full.update(attentions)
        halves = HeadScore(kind, 2, 3, seq_len=seq_len, prefix_length=prefix)
        halves.update([a[:3] for a in attentions])
        halves.update([a[3:] for a in attentions])
        torch.testing.assert_close(halves.compute(), full.compute())
        # independent: the stripe read by a loop
        offset = {"induction": 1 - seq_len, "previous_token": -1, "duplicate_token": -seq_len}[kind]
        expected = torch.zeros(3)
        for s in range(prefix + seq_len, tokens):
            expected += attentions[0][:, :, s, s + offset].mean(0)
        torch.testing.assert_close(full.compute()[0], expected / seq_len)


def test_validation_messages_name_the_argument():
    model = gpt2()
    with pytest.raises(
        ValueError, match="unknown head kind 'copying': the kinds are induction, previous_token"
    ):
        head_scores(model, "copying")
    with pytest.raises(ValueError, match="use syntactic_scores for 'syntactic'"):
        head_scores(model, "syntactic")
    with pytest.raises(ValueError, match=r"max_length=64; use seq_len <= 31"):
        all_head_scores(gpt2(n_positions=64), seq_len=32, bos_token_id=0)
    with pytest.raises(ValueError, match="exceeds the model's vocab_size=64"):
        all_head_scores(model, vocab_size=65)
    with pytest.raises(ValueError, match="only 10 of vocab_size=10 are allowed"):
        repeated_token_probe(10, seq_len=11)
    with pytest.raises(ValueError, match="covers 9 tokens"):
        HeadScore("induction", 1, 1, seq_len=5).update([torch.ones(1, 1, 9, 9)])


def test_summarize_finds_the_largest_head_and_reports_nan_as_nan():
    scores = torch.tensor([[0.1, 0.4, 0.3], [0.7, 0.2, 0.69]])
    summary = summarize(scores)
    assert (summary.layer, summary.head) == (1, 0) and summary.max == pytest.approx(0.7)
    assert repr(summary) == "HeadSummary(max=0.7 at L1H0)"
    # a NaN head is not skipped (issue 9): the maximum is NaN, located at the non-finite heads
    scores[0, 1], scores[1, 2] = float("nan"), float("-inf")
    summary = summarize(scores)
    assert math.isnan(summary.max) and (summary.layer, summary.head) == (0, 1)
    assert summary.nonfinite == ((0, 1), (1, 2))
    assert repr(summary) == "HeadSummary(max=nan: 2 non-finite head(s), first L0H1)"
    with pytest.raises(ValueError, match=r"\[layers, heads\]"):
        summarize(torch.ones(3))


def _measure_on_rank_zero_only(rank: int, init_file: str, results) -> None:
    import datetime

    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        if rank == 0:
            model = uniform_attention_model(vocab_size=VOCAB)
            scores = all_head_scores(model, seq_len=10, batch_size=2)
            results.put(float(scores["induction"][0, 0]))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    from lightning_helpers import end_process_now

    end_process_now()  # done (SimpleQueue.put writes at once): no finalization to abort in


@pytest.mark.slow  # two spawned processes import torch and transformers: ~15-50 s on 2 cores
def test_plain_functions_measure_on_one_rank_without_waiting_for_the_others(tmp_path):
    """A callback measures on rank 0 only; a metric syncing on compute would deadlock."""
    context = torch.multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    torch.multiprocessing.spawn(
        _measure_on_rank_zero_only,
        args=(str(tmp_path / "init"), results),
        nprocs=2,
        join=True,
    )
    assert results.get() == pytest.approx(uniform_score(10, prefix=0), abs=1e-6)


def random_probe_attentions(seq_len: int, prefix: int, batch: int = 4) -> list[torch.Tensor]:
    """Two layers of causal softmax attention [batch, 3 heads, T, T] with random logits."""
    generator = torch.Generator().manual_seed(1)
    tokens = prefix + 2 * seq_len
    causal = torch.ones(tokens, tokens, dtype=torch.bool).tril()
    logits = torch.randn(2, batch, 3, tokens, tokens, generator=generator)
    return list(logits.masked_fill(~causal, float("-inf")).softmax(-1))


TWO_BACK = HeadKind(
    "two_back",
    f"{keys.HEADS_PREFIX}/two_back_max",
    "two-back score",
    REPEATED_TOKENS,
    offset=(0, -2),
    description="the token two before",
)


def test_a_kind_added_to_the_table_is_measured_with_its_own_offset(monkeypatch):
    monkeypatch.setitem(HEAD_KINDS, TWO_BACK.name, TWO_BACK)
    seq_len, prefix = 6, 1
    attentions = random_probe_attentions(seq_len, prefix)
    metric = HeadScore("two_back", 2, 3, seq_len=seq_len, prefix_length=prefix)
    metric.update(attentions)
    # independent: a loop over the second repeat's queries, reading A[s, s - 2]
    expected = torch.zeros(2, 3)
    for layer, attention in enumerate(attentions):
        for s in range(prefix + seq_len, prefix + 2 * seq_len):
            expected[layer] += attention[:, :, s, s - 2].mean(0) / seq_len
    torch.testing.assert_close(metric.compute(), expected)
    for other in ("induction", "previous_token", "duplicate_token"):  # not another kind's rule
        previous = HeadScore(other, 2, 3, seq_len=seq_len, prefix_length=prefix)
        previous.update(attentions)
        assert not torch.allclose(previous.compute(), expected)
    # every consumer reads the table: the one-pass function, the logged keys, the report series
    scores = all_head_scores(gpt2(), seq_len=8, batch_size=2)
    assert set(scores) == {"induction", "previous_token", "duplicate_token", "two_back"}
    assert head_kinds.score_keys()["two_back"] == TWO_BACK.key
    assert head_kinds.head_series()[TWO_BACK.key] == "two-back score"


def test_unknown_or_malformed_kinds_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown head kind 'two_back'.*one row of"):
        HeadScore("two_back", 1, 1, seq_len=5)
    with pytest.raises(ValueError, match="'syntactic' is not read off the repeated-token probe"):
        HeadScore("syntactic", 1, 1, seq_len=5)
    with pytest.raises(ValueError, match="needs `offset=\\(a, b\\)`"):
        HeadKind("two_back", TWO_BACK.key, "t", REPEATED_TOKENS)
    with pytest.raises(ValueError, match="`probe` can be repeated_tokens, dependency_arcs"):
        HeadKind("two_back", TWO_BACK.key, "t", "random_text", offset=(0, -2))
    with pytest.raises(ValueError, match="has no key offset"):
        HEAD_KINDS["syntactic"].key_offset(10)
    ahead = HeadKind("ahead", TWO_BACK.key, "t", REPEATED_TOKENS, offset=(0, 1))
    monkeypatch.setitem(HEAD_KINDS, "ahead", ahead)
    with pytest.raises(ValueError, match="key\\(s\\) - s = 1 points outside"):
        HeadScore("ahead", 1, 1, seq_len=5)


def test_table_offsets_are_the_documented_keys_and_every_key_is_a_keys_constant():
    n = 50
    offsets = {k.name: k.key_offset(n) for k in HEAD_KINDS.values() if k.offset is not None}
    assert offsets == {"induction": 1 - n, "previous_token": -1, "duplicate_token": -n}
    constants = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    row_keys = [k.key for k in HEAD_KINDS.values()]
    assert set(row_keys) <= constants and len(set(row_keys)) == len(row_keys)
    assert keys.HEADS_SAS in head_kinds.head_series() and keys.HEADS_SAS in constants
    titles = list(head_kinds.head_series().values())
    assert len(set(titles)) == len(titles)


def test_no_head_or_attention_key_is_typed_outside_keys_py():
    package = Path(phasewatch.__file__).parent
    typed = []
    for path in package.rglob("*.py"):
        if path.name == "keys.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = getattr(node, "value", None)
            is_text = isinstance(node, ast.Constant) and isinstance(value, str)
            if is_text and value.startswith(("heads/", "attn/")):
                typed.append(f"{path.relative_to(package)}:{node.lineno}: {value!r}")
    assert typed == [], "import these keys from phasewatch.keys instead"

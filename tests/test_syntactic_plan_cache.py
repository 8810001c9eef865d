"""The syntactic score plans its windows (tokenize, pack sentences, place arcs) once per tokenizer:
the next measurement reuses the plan and scores exactly the same; a change replans."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_gpt2
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from phasewatch.measures import syntactic
from phasewatch.measures.syntactic import clear_plan_cache, syntactic_scores


@pytest.fixture
def planned(monkeypatch):
    """Counts the stories planned (calls of the uncached planner), from an empty cache."""
    clear_plan_cache()
    calls = []
    plan = syntactic._story_windows

    def counting(*args, **kwargs):
        calls.append(1)
        return plan(*args, **kwargs)

    monkeypatch.setattr(syntactic, "_story_windows", counting)
    yield calls
    clear_plan_cache()


def _score(model, tokenizer, corpus, **options):
    return syntactic_scores(model, tokenizer, corpus, max_stories=2, max_tokens=64, **options)


def test_next_measurement_reuses_the_plan_and_scores_the_same(planned, ns_corpus, ns_tokenizer):
    model = tiny_gpt2(len(ns_tokenizer), n_positions=64)
    first = _score(model, ns_tokenizer, ns_corpus)
    assert len(planned) == 2  # one plan per story
    second = _score(model, ns_tokenizer, ns_corpus)
    assert len(planned) == 2  # nothing planned again
    torch.testing.assert_close(second.per_head, first.per_head, rtol=0, atol=0)
    assert (second.sas, second.n_arcs, second.n_skipped) == (
        first.sas,
        first.n_arcs,
        first.n_skipped,
    )
    assert second.per_relation == first.per_relation
    clear_plan_cache()  # the plan from scratch scores the same as the kept one
    fresh = _score(model, ns_tokenizer, ns_corpus)
    assert len(planned) == 4
    torch.testing.assert_close(fresh.per_head, second.per_head, rtol=0, atol=0)
    assert fresh.n_arcs > 100 and 0 < fresh.sas <= 1


def _copy(tokenizer: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


def test_a_changed_tokenizer_budget_or_relation_set_plans_again(planned, ns_corpus, ns_tokenizer):
    tokenizer = _copy(ns_tokenizer)  # changed in place below
    model = tiny_gpt2(len(tokenizer) + 1, n_positions=64)
    _score(model, tokenizer, ns_corpus)
    assert len(planned) == 2
    syntactic_scores(model, tokenizer, ns_corpus, max_stories=2, max_tokens=48)
    assert len(planned) == 4  # another window budget
    _score(model, tokenizer, ns_corpus, exclude_relations=("root", "det"))
    assert len(planned) == 6  # other arcs
    tokenizer.add_tokens(["Tulip"])  # the same object, another vocabulary
    _score(model, tokenizer, ns_corpus)
    assert len(planned) == 8
    _score(model, tokenizer, ns_corpus)
    assert len(planned) == 8

"""AttentionMonitor's syntactic score reads the corpus's own dependency arcs, never the Natural
Stories parses; a corpus without arcs turns the score off with one message (issue 10)."""

from __future__ import annotations

import copy
import logging

import pandas as pd
import pytest
import torch
from lightning_helpers import TinyLM, quiet_trainer, token_loader

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.corpora import naturalstories as ns
from phasewatch.measures import syntactic_scores


def _model(ns_tokenizer) -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(vocab_size=len(ns_tokenizer), n_positions=64, tokenizer=ns_tokenizer)


def _fit(root, monitor, module, ns_token_ids) -> None:
    loader = token_loader(ns_token_ids[: 4 * 64], batch_size=4)
    quiet_trainer(root, [monitor], max_steps=1).fit(module, loader)


def _block_arcs(frame: pd.DataFrame, block: int = 6) -> pd.DataFrame:
    """Arcs that are not Natural Stories': in blocks of ``block`` words, each word's head is the
    word before it, the block's first word is the root."""
    offset = (frame["position"] - 1) % block
    relations = ["nsubj", "obj", "det", "amod"]
    return pd.DataFrame(
        {
            "story": frame["story"],
            "position": frame["position"],
            "head_position": (frame["position"] - 1).where(offset > 0, 0),
            "relation": [
                relations[p % 4] if o else "root"
                for p, o in zip(frame["position"], offset, strict=True)
            ],
        }
    )


def test_arcs_of_a_corpus_with_story_ids_1_to_10_are_its_own(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids, monkeypatch
):
    """The silent-wrong case: same words and story ids 1..10 as Natural Stories, other arcs."""
    mine = ReadingTimeCorpus(
        "mine", ns_corpus.frame.copy(), dependencies=_block_arcs(ns_corpus.frame)
    )
    assert mine.stories == list(range(1, 11))

    def no_parses(**_):
        raise AssertionError("the Natural Stories parses were read")

    monkeypatch.setattr(ns, "load_dependencies", no_parses)
    module = _model(ns_tokenizer)
    initial = copy.deepcopy(module.model)
    monitor = AttentionMonitor(corpus=mine, steps=[0], probe_batch=4, strict=True)
    _fit(tmp_path, monitor, module, ns_token_ids)
    logged = {key: rows[0][2] for key, rows in monitor.history.items()}

    own = syntactic_scores(initial, ns_tokenizer, mine, mine.dependencies, max_stories=2)
    theirs = syntactic_scores(initial, ns_tokenizer, mine, ns_corpus.dependencies, max_stories=2)
    assert logged[keys.HEADS_SAS] == pytest.approx(float(own.sas), abs=1e-6)
    assert logged[keys.HEADS_SYNTACTIC_MAX] == pytest.approx(float(own.per_head.max()), abs=1e-6)
    assert abs(float(own.sas) - float(theirs.sas)) > 0.05  # the parses would give another number


def test_a_corpus_without_arcs_turns_the_syntactic_score_off_with_one_message(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids, caplog
):
    bare = ReadingTimeCorpus("bare", ns_corpus.frame.copy())
    monitor = AttentionMonitor(corpus=bare, steps=[0, 1], probe_batch=4)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, monitor, _model(ns_tokenizer), ns_token_ids)
    logged = set(monitor.history)
    assert {keys.HEADS_INDUCTION_MAX, keys.ATTN_ENTROPY_MEAN} <= logged
    assert keys.HEADS_SYNTACTIC_MAX not in logged and keys.HEADS_SAS not in logged
    assert caplog.text.count("has no dependency arcs") == 1
    assert "'bare'" in caplog.text and "syntactic=False" in caplog.text

    strict = AttentionMonitor(corpus=bare, steps=[0], probe_batch=4, strict=True)
    with pytest.raises(Exception, match=r"'bare' has no dependency arcs(.|\n)*head=, relation="):
        _fit(tmp_path, strict, _model(ns_tokenizer), ns_token_ids)
    # syntactic=False asks for no arcs: nothing to say
    caplog.clear()
    quiet = AttentionMonitor(corpus=bare, steps=[0], probe_batch=4, syntactic=False, strict=True)
    with caplog.at_level(logging.WARNING, logger="phasewatch"):
        _fit(tmp_path, quiet, _model(ns_tokenizer), ns_token_ids)
    assert "dependency arcs" not in caplog.text


def test_corpus_must_be_a_name_or_a_corpus():
    with pytest.raises(TypeError, match=r"registered corpus name .* or a ReadingTimeCorpus"):
        AttentionMonitor(corpus=pd.DataFrame())

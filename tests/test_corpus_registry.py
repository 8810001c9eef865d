"""One registry of corpora: the name lists are views of it, and user corpora join it."""

from __future__ import annotations

import pandas as pd
import pytest

import phasewatch.corpora as corpora
from phasewatch.corpora import registry
from phasewatch.corpora.manifest import manifest_corpora


def test_manifest_flags_match_the_shipped_manifests():
    flagged = {n for n, e in corpora.registered_corpora().items() if e.manifest}
    assert flagged == set(manifest_corpora())
    assert corpora.known_corpora() == tuple(sorted(flagged))


def test_reading_time_corpora_are_the_entries_with_a_loader():
    names = corpora.reading_time_corpora()
    assert "naturalstories" in names and "english-novels-pd" not in names
    assert all(corpora.registered_corpora()[n].loader is not None for n in names)
    assert corpora.corpus_entry("naturalstories").default_spillover == 4


def test_training_text_is_not_loadable_as_reading_times():
    with pytest.raises(ValueError, match=r"registered reading times corpora.*english-novels-pd"):
        corpora.load("english-novels-pd")


def test_a_registered_user_corpus_loads_by_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    frame = pd.DataFrame(
        {"story": [1, 1], "position": [1, 2], "word": ["Hej", "då"], "rt": [300.0, 0.0]}
    )
    seen = {}

    def loader(data_dir=None, measure="eye tracking: gaze duration"):
        seen["data_dir"] = data_dir
        return corpora.ReadingTimeCorpus("mine", frame, measure=measure, language="sv")

    entry = corpora.register_corpus("mine", loader, measure="eye tracking: gaze duration")
    assert entry.default_spillover == 2
    corpus = corpora.load("mine", data_dir="/somewhere")
    assert seen["data_dir"] == "/somewhere"
    assert corpus.default_spillover == 2 and corpus.language == "sv"
    assert not corpus.has_dependencies
    with pytest.raises(ValueError, match="already registered"):
        corpora.register_corpus("mine", loader)


def test_a_corpus_loaded_by_name_carries_the_registered_name(monkeypatch):
    # keys are named after corpus.name: a loader naming its corpus after a file would log
    # ppp/my_corpus/... for corpora=["mine"]
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    frame = pd.DataFrame({"story": [1], "position": [1], "word": ["Hi"], "rt": [300.0]})
    corpora.register_corpus(
        "mine", lambda data_dir=None: corpora.ReadingTimeCorpus("my_corpus", frame, language="fr")
    )
    loaded = corpora.load("mine")
    assert loaded.name == "mine" and loaded.language == "fr"


def test_dependencies_must_have_the_arc_columns():
    frame = pd.DataFrame({"story": [1], "position": [1], "word": ["Hi"], "rt": [300.0]})
    with pytest.raises(ValueError, match=r"lack the columns \['head_position'\]"):
        corpora.ReadingTimeCorpus(
            "x", frame, dependencies=pd.DataFrame(columns=["story", "position", "relation"])
        )


def test_naturalstories_carries_its_own_arcs(ns_corpus):
    assert ns_corpus.has_dependencies
    assert len(ns_corpus.dependencies) == len(ns_corpus.frame) == 10256


@pytest.mark.parametrize("action", ["where", "fetch"])
def test_data_command_on_a_corpus_without_manifest_says_where_its_files_go(action, capsys):
    from phasewatch.cli import main

    assert main(["data", action, "provo"]) == 2
    err = capsys.readouterr().err
    assert "'provo' has no manifest" in err and "$PHASEWATCH_DATA/provo/" in err
    assert "corpora-recipes.md" in err and "Traceback" not in err

"""PPP over several corpora: per-corpus keys, the mean and its SE, against independent numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tiny_models import tiny_gpt2

from phasewatch import keys
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.ppp_corpora import CorporaPPP, mean_over_corpora
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model


def story(corpus: ReadingTimeCorpus, number: int, name: str, **fields) -> ReadingTimeCorpus:
    frame = corpus.frame[corpus.frame["story"] == number].reset_index(drop=True)
    return ReadingTimeCorpus(name, frame, **fields)


@pytest.fixture(scope="module")
def two_corpora(ns_corpus):
    """Story 1 as self-paced reading (spillover 4), story 2 as 'eye tracking' (spillover 2)."""
    spr = story(ns_corpus, 1, "spr")
    eye = story(ns_corpus, 2, "eye", measure="eye tracking: gaze duration")
    return spr, eye


@pytest.fixture(scope="module")
def probe(ns_tokenizer):
    return as_probe_model(tiny_gpt2(len(ns_tokenizer)).eval())


def test_mean_over_corpora_is_the_plain_mean_with_independent_errors():
    mean, se = mean_over_corpora([0.01, 0.03, -0.01], [0.003, 0.004, 0.012])
    assert mean == pytest.approx(0.01, abs=1e-15)
    assert se == pytest.approx(np.sqrt(0.003**2 + 0.004**2 + 0.012**2) / 3, abs=1e-15)
    with pytest.raises(ValueError, match="one SE per mean"):
        mean_over_corpora([0.1], [])


def test_each_corpus_gets_its_own_keys_spillover_and_the_mean(two_corpora, probe, ns_tokenizer):
    spr, eye = two_corpora
    measure = CorporaPPP([spr, eye], folds=5, control_tokens="both")
    assert measure.spillovers == {"spr": 4, "eye": 2}
    scalars, results = measure.measure(probe, ns_tokenizer)
    assert set(scalars) == set(measure.scalar_keys)

    # independently: one PPPMeasure per corpus, the mean and SE by numpy
    own = {}
    for corpus, spillover in ((spr, 4), (eye, 2)):
        one = PPPMeasure(corpus, spillover=spillover, folds=5, control_tokens="both")
        own[corpus.name] = one.measure(probe, ns_tokenizer)
    for name, (alone, alone_results) in own.items():
        for key, value in alone.items():
            assert scalars[keys.with_prefix(key, name)] == pytest.approx(value, abs=1e-12), key
        per_word = results[keys.with_prefix(keys.PPP_DELTA_LL, name)].per_word
        assert per_word.equals(alone_results[keys.PPP_DELTA_LL].per_word)
    for series, se_key in keys.SE_KEYS.items():
        means = np.array([own[n][0][series] for n in ("spr", "eye")])
        ses = np.array([own[n][0][se_key] for n in ("spr", "eye")])
        assert scalars[series] == pytest.approx(means.mean(), abs=1e-12)
        assert scalars[se_key] == pytest.approx(np.sqrt((ses**2).sum()) / 2, abs=1e-12)
    words = own["spr"][0][keys.PPP_N_WORDS] + own["eye"][0][keys.PPP_N_WORDS]
    assert scalars[keys.PPP_N_WORDS] == words
    # spillover 2 drops fewer words at each story's start than 4 would
    assert results["ppp/eye/delta_ll"].spillover == 2
    assert results["ppp/spr/delta_ll"].spillover == 4
    assert results[keys.PPP_DELTA_LL].parts["eye"] is results["ppp/eye/delta_ll"]


def test_one_corpus_keeps_the_plain_keys_and_numbers(two_corpora, probe, ns_tokenizer):
    spr, _ = two_corpora
    scalars, results = CorporaPPP([spr], folds=5).measure(probe, ns_tokenizer)
    alone, _ = PPPMeasure(spr, folds=5).measure(probe, ns_tokenizer)
    assert scalars == alone
    assert list(results) == [keys.PPP_DELTA_LL]


def test_an_int_spillover_applies_to_every_corpus(two_corpora):
    assert CorporaPPP(list(two_corpora), spillover=1).spillovers == {"spr": 1, "eye": 1}


@pytest.mark.parametrize(
    ("corpora", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "is empty"),
        ("naturalstories", {}, TypeError, "list of ReadingTimeCorpus"),
        (["naturalstories"], {}, TypeError, r"phasewatch.corpora.load\(name\)"),
        (None, {"spillover": -1}, ValueError, "int >= 0"),
        (None, {"spillover": True}, ValueError, "int >= 0"),
    ],
)
def test_bad_corpora_and_spillover_name_the_fix(two_corpora, corpora, kwargs, error, match):
    with pytest.raises(error, match=match):
        CorporaPPP(list(two_corpora) if corpora is None else corpora, **kwargs)


def test_corpus_names_must_differ_and_fit_in_a_key(two_corpora):
    spr, eye = two_corpora
    with pytest.raises(ValueError, match="more than once"):
        CorporaPPP([spr, dataclasses.replace(eye, name="spr")])
    with pytest.raises(ValueError, match=r"dataclasses.replace\(corpus, name="):
        CorporaPPP([spr, dataclasses.replace(eye, name="story 2")])
    CorporaPPP([dataclasses.replace(spr, name="story 1")])  # one corpus: its name is no key

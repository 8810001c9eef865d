"""PPP over several corpora: per-corpus keys, the mean and its SE, against independent numbers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from tiny_models import tiny_gpt2

from phasewatch import keys
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.delta_loglik import PPPResult
from phasewatch.measures.paired import BestMeanSoFar, PairedPeakTest
from phasewatch.measures.ppp_corpora import CorporaMean, CorporaPPP, mean_over_corpora
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


def test_an_int_spillover_applies_to_every_corpus_a_mapping_to_those_it_names(two_corpora):
    assert CorporaPPP(list(two_corpora), spillover=1).spillovers == {"spr": 1, "eye": 1}
    assert CorporaPPP(list(two_corpora), spillover={"spr": 0}).spillovers == {"spr": 0, "eye": 2}
    with pytest.raises(ValueError, match=r"names corpora \['dundee'\] that are not in"):
        CorporaPPP(list(two_corpora), spillover={"dundee": 2})


@pytest.mark.parametrize(
    ("corpora", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "is empty"),
        ("naturalstories", {}, TypeError, "list of ReadingTimeCorpus"),
        (["naturalstories"], {}, TypeError, r"phasewatch.corpora.load\(name\)"),
        (None, {"spillover": -1}, ValueError, "int >= 0"),
        (None, {"spillover": True}, ValueError, "int >= 0"),
        (None, {"spillover": {"eye": 1.5}}, ValueError, "int >= 0"),
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


# -- the paired peak test on the mean ------------------------------------------------------------


def _result(per_word: pd.Series) -> PPPResult:
    se = per_word.std(ddof=1) / np.sqrt(len(per_word))
    return PPPResult(per_word.mean(), se, len(per_word), {0: 1.0}, 5, 4, ("length",), 0, per_word)


def _evaluations() -> list[dict[str, pd.Series]]:
    """Three evaluations of two corpora; corpus a is best at 1, b at 2, their mean at 1."""
    rng = np.random.default_rng(0)
    base = {"a": rng.normal(0, 0.05, 300), "b": rng.normal(0, 0.05, 200)}
    shift = {"a": (0.0, 0.02, 0.005), "b": (0.0, 0.004, 0.006)}
    return [
        {
            n: pd.Series(base[n] + shift[n][i] + rng.normal(0, 0.01, len(base[n])))
            for n in ("a", "b")
        }
        for i in range(3)
    ]


def _update(test: PairedPeakTest, step: int, evaluation: dict[str, pd.Series]):
    parts = {n: _result(s) for n, s in evaluation.items()}
    results = {keys.PPP_DELTA_LL: CorporaMean.of(parts)}
    results.update({keys.with_prefix(keys.PPP_DELTA_LL, n): r for n, r in parts.items()})
    return test.update(step, results)


def test_the_mean_series_paired_test_matches_numpy():
    evaluations = _evaluations()
    test = PairedPeakTest()
    for step, evaluation in enumerate(evaluations):
        scalars, paired = _update(test, step, evaluation)
    # independently: the best of the mean series is the evaluation with the highest mean of means
    means = [np.mean([e[n].mean() for n in ("a", "b")]) for e in evaluations]
    best = int(np.argmax(means))
    assert best == 1 and int(np.argmax([e["b"].mean() for e in evaluations])) == 2

    def mean_diff(x: dict, y: dict) -> tuple[float, float]:
        ds = [(x[n] - y[n]).to_numpy() for n in ("a", "b")]
        ses = [d.std(ddof=1) / np.sqrt(len(d)) for d in ds]
        return np.mean([d.mean() for d in ds]), np.sqrt(np.sum(np.square(ses))) / 2

    decline, decline_se = mean_diff(evaluations[best], evaluations[-1])
    rise, rise_se = mean_diff(evaluations[best], evaluations[0])
    assert scalars[keys.PPP_DECLINE] == pytest.approx(decline, abs=1e-12)
    assert scalars[keys.PPP_DECLINE_SE] == pytest.approx(decline_se, abs=1e-12)
    assert scalars[keys.PPP_RISE] == pytest.approx(rise, abs=1e-12)
    assert scalars[keys.PPP_RISE_SE] == pytest.approx(rise_se, abs=1e-12)
    assert paired[keys.PPP_DELTA_LL]["best_step"] == 1
    # corpus b alone: its own best (step 2, the last) → no decline
    assert paired["ppp/b/delta_ll"]["best_step"] == 2
    assert scalars["ppp/b/decline_since_best"] == 0.0
    d = (evaluations[1]["a"] - evaluations[2]["a"]).to_numpy()
    assert scalars["ppp/a/decline_since_best"] == pytest.approx(d.mean(), abs=1e-12)


def test_the_mean_series_paired_state_round_trips():
    evaluations = _evaluations()
    whole, first = PairedPeakTest(), PairedPeakTest()
    for step, evaluation in enumerate(evaluations[:2]):
        _update(whole, step, evaluation)
        _update(first, step, evaluation)
    resumed = PairedPeakTest()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert isinstance(resumed.trackers[keys.PPP_DELTA_LL], BestMeanSoFar)
    assert _update(resumed, 2, evaluations[2]) == _update(whole, 2, evaluations[2])


def test_the_mean_series_refuses_a_change_of_corpora():
    evaluations = _evaluations()
    test = PairedPeakTest()
    _update(test, 0, evaluations[0])
    with pytest.raises(ValueError, match="changed corpora"):
        _update(test, 1, {"a": evaluations[1]["a"]})

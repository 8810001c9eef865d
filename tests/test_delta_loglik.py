"""ΔLL regression: planted effects, independent OLS references, spillover, folds, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from wordfreq import word_frequency

from phasewatch.measures.baselines import (
    DEFAULT_FREQUENCY_FLOOR,
    add_baseline_columns,
    log_frequency,
    word_length,
)
from phasewatch.measures.delta_loglik import PPPResult, assign_folds, delta_loglik


def _synthetic(
    n_stories: int = 5, words: int = 400, surprisal_ms: tuple = (3.0, 1.5), seed: int = 0
) -> pd.DataFrame:
    """RT = 300 + 4·length − 2·log_freq + Σ_k a_k·surprisal(lag k) + N(0, 40²) ms."""
    rng = np.random.default_rng(seed)
    n = n_stories * words
    frame = pd.DataFrame(
        {
            "story": np.repeat([f"s{i}" for i in range(n_stories)], words),
            "position": np.tile(np.arange(1, words + 1), n_stories),
        }
    )
    frame["length"] = rng.integers(1, 13, n)
    frame["log_freq"] = -3.0 - 0.8 * frame["length"] + rng.normal(0, 2, n)
    frame["surprisal"] = 4.0 - 0.5 * frame["log_freq"] + rng.gamma(2.0, 2.0, n)
    rt = 300 + 4 * frame["length"] - 2 * frame["log_freq"] + rng.normal(0, 40, n)
    for k, a in enumerate(surprisal_ms):
        rt += a * frame.groupby("story")["surprisal"].shift(k).fillna(0.0)
    frame["rt"] = rt
    return frame


def _lag_design(frame: pd.DataFrame, columns: list[str], spillover: int) -> pd.DataFrame:
    """Lags 0 … spillover by shifting within stories (test-side, independent of the module)."""
    grouped = frame.groupby("story")
    lags = {f"{c}_{k}": grouped[c].shift(k) for c in columns for k in range(spillover + 1)}
    return pd.DataFrame(lags, index=frame.index)


def _reference_per_word(frame, fold, spillover, baseline=("length", "log_freq")):
    """Per-word ΔLL from statsmodels fits and Gaussian log densities, built from scratch."""
    base = sm.add_constant(_lag_design(frame, list(baseline), spillover))
    full = pd.concat([base, _lag_design(frame, ["surprisal"], spillover)], axis=1)
    keep = full.notna().all(axis=1) & frame["rt"].notna() & (frame["rt"] != 0)
    y, fold = frame["rt"][keep], pd.Series(fold, index=frame.index)[keep]
    out = pd.Series(np.nan, index=y.index)
    for f in np.unique(fold):
        test = fold == f
        ll = {}
        for name, x in (("base", base[keep]), ("full", full[keep])):
            fit = sm.OLS(y[~test], x[~test]).fit()
            sd = math.sqrt(fit.ssr / fit.df_resid)
            resid = y[test] - fit.predict(x[test])
            ll[name] = -0.5 * np.log(2 * np.pi * sd**2) - resid**2 / (2 * sd**2)
        out[test] = ll["full"] - ll["base"]
    return out


def test_planted_surprisal_effect_gives_positive_delta_ll_and_recovers_coefficients():
    frame = _synthetic(surprisal_ms=(3.0, 1.5))
    result = delta_loglik(frame, spillover=4)
    assert result.mean > 4 * result.se > 0
    full = sm.add_constant(_lag_design(frame, ["length", "log_freq", "surprisal"], 4))
    keep = full.notna().all(axis=1)
    fit = sm.OLS(frame["rt"][keep], full[keep]).fit()
    assert sorted(result.coef) == [0, 1, 2, 3, 4]  # current word + 4 previous words
    for k, planted in ((0, 3.0), (1, 1.5), (2, 0.0), (3, 0.0), (4, 0.0)):
        assert result.coef[k] == pytest.approx(fit.params[f"surprisal_{k}"], abs=1e-8)
        assert abs(result.coef[k] - planted) < 3 * fit.bse[f"surprisal_{k}"]


def test_unrelated_surprisal_gives_delta_ll_near_zero():
    frame = _synthetic(n_stories=10, words=1000, surprisal_ms=())
    frame["surprisal"] = np.random.default_rng(7).gamma(2.0, 2.0, len(frame))
    result = delta_loglik(frame)
    assert abs(result.mean) < 2 * result.se
    assert result.se < 1e-3  # the test has power: a real effect of 0.005 nats/word would show


def test_explicit_folds_match_an_independent_statsmodels_computation():
    frame = _synthetic(n_stories=3, words=300)
    fold = np.arange(len(frame)) % 5
    result = delta_loglik(frame, folds=fold, spillover=3, return_per_word=True)
    reference = _reference_per_word(frame, fold, spillover=3)
    assert result.folds == 5 and result.n == len(reference)
    pd.testing.assert_series_equal(
        result.per_word.sort_index(), reference.sort_index(), check_names=False, atol=1e-8
    )
    assert result.mean == pytest.approx(reference.mean(), abs=1e-10)
    assert result.se == pytest.approx(reference.std(ddof=1) / math.sqrt(len(reference)), rel=1e-8)


def _numpy_ols_reference(frame: pd.DataFrame, fold: np.ndarray) -> pd.Series:
    """Per-word ΔLL with the current word and 4 previous words, written from scratch.

    Lags from a pandas groupby/shift within stories; a row is kept when all 4 previous words
    exist and its RT is not 0 (a zero-RT word still serves as a lag of the words after it). Each
    fold: ``numpy.linalg.lstsq`` on the raw (unstandardized) design of the other folds,
    σ² = RSS / (n_train − p), Gaussian log density of the held-out RTs.
    """
    grouped = frame.groupby("story")
    columns = {"const": pd.Series(1.0, index=frame.index)}
    for name in ("length", "log_freq", "surprisal"):
        columns |= {f"{name}_lag{k}": grouped[name].shift(k) for k in range(5)}
    design = pd.DataFrame(columns)
    keep = design.notna().all(axis=1) & (frame["rt"] != 0)
    baseline_columns = [c for c in design.columns if not c.startswith("surprisal")]
    y, fold = frame["rt"][keep].to_numpy(float), np.asarray(fold)[keep.to_numpy()]
    delta = np.empty(len(y))
    for f in np.unique(fold):
        test = fold == f
        loglik = []
        for x in (design[keep].to_numpy(float), design[keep][baseline_columns].to_numpy(float)):
            beta, *_ = np.linalg.lstsq(x[~test], y[~test], rcond=None)
            rss = np.sum((y[~test] - x[~test] @ beta) ** 2)
            sigma2 = rss / ((~test).sum() - x.shape[1])
            resid = y[test] - x[test] @ beta
            loglik.append(-0.5 * np.log(2 * np.pi * sigma2) - resid**2 / (2 * sigma2))
        delta[test] = loglik[0] - loglik[1]
    return pd.Series(delta, index=frame.index[keep.to_numpy()])


def test_spillover_4_equals_an_independent_ols_with_the_current_and_4_previous_words():
    frame = _synthetic(n_stories=4, words=300, surprisal_ms=(3.0, 1.5, 0.0, 0.0, 1.0))
    zero = frame.index[(frame["story"] == "s1") & (frame["position"] == 100)]
    frame.loc[zero, "rt"] = 0.0  # dropped itself; the 4 words after it stay
    fold = np.random.default_rng(2).integers(0, 10, len(frame))
    result = delta_loglik(frame, spillover=4, folds=fold, return_per_word=True)
    reference = _numpy_ols_reference(frame, fold)
    assert result.n == len(reference) == len(frame) - 4 * 4 - 1
    assert result.n_dropped == 17
    assert zero[0] not in result.per_word.index and zero[0] + 1 in result.per_word.index
    np.testing.assert_allclose(
        result.per_word.sort_index().to_numpy(), reference.sort_index().to_numpy(), atol=1e-9
    )
    assert result.mean == pytest.approx(reference.mean(), abs=1e-9)
    assert result.se == pytest.approx(reference.std(ddof=1) / math.sqrt(len(reference)), rel=1e-7)


def test_an_effect_4_words_back_is_seen_by_spillover_4_and_not_3():
    frame = _synthetic(n_stories=6, words=500, surprisal_ms=(2.0, 0.0, 0.0, 0.0, 6.0))
    four = delta_loglik(frame, spillover=4, return_per_word=True)
    three = delta_loglik(frame, spillover=3, return_per_word=True)
    assert abs(four.coef[4] - 6.0) < 1.0 and 4 not in three.coef
    common = four.per_word.index.intersection(three.per_word.index)
    gain = four.per_word[common] - three.per_word[common]
    assert gain.mean() > 5 * gain.std(ddof=1) / math.sqrt(len(gain))


def test_statsmodels_and_fast_paths_agree():
    frame = _synthetic(n_stories=4, words=250)
    fast = delta_loglik(frame, return_per_word=True)
    reference = delta_loglik(frame, method="statsmodels", return_per_word=True)
    np.testing.assert_allclose(fast.per_word, reference.per_word, rtol=0, atol=1e-8)
    assert fast.mean == pytest.approx(reference.mean, abs=1e-10)
    for k in fast.coef:
        assert fast.coef[k] == pytest.approx(reference.coef[k], abs=1e-8)


def test_results_are_identical_across_runs_and_row_orders():
    frame = _synthetic(n_stories=3, words=200)
    first = delta_loglik(frame, return_per_word=True)
    again = delta_loglik(frame, return_per_word=True)
    shuffled = delta_loglik(frame.sample(frac=1.0, random_state=3), return_per_word=True)
    assert first == again
    assert first.per_word.equals(again.per_word)
    assert shuffled.mean == pytest.approx(first.mean, abs=1e-12)
    pd.testing.assert_series_equal(shuffled.per_word.sort_index(), first.per_word, atol=1e-12)


def test_fold_of_a_word_depends_only_on_its_story_position_and_seed():
    frame = _synthetic(n_stories=4, words=500)
    folds = assign_folds(frame["story"], frame["position"], 10)
    subset = frame.iloc[::3].sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(
        assign_folds(subset["story"], subset["position"], 10), folds[subset.index.to_numpy()]
    )
    sizes = np.bincount(folds, minlength=10)
    assert sizes.min() > 0.8 * len(frame) / 10 and sizes.max() < 1.2 * len(frame) / 10
    other = assign_folds(frame["story"], frame["position"], 10, seed=1)
    assert np.mean(other == folds) < 0.2


@pytest.mark.parametrize("spillover", [0, 2, 4])
def test_dropped_rows_are_first_positions_of_each_story_after_gaps_and_zero_rts(spillover):
    frame = _synthetic(n_stories=3, words=60)
    gap = frame.index[(frame["story"] == "s1") & (frame["position"] == 30)]
    frame = frame.drop(gap)
    nan_rt = frame.index[(frame["story"] == "s2") & (frame["position"] == 40)]
    frame.loc[nan_rt, "rt"] = np.nan
    nan_surprisal = frame.index[(frame["story"] == "s0") & (frame["position"] == 20)]
    frame.loc[nan_surprisal, "surprisal"] = np.nan
    zero_rt = frame.index[(frame["story"] == "s0") & (frame["position"] == 50)]
    frame.loc[zero_rt, "rt"] = 0.0
    result = delta_loglik(frame, spillover=spillover, folds=3, return_per_word=True)

    def dropped(row) -> bool:
        s, p = row["story"], row["position"]
        history = p <= spillover or (s == "s1" and 30 <= p <= 30 + spillover)
        missing = (s == "s2" and p == 40) or (s == "s0" and 20 <= p <= 20 + spillover)
        return history or missing or (s == "s0" and p == 50)

    expected = frame.index[~frame.apply(dropped, axis=1)]
    assert sorted(result.per_word.index) == sorted(expected)
    assert result.n_dropped == len(frame) - len(expected)


def test_tokens_per_word_baseline_absorbs_a_tokenization_confound():
    rng = np.random.default_rng(5)
    frame = _synthetic(n_stories=5, words=600, surprisal_ms=())
    frame["n_tokens"] = rng.integers(1, 5, len(frame))
    frame["rt"] += 15 * frame["n_tokens"]
    frame["surprisal"] = 3 * frame["n_tokens"] + rng.normal(0, 1, len(frame))
    confounded = delta_loglik(frame)
    controlled = delta_loglik(frame, baseline=("length", "log_freq", "n_tokens"))
    assert confounded.mean > 8 * confounded.se
    assert abs(controlled.mean) < 2 * controlled.se
    assert controlled.baseline == ("length", "log_freq", "n_tokens")


def test_baselines_are_computed_from_words_when_absent():
    words = ["“Hello,”", "don't", "--", "England.", "the", "zqxjvw"]
    assert word_length(words).tolist() == [5, 5, 0, 7, 3, 6]
    expected = [
        math.log(max(word_frequency(w, "en"), DEFAULT_FREQUENCY_FLOOR))
        for w in ["hello", "don't", "", "england", "the", "zqxjvw"]
    ]
    assert log_frequency(words).tolist() == pytest.approx(expected)
    assert log_frequency(words)[2] == pytest.approx(math.log(DEFAULT_FREQUENCY_FLOOR))
    assert log_frequency(["zqxjvw"], floor=1e-12)[0] == pytest.approx(math.log(1e-12))

    frame = _synthetic(n_stories=2, words=150)
    vocabulary = np.array(["the", "cat", "England,", "“sat”", "unbelievably", "of", "a"])
    frame["word"] = vocabulary[np.random.default_rng(1).integers(0, len(vocabulary), len(frame))]
    computed = delta_loglik(frame.drop(columns=["length", "log_freq"]))
    given = delta_loglik(add_baseline_columns(frame.drop(columns=["length", "log_freq"])))
    assert computed == given


def test_result_repr_states_units():
    text = repr(delta_loglik(_synthetic(n_stories=2, words=200)))
    assert "nats/word" in text and "spillover 4 = current + 4 previous words" in text
    assert "lag4" in text and "lag5" not in text
    assert isinstance(delta_loglik(_synthetic(n_stories=2, words=200)), PPPResult)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"response": "meanItemRT"}, r"columns \['meanItemRT'\] are not in the frame"),
        ({"baseline": ("length", "zipf")}, r"\['zipf'\] are not in the frame and cannot be"),
        ({"folds": np.zeros(7, dtype=int)}, "one fold id per frame row"),
        ({"folds": 1}, "`folds` must be an int >= 2"),
        ({"spillover": -1}, "`spillover` must be an int >= 0, the number of previous words"),
        ({"spillover": 2.0}, "`spillover` must be an int >= 0"),
        ({"method": "ridge"}, "`method` can be fast or statsmodels, got 'ridge'"),
    ],
)
def test_invalid_arguments_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        delta_loglik(_synthetic(n_stories=2, words=50), **options)


def test_too_few_words_for_the_regression_is_an_error():
    with pytest.raises(ValueError, match="8 usable words for 16 parameters"):
        delta_loglik(_synthetic(n_stories=1, words=12), folds=2)


# --- Natural Stories ------------------------------------------------------------------------------


def test_natural_stories_baselines_for_every_word(ns_corpus):
    out = add_baseline_columns(ns_corpus.frame[["story", "position", "word"]])
    assert len(out) == 10_256
    assert np.isfinite(out["log_freq"]).all() and (out["length"] >= 0).all()
    assert (out["log_freq"] <= math.log(word_frequency("the", "en")) + 1e-12).all()
    assert out["length"].corr(out["log_freq"]) < -0.3  # long words are rare
    first = out.iloc[0]
    assert first["word"] == "If" and first["length"] == 2
    assert first["log_freq"] == pytest.approx(math.log(word_frequency("if", "en")))

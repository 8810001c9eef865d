"""Mixed-effects ΔLL on per-reader data: planted effects, an exact OLS identity, a dense ML fit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import optimize, stats

from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.delta_loglik_mixed import delta_loglik_mixed

PLANTED_MS_PER_BIT = 10.0
SD_READER, SD_ITEM, SD_NOISE = 40.0, 20.0, 50.0  # ms


def per_reader_fixture(
    slope: float, *, n_words: int = 150, n_readers: int = 8, seed: int = 1, skips: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Words of 2 stories and every reader's rt (ms): reader + item intercepts + planted slope.

    ``skips`` reader × word rows get rt 0 (skipped words) and 1 row gets NaN.
    """
    rng = np.random.default_rng(seed)
    half = n_words // 2
    words = pd.DataFrame(
        {"story": np.repeat([1, 2], half), "position": np.tile(np.arange(1, half + 1), 2)}
    )
    words["length"] = rng.integers(1, 12, len(words)).astype(float)
    words["log_freq"] = -3 - 0.8 * words["length"] + rng.normal(0, 2, len(words))
    words["surprisal"] = 4 - 0.5 * words["log_freq"] + rng.gamma(2, 2, len(words))  # bits
    item = rng.normal(0, SD_ITEM, len(words))
    reader_effect = rng.normal(0, SD_READER, n_readers)
    frames = []
    for r in range(n_readers):
        rt = (
            300
            + 4 * words["length"]
            + slope * words["surprisal"]
            + item
            + reader_effect[r]
            + rng.normal(0, SD_NOISE, len(words))
        )
        frames.append(words[["story", "position"]].assign(reader=f"r{r}", rt=rt))
    readers = pd.concat(frames, ignore_index=True)
    if skips:
        rows = rng.choice(len(readers), skips + 1, replace=False)
        readers.loc[rows[:-1], "rt"] = 0.0
        readers.loc[rows[-1], "rt"] = np.nan
    return readers, words


def lagged_design(words: pd.DataFrame, spillover: int) -> pd.DataFrame:
    """Per word: length, log_freq, surprisal and their lags 1 … S, built with pandas shift."""
    columns = {}
    by_story = words.sort_values(["story", "position"]).groupby("story")
    for name in ("length", "log_freq", "surprisal"):
        for k in range(spillover + 1):
            columns[f"{name}_{k}"] = by_story[name].shift(k)
    return words[["story", "position"]].join(pd.DataFrame(columns)).dropna()


@pytest.fixture(scope="module")
def planted():
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT)
    return readers, words, delta_loglik_mixed(readers, words, spillover=1)


def test_planted_surprisal_slope_recovered_within_its_se(planted):
    # Seed 1: the slope fitted by OLS on these word means is 0.2 SE from 10 ms/bit. (A draw lands
    # outside 1 SE about a third of the time; seed 0 is one, 2.9 SE off by either method.)
    _, _, result = planted
    assert abs(result.coef[0] - PLANTED_MS_PER_BIT) < result.se[0]
    assert 0.5 < result.se[0] < 1.5  # ms/bit: the item variance, not the N rows, sets the SE
    assert abs(result.coef[1]) < 2 * result.se[1]  # nothing planted on the previous word
    assert (result.n_obs, result.n_readers, result.n_items) == (8 * 148, 8, 148)


def test_the_se_is_calibrated_over_seeds():
    # Over 40 draws, (estimate − planted) / SE has SD ≈ 1 (here 1.19; the SD of such an SD is
    # ~0.13): an SE 2/3 of this one (SD 1.8) or twice it (SD 0.6) fails.
    z = []
    for seed in range(40):
        readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=80, n_readers=6, seed=seed)
        result = delta_loglik_mixed(readers, words, spillover=0)
        z.append((result.coef[0] - PLANTED_MS_PER_BIT) / result.se[0])
    assert 0.7 < np.std(z, ddof=1) < 1.35
    assert abs(np.mean(z)) < 0.5


def test_delta_ll_positive_with_the_effect_and_at_noise_level_without(planted):
    _, _, with_effect = planted
    readers, words = per_reader_fixture(0.0)
    without = delta_loglik_mixed(readers, words, spillover=1)
    assert with_effect.in_sample and with_effect.converged and without.converged
    assert with_effect.delta_ll > 30 * with_effect.noise_level
    assert with_effect.p_value < 1e-10
    # nested ML fits: ΔLL >= 0; with no effect, 2 N ΔLL ~ χ²(2)
    assert 0 <= without.delta_ll < stats.chi2.ppf(0.999, 2) / (2 * without.n_obs)
    assert without.p_value > 1e-3


def test_balanced_fixed_effects_equal_ols_on_word_means(planted):
    # Every reader reads every used word: the GLS fixed effects of word-level predictors are OLS
    # on the per-word mean rt, whatever the variance components (an exact identity).
    readers, words, result = planted
    means = readers.groupby(["story", "position"], as_index=False)["rt"].mean()
    design = lagged_design(words, 1).merge(means, on=["story", "position"])
    x = np.column_stack([np.ones(len(design)), design.drop(columns=["story", "position", "rt"])])
    beta, *_ = np.linalg.lstsq(x, design["rt"].to_numpy(), rcond=None)
    names = list(design.drop(columns=["story", "position", "rt"]).columns)
    for k in (0, 1):
        assert result.coef[k] == pytest.approx(beta[1 + names.index(f"surprisal_{k}")], abs=1e-6)
    # ... and the gain per word is close to OLS's in-sample ΔLL on those means, (n/2) ln(RSS ratio)
    base = np.delete(x, [1 + names.index("surprisal_0"), 1 + names.index("surprisal_1")], axis=1)
    y = design["rt"].to_numpy()
    rss = [np.sum((y - a @ np.linalg.lstsq(a, y, rcond=None)[0]) ** 2) for a in (base, x)]
    ols_in_sample = 0.5 * np.log(rss[0] / rss[1])
    assert result.delta_ll_nats_per_word == pytest.approx(ols_in_sample, rel=0.02)
    assert result.delta_ll == pytest.approx(ols_in_sample / 8, rel=0.02)  # 8 readers per word


def dense_loglik(y, x, z_reader, z_item, var_reader, var_item, var_residual):
    """ML log-likelihood of y (ms) with β profiled by GLS, crossed intercepts, dense V; β; SE(β).

    In torch float64 on one thread: numpy's multithreaded BLAS is ~100x slower on busy cores.
    """
    y, x, z_reader, z_item = (
        torch.as_tensor(a, dtype=torch.float64) for a in (y, x, z_reader, z_item)
    )
    v = (
        var_residual * torch.eye(len(y), dtype=torch.float64)
        + var_reader * z_reader @ z_reader.T
        + var_item * z_item @ z_item.T
    )
    chol = torch.linalg.cholesky(v)
    vi_x = torch.cholesky_solve(x, chol)
    beta = torch.linalg.solve(x.T @ vi_x, vi_x.T @ y)
    resid = (y - x @ beta).unsqueeze(1)
    log_det = 2 * torch.log(torch.diagonal(chol)).sum()
    quad = (resid.T @ torch.cholesky_solve(resid, chol)).squeeze()
    loglik = -0.5 * (len(y) * math.log(2 * math.pi) + log_det + quad)
    se = torch.sqrt(torch.diagonal(torch.linalg.inv(x.T @ vi_x)))
    return float(loglik), beta.numpy(), se.numpy()


def test_loglik_is_the_dense_crossed_ml_maximum():
    # Unbalanced (skipped words): maximise the crossed-intercept ML likelihood independently.
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=40, n_readers=4, skips=8)
    result = delta_loglik_mixed(readers, words, spillover=1)
    design = lagged_design(words, 1)
    rows = readers.merge(design, on=["story", "position"])
    rows = rows[np.isfinite(rows["rt"]) & (rows["rt"] != 0)]
    y = rows["rt"].to_numpy()
    x = np.column_stack([np.ones(len(rows)), rows[list(design.columns[2:])].to_numpy()])
    z_reader = pd.get_dummies(rows["reader"]).to_numpy(dtype=float)
    z_item = pd.get_dummies(rows["story"].astype(str) + ":" + rows["position"].astype(str))
    z_item = z_item.to_numpy(dtype=float)
    assert (result.n_obs, result.n_readers, result.n_items) == (len(y), 4, z_item.shape[1])
    assert result.n_dropped == len(readers) - len(y)

    at_estimate, beta, se = dense_loglik(
        y, x, z_reader, z_item, result.var_reader, result.var_item, result.var_residual
    )
    assert result.loglik_full == pytest.approx(at_estimate, abs=1e-6)
    surprisal_0 = list(design.columns[2:]).index("surprisal_0")
    assert result.coef[0] == pytest.approx(beta[1 + surprisal_0], rel=1e-6)
    assert result.se[0] == pytest.approx(se[1 + surprisal_0], rel=1e-6)  # GLS SE, lme4's vcov

    def negative(log_var):
        return -dense_loglik(y, x, z_reader, z_item, *np.exp(log_var))[0]

    start = np.log(np.full(3, y.var() / 3))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = optimize.minimize(negative, start, method="L-BFGS-B")
    finally:
        torch.set_num_threads(threads)
    assert result.loglik_full == pytest.approx(-best.fun, abs=1e-4)  # the ML maximum, not REML


def test_the_sparse_path_equals_stock_statsmodels_mixedlm():
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=60, n_readers=5, skips=10)
    fast = delta_loglik_mixed(readers, words, spillover=1)
    stock = delta_loglik_mixed(readers, words, spillover=1, method="statsmodels")
    assert fast.loglik_full == pytest.approx(stock.loglik_full, abs=1e-5)
    assert fast.loglik_base == pytest.approx(stock.loglik_base, abs=1e-5)
    assert fast.coef[0] == pytest.approx(stock.coef[0], rel=1e-5)
    assert fast.var_item == pytest.approx(stock.var_item, rel=1e-3)
    assert fast.var_reader == pytest.approx(stock.var_reader, rel=1e-3)
    # SEs: GLS information (fast) vs statsmodels' full observed Hessian: close, not equal
    assert fast.se[0] == pytest.approx(stock.se[0], rel=0.1)


def test_corpus_with_readers_is_used_and_one_without_gets_a_clear_error():
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=40, n_readers=3)
    frame = words.assign(word="the", rt=300.0)
    corpus = ReadingTimeCorpus(name="tiny", frame=frame, readers=readers)
    from_corpus = delta_loglik_mixed(corpus, frame, spillover=0)
    assert from_corpus.delta_ll == delta_loglik_mixed(readers, frame, spillover=0).delta_ll
    no_readers = ReadingTimeCorpus(name="means", frame=frame)
    with pytest.raises(ValueError, match="corpus 'means' has no per-reader data"):
        delta_loglik_mixed(no_readers, frame)
    with pytest.raises(ValueError, match="needs per-reader data"):
        delta_loglik_mixed(None, frame)


def test_readings_outside_the_kept_rule_are_left_out():
    # Loaders mark the readings behind the per-word mean with `kept`; outliers marked False must
    # not enter the mixed model either (here 4 readings of 20 s would dominate the fit).
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=40, n_readers=3)
    outliers = readers.sample(4, random_state=0).index
    marked = readers.assign(kept=True)
    marked.loc[outliers, ["rt", "kept"]] = [20_000.0, False]
    result = delta_loglik_mixed(marked, words, spillover=0)
    clean = delta_loglik_mixed(readers.drop(index=outliers), words, spillover=0)
    assert result.delta_ll == pytest.approx(clean.delta_ll, rel=1e-9)
    assert result.n_obs == clean.n_obs == len(readers) - 4
    assert result.n_dropped == 4
    every_row = delta_loglik_mixed(marked, words, spillover=0, kept=None)
    assert every_row.var_residual > 10 * result.var_residual


def test_a_per_reader_tsv_loaded_by_load_tsv_gives_the_same_fit(tmp_path):
    # The generic loader's corpus.readers (with its `kept` column) feeds the measure directly;
    # a 20 s reading outside max_rt is left out as from the per-word means.
    from phasewatch.corpora import load_tsv

    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=40, n_readers=3)
    table = readers.assign(word="w" + readers["position"].astype(str))
    table.loc[5, "rt"] = 20_000.0
    table.to_csv(tmp_path / "spr.tsv", sep="\t", index=False)
    corpus = load_tsv(tmp_path / "spr.tsv", reader="reader", max_rt=3000)
    frame = corpus.frame.merge(words, on=["story", "position"])
    from_file = delta_loglik_mixed(corpus, frame, spillover=1)
    direct = delta_loglik_mixed(readers.drop(index=5), words, spillover=1)
    assert from_file.delta_ll == pytest.approx(direct.delta_ll, rel=1e-9)
    assert from_file.n_obs == direct.n_obs


def test_bad_per_reader_input_names_the_fix():
    readers, words = per_reader_fixture(PLANTED_MS_PER_BIT, n_words=40, n_readers=3)
    with pytest.raises(ValueError, match=r"lack the columns \['reader'\]"):
        delta_loglik_mixed(readers.drop(columns="reader"), words)
    stray = pd.concat([readers, readers.head(1).assign(story=9)], ignore_index=True)
    with pytest.raises(ValueError, match="1 per-reader rows name a"):
        delta_loglik_mixed(stray, words)
    with pytest.raises(ValueError, match="`method` can be fast or statsmodels, got 'lme4'"):
        delta_loglik_mixed(readers, words, method="lme4")
    with pytest.raises(ValueError, match="`spillover` must be an int >= 0"):
        delta_loglik_mixed(readers, words, spillover=-1)
    with pytest.raises(ValueError, match="usable reader × word observations"):
        delta_loglik_mixed(readers.head(5), words, spillover=1)

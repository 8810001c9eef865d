"""Psychometric predictive power: ΔLL of reading times when surprisal joins a baseline regression.

Method of Wilcox et al. (2020), as used by Aoyama & Wilcox (2025): two linear regressions of the
reading time ``y`` of each word,

- baseline: ``y ~ 1 + Σ_{k=0}^{S} Σ_b β_{b,k} · b(w_{i−k})``  (``b`` ∈ baseline predictors),
- full:     baseline terms ``+ Σ_{k=0}^{S} α_k · surprisal(w_{i−k})``,

with spillover ``S`` = the number of previous words: lags ``0 … S`` of every predictor (``S = 4``:
the current word and the 4 words before it, as the self-paced-reading regression of Aoyama &
Wilcox, 2025; ``S = 2`` for eye tracking; ``S = 0``: the current word only). Both are fitted by OLS
on k − 1 folds and scored on the held-out fold;
for each held-out word ``ΔLL_i = ln N(y_i | ŷ_full, σ̂²_full) − ln N(y_i | ŷ_base, σ̂²_base)``,
``σ̂² = RSS / (n_train − rank)`` of that model on its training folds. PPP is the mean of ``ΔLL_i``
in nats per word.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phasewatch.measures.baselines import DEFAULT_FREQUENCY_FLOOR, add_baseline_columns
from phasewatch.measures.blas_threads import one_blas_thread

_LOG_2PI = math.log(2.0 * math.pi)
_METHODS = ("fast", "statsmodels")


@dataclass(frozen=True)
class PPPResult:
    """ΔLL of reading times from surprisal over a baseline regression (Wilcox et al., 2020).

    ``mean``: mean over held-out words of ``ΔLL_i`` (nats/word); ``se``: its standard error,
    ``SD(ΔLL_i) / √n``; ``n``: words used; ``coef``: lag → surprisal coefficient of the full model
    fitted on all ``n`` words (response units per surprisal unit, e.g. ms/bit); ``folds``: number of
    cross-validation folds; ``spillover``: previous words per predictor (lags ``0 … spillover``);
    ``baseline``: baseline predictor names; ``n_dropped``: frame rows left out (incomplete history,
    non-finite values or a response of 0); ``per_word``: ``ΔLL_i`` indexed like the frame (only
    with ``return_per_word=True``).
    """

    mean: float
    se: float
    n: int
    coef: dict[int, float]
    folds: int
    spillover: int
    baseline: tuple[str, ...]
    n_dropped: int = 0
    per_word: pd.Series | None = field(default=None, repr=False, compare=False)

    @property
    def delta_ll_nats_per_word(self) -> float:
        """Same as ``mean``: ΔLL in nats per word."""
        return self.mean

    def __repr__(self) -> str:
        coef = ", ".join(f"lag{k} {v:.3g}" for k, v in self.coef.items())
        return (
            f"PPPResult(ΔLL = {self.mean:.4f} ± {self.se:.4f} nats/word (mean ± SE over "
            f"{self.n} held-out words, {self.folds} folds, {self.n_dropped} rows dropped); "
            f"surprisal coef (response units per surprisal unit, e.g. ms/bit) [{coef}]; "
            f"{spillover_text(self.spillover)}; "
            f"baseline {list(self.baseline)})"
        )


@one_blas_thread
def delta_loglik(
    frame: pd.DataFrame,
    *,
    response: str = "rt",
    surprisal: str = "surprisal",
    baseline: str | Sequence[str] = ("length", "log_freq"),
    spillover: int = 4,
    folds: int | Sequence[int] | np.ndarray = 10,
    story: str = "story",
    position: str = "position",
    word: str = "word",
    seed: int = 0,
    frequency_floor: float = DEFAULT_FREQUENCY_FLOOR,
    method: str = "fast",
    return_per_word: bool = False,
) -> PPPResult:
    """ΔLL (nats/word) of a reading-time regression when surprisal and its spillover are added.

    As input:
        frame: one row per word with ``story``, ``position`` (integer word index in the story),
            the response (ms), the surprisal (bits) and the baseline columns. ``length`` and
            ``log_freq`` are computed from ``word`` when absent
            (:func:`phasewatch.measures.baselines.add_baseline_columns`).
        response, surprisal: column names of the reading time and the surprisal.
        baseline: baseline predictor columns; each enters with lags ``0 … spillover``. Add a
            tokens-per-word column (e.g. ``"n_tokens"``) to control for tokenization.
        spillover: ``S >= 0``, the number of previous words whose predictors enter with the
            current word's: lags ``0 … S``; lag ``k`` of the row at position ``p`` is the row at
            ``p − k`` of the same story. ``S = 4`` (default) = the current word and the 4 before
            it, the self-paced-reading convention of Aoyama & Wilcox (2025); eye-tracking corpora
            use 2 (``ReadingTimeCorpus.default_spillover`` holds a corpus's value); ``S = 0`` =
            the current word only. In phasewatch 0.1.0, ``spillover=S`` meant the current word
            and ``S − 1`` previous words: pass ``S − 1`` to reproduce a 0.1.0 result.

            Rows dropped (counted in ``n_dropped``): rows without all ``S`` previous positions in
            their story (the first ``S`` words of each story and the ``S`` words after a gap);
            rows where the response or any lag of a predictor is not finite; rows whose response
            is exactly 0 (a missing reading recorded as 0, dropped as by Aoyama & Wilcox; such a
            row still serves as a lag of the words after it).
        folds: number of folds ``k >= 2`` — each word's fold is a seeded hash of its
            (story, position), so the assignment is the same at every call and ΔLL differences
            between checkpoints are not fold noise — or an array with one fold id per frame row.
        seed: seed of the fold hash.
        frequency_floor: frequency floor for a computed ``log_freq`` column.
        method: ``"fast"`` (normal equations of standardized predictors, each fold's training
            Gram matrix = total − held-out part, solved with numpy least squares) or
            ``"statsmodels"`` (``sm.OLS`` per fold); they agree to ~1e-10.
        return_per_word: also return ``ΔLL_i`` per used row (``PPPResult.per_word``).

    As output:
        :class:`PPPResult` with ``mean`` ± ``se`` (nats/word), ``n``, surprisal ``coef`` per lag.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame, got {type(frame).__name__}")
    baseline = (baseline,) if isinstance(baseline, str) else tuple(baseline)
    spillover = check_spillover(spillover)
    if method not in _METHODS:
        raise ValueError(f"`method` can be {' or '.join(_METHODS)}, got {method!r}")
    fold_ids = _fold_ids(frame, folds, story, position, seed)
    frame = add_baseline_columns(frame, baseline, word=word, floor=frequency_floor)
    _check_columns(frame, [response, surprisal, story, position])

    order, lag_ok = _history(frame, story, position, spillover)
    y = frame[response].to_numpy(dtype=np.float64, na_value=np.nan)[order]
    base = _lagged(
        [frame[c].to_numpy(dtype=np.float64, na_value=np.nan)[order] for c in baseline], spillover
    )
    base = base if baseline else np.zeros((len(y), 0))
    surp = _lagged([frame[surprisal].to_numpy(dtype=np.float64, na_value=np.nan)[order]], spillover)
    used = lag_ok & np.isfinite(y) & np.isfinite(base).all(1) & np.isfinite(surp).all(1)
    used &= y != 0  # a zero response is a missing reading (Aoyama & Wilcox, 2025, drop it too)

    y, fold = y[used], fold_ids[order][used]
    x_base = np.column_stack([np.ones(len(y)), base[used]])
    x_full = np.column_stack([x_base, surp[used]])
    _check_enough_rows(len(y), x_full.shape[1], len(frame))

    cv = _crossvalidated_loglik_statsmodels if method == "statsmodels" else _crossvalidated_loglik
    fold_values = np.unique(fold)
    for f in fold_values:
        _check_enough_rows(int((fold != f).sum()), x_full.shape[1], len(frame), fold=f)
    delta = cv(x_full, y, fold, fold_values) - cv(x_base, y, fold, fold_values)

    beta = _ols(*_standardize(x_full), y)
    coef = {k: float(beta[x_base.shape[1] + k]) for k in range(spillover + 1)}
    per_word = None
    if return_per_word:
        per_word = pd.Series(delta, index=frame.index[order[used]], name="delta_ll_nats")
    return PPPResult(
        mean=float(delta.mean()),
        se=float(delta.std(ddof=1) / math.sqrt(len(delta))),
        n=len(delta),
        coef=coef,
        folds=len(fold_values),
        spillover=spillover,
        baseline=baseline,
        n_dropped=len(frame) - len(delta),
        per_word=per_word,
    )


def check_spillover(spillover: Any) -> int:
    """``spillover`` as an int, or a ValueError saying what it counts (previous words, >= 0)."""
    if isinstance(spillover, bool) or not isinstance(spillover, (int, np.integer)) or spillover < 0:
        raise ValueError(
            f"`spillover` must be an int >= 0, the number of previous words (0 = current word "
            f"only, 4 = current + 4 previous words, 2 for eye tracking), got {spillover!r}"
        )
    return int(spillover)


def spillover_meaning(spillover: int) -> str:
    """A spillover in words: ``"current + 4 previous words"``, ``"current word only"``."""
    if spillover == 0:
        return "current word only"
    return f"current + {spillover} previous word{'s' * (spillover != 1)}"


def spillover_text(spillover: int) -> str:
    """How phasewatch prints a spillover: ``"spillover 4 = current + 4 previous words"``."""
    return f"spillover {spillover} = {spillover_meaning(spillover)}"


def assign_folds(
    story: Sequence[Any] | np.ndarray,
    position: Sequence[int] | np.ndarray,
    k: int,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Fold id in ``0 … k−1`` per word: a seeded 64-bit hash of (story, position) modulo ``k``.

    Depends only on the word's own (story, position) and the seed, not on the other rows, so the
    same word lands in the same fold at every call, whatever rows are dropped.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"`folds` must be an int >= 2 or an array of fold ids, got {k!r}")
    codes, uniques = pd.factorize(pd.Series(story), sort=False)
    story_keys = np.array([_story_key(s, seed) for s in uniques], dtype=np.uint64)
    pos = np.asarray(position).astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _splitmix64(story_keys[codes] ^ _splitmix64(pos + np.uint64(seed)))
    return (h % np.uint64(k)).astype(np.int64)


# --- design --------------------------------------------------------------------------------------


def _check_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"columns {missing} are not in the frame; pass the right name to `response`, "
            f"`surprisal`, `story` or `position`. Frame columns: {list(frame.columns)}"
        )


def _fold_ids(frame: pd.DataFrame, folds: Any, story: str, position: str, seed: int) -> np.ndarray:
    if isinstance(folds, (int, np.integer)) and not isinstance(folds, bool):
        _check_columns(frame, [story, position])
        return assign_folds(frame[story], frame[position], int(folds), seed=seed)
    ids = np.asarray(folds)
    if ids.ndim != 1 or len(ids) != len(frame):
        raise ValueError(
            f"`folds` as an array needs one fold id per frame row ({len(frame)}), got shape "
            f"{ids.shape}; or pass the number of folds as an int"
        )
    if len(np.unique(ids)) < 2:
        raise ValueError("`folds` as an array needs at least 2 distinct fold ids")
    return ids


def _history(
    frame: pd.DataFrame, story: str, position: str, spillover: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row order by (story, position) and, in that order, whether lags 1 … S all exist."""
    codes, _ = pd.factorize(frame[story], sort=False)
    pos = pd.to_numeric(frame[position], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    if not np.all(np.isfinite(pos) & (pos == np.round(pos))):
        raise ValueError(
            f"`{position}` must hold integer word positions, got {frame[position].dtype} values "
            "that are not all whole numbers"
        )
    pos = pos.astype(np.int64)
    order = np.lexsort((pos, codes))
    codes, pos = codes[order], pos[order]
    if np.any((codes[1:] == codes[:-1]) & (pos[1:] == pos[:-1])):
        raise ValueError(f"(`{story}`, `{position}`) pairs repeat; each word needs its own")
    ok = np.ones(len(order), dtype=bool)
    for k in range(1, spillover + 1):
        same = np.zeros(len(order), dtype=bool)
        same[k:] = (codes[k:] == codes[:-k]) & (pos[k:] - pos[:-k] == k)
        ok &= same
    return order, ok


def _lagged(columns: list[np.ndarray], spillover: int) -> np.ndarray:
    """[n, len(columns) · (S + 1)]: for each column, lags 0 … S (rows in story/position order)."""
    n = len(columns[0]) if columns else 0
    width = spillover + 1
    out = np.full((n, len(columns) * width), np.nan)
    for j, values in enumerate(columns):
        for k in range(width):
            out[k:, j * width + k] = values[: len(values) - k]
    return out


def _check_enough_rows(n: int, n_params: int, n_rows: int, fold: Any = None) -> None:
    if n <= n_params:
        where = f"the training folds for held-out fold {fold!r} have" if fold is not None else ""
        raise ValueError(
            f"{where or 'the regression has'} {n} usable words for {n_params} parameters "
            f"(of {n_rows} frame rows); needs more words with a full spillover history, finite "
            "values and a nonzero response, or a smaller `spillover`"
        )


# --- fitting -------------------------------------------------------------------------------------


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns after the intercept centred and scaled to unit SD (constant columns become 0)."""
    center = x.mean(0)
    scale = x.std(0)
    center[0], scale[0] = 0.0, 1.0
    scale[scale == 0] = 1.0
    return (x - center) / scale, center, scale


def _ols(xs: np.ndarray, center: np.ndarray, scale: np.ndarray, y: np.ndarray) -> np.ndarray:
    """OLS coefficients of the predictors in their original units (intercept excepted).

    Solved from the normal equations of the standardized design, as in the cross-validation.
    """
    beta, *_ = np.linalg.lstsq(xs.T @ xs, xs.T @ y, rcond=None)
    return beta / scale


def _crossvalidated_loglik(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, fold_values: np.ndarray
) -> np.ndarray:
    """ln N(y_i | ŷ_i, σ̂²) of every row when its fold is held out; σ̂² = RSS_train / (n − rank).

    Fast exact path on standardized predictors and centred response: each fold's training normal
    equations are the totals minus the held-out fold's part, solved by least squares (minimum
    norm if rank-deficient); ``RSS_train = ‖y − Xβ̂‖²`` is expanded over the same totals, so
    only the held-out rows are touched per fold.
    """
    xs, _, _ = _standardize(x)
    yc = y - y.mean()
    order = np.argsort(fold, kind="stable")
    xs, yc = xs[order], yc[order]
    bounds = [*np.searchsorted(fold[order], fold_values, side="left").tolist(), len(y)]
    gram, xty, yty = xs.T @ xs, xs.T @ yc, float(yc @ yc)
    ll = np.empty(len(y))
    for lo, hi in itertools.pairwise(bounds):
        x_test, y_test = xs[lo:hi], yc[lo:hi]
        g_train, b_train = gram - x_test.T @ x_test, xty - x_test.T @ y_test
        beta, _, rank, _ = np.linalg.lstsq(g_train, b_train, rcond=None)
        rss = (yty - y_test @ y_test) - 2.0 * beta @ b_train + beta @ g_train @ beta
        sigma2 = rss / (len(y) - (hi - lo) - rank)
        if not sigma2 > 0:
            raise ValueError(
                "a regression fits the reading times exactly (zero residual variance); ΔLL is "
                "undefined. Check that the response is not a copy of a predictor."
            )
        ll[order[lo:hi]] = _gaussian_loglik(y_test - x_test @ beta, sigma2)
    return ll


def _crossvalidated_loglik_statsmodels(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, fold_values: np.ndarray
) -> np.ndarray:
    """Reference path: ``statsmodels.OLS`` per fold; σ̂² = ``result.scale`` = RSS / df_resid."""
    import statsmodels.api as sm

    ll = np.empty(len(y))
    for f in fold_values:
        test = fold == f
        result = sm.OLS(y[~test], x[~test]).fit()
        ll[test] = _gaussian_loglik(y[test] - result.predict(x[test]), float(result.scale))
    return ll


def _gaussian_loglik(resid: np.ndarray, sigma2: float) -> np.ndarray:
    return -0.5 * (_LOG_2PI + math.log(sigma2)) - resid**2 / (2.0 * sigma2)


# --- fold hash -----------------------------------------------------------------------------------


def _story_key(story: Any, seed: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{story}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele et al., 2014): a bijective 64-bit mix, wrapping arithmetic."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)).astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))

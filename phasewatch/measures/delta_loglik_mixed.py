"""Optional mixed-effects ΔLL on per-reader reading times (off by default: 20× a PPP evaluation).

The per-word ΔLL (:mod:`phasewatch.measures.delta_loglik`) regresses per-word mean reading times.
This measure regresses every reader's reading time of every word instead, with crossed random
intercepts for readers and items (words), as linear mixed models:

- baseline: ``y_rw = β_0 + Σ_{k=0}^{S} Σ_b β_{b,k} · b(w−k) + u_r + v_w + ε_rw``,
- full:     baseline terms ``+ Σ_{k=0}^{S} α_k · surprisal(w−k)``,

``u_r ~ N(0, σ²_reader)``, ``v_w ~ N(0, σ²_item)``, ``ε_rw ~ N(0, σ²)``, all independent. Both are
fitted by maximum likelihood (ML, not REML: REML likelihoods of models with different fixed
effects are not comparable) with ``statsmodels`` ``MixedLM``: one group holding all rows, readers
and items as two variance components with sparse indicator designs (statsmodels' documented way
to express crossed random effects). ``ΔLL = (ℓ_full − ℓ_base) / N`` in nats per observation, with
``ℓ`` the maximised log-likelihoods and ``N`` the reader × word observations.

The ΔLL is **in-sample**, not cross-validated like the per-word ΔLL: the two fits already take
~16 s at the size of Natural Stories (docs/ppp.md, "Mixed-effects ΔLL"), 10 folds would take 10×
that; and a held-out word's item intercept is unknown, so held-out scoring would need a choice
between marginal and conditional likelihoods that no reference fixes. In exchange, the models are
nested and fitted by ML, so ``2 N ΔLL`` is the likelihood-ratio statistic, ``χ²`` with ``S + 1``
degrees of freedom when surprisal has no effect: ``p_value`` tests it, and ``(S + 1) / (2N)`` is
the in-sample ΔLL expected from noise alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from phasewatch.measures.baselines import DEFAULT_FREQUENCY_FLOOR, add_baseline_columns
from phasewatch.measures.crossed_mixedlm import sparse_model, stock_model
from phasewatch.measures.delta_loglik import (
    _check_columns,
    _history,
    _lagged,
    _standardize,
    check_spillover,
    spillover_text,
)

#: Optimizers ``MixedLM.fit`` tries in turn (scipy names). Gradient-free: the profile likelihood
#: has 2 free parameters (the reader and item variance ratios). On the test fixture with the stock
#: MixedLM, Powell took 1.9 s, L-BFGS 7.6 s (the same log-likelihood to 1e-8), and statsmodels'
#: default BFGS did not converge.
DEFAULT_OPTIMIZERS = ("powell", "nm")
_METHODS = ("fast", "statsmodels")


@dataclass(frozen=True)
class MixedPPPResult:
    """In-sample ΔLL of per-reader reading times from surprisal, in crossed mixed models.

    ``delta_ll``: ``(ℓ_full − ℓ_base) / n_obs`` (nats per observation, in-sample, ML);
    ``loglik_full`` / ``loglik_base``: the maximised log-likelihoods (nats, response in ms);
    ``lr_stat`` = ``2 (ℓ_full − ℓ_base)`` and ``p_value`` its ``χ²(spillover + 1)`` tail
    probability; ``coef`` / ``se``: lag → surprisal coefficient and its standard error (response
    units per surprisal unit, e.g. ms/bit); ``var_reader`` / ``var_item`` / ``var_residual``:
    variances of the full model (ms²); ``n_obs``, ``n_readers``, ``n_items``: reader × word rows,
    readers and words used; ``n_dropped``: per-reader rows left out; ``converged``: both fits
    converged.
    """

    delta_ll: float
    loglik_full: float
    loglik_base: float
    lr_stat: float
    p_value: float
    coef: dict[int, float]
    se: dict[int, float]
    var_reader: float
    var_item: float
    var_residual: float
    n_obs: int
    n_readers: int
    n_items: int
    n_dropped: int
    spillover: int
    baseline: tuple[str, ...]
    converged: bool
    in_sample: bool = True

    @property
    def delta_ll_nats_per_obs(self) -> float:
        """Same as ``delta_ll``: in-sample ΔLL in nats per reader × word observation."""
        return self.delta_ll

    @property
    def delta_ll_nats_per_word(self) -> float:
        """``(ℓ_full − ℓ_base) / n_items``: the same gain per word (in-sample, nats/word).

        With every reader reading every word it is close to the in-sample ΔLL of OLS on the
        per-word means (0.344 vs 0.346 nats/word on the test fixture; not equal, as the item
        variance is estimated with the reader rows), so it is the figure to set beside the
        per-word ΔLL, which is held-out.
        """
        return self.delta_ll * self.n_obs / self.n_items

    @property
    def noise_level(self) -> float:
        """``(spillover + 1) / (2 n_obs)``: the in-sample ΔLL expected with no surprisal effect."""
        return (self.spillover + 1) / (2 * self.n_obs)

    def __repr__(self) -> str:
        coef = ", ".join(f"lag{k} {v:.3g} ± {self.se[k]:.2g}" for k, v in self.coef.items())
        return (
            f"MixedPPPResult(ΔLL = {self.delta_ll:.5f} nats/observation "
            f"({self.delta_ll_nats_per_word:.4f} nats/word), in-sample ML "
            f"(noise alone ≈ {self.noise_level:.1e}; LR χ²({self.spillover + 1}) = "
            f"{self.lr_stat:.1f}, p = {self.p_value:.2g}); {self.n_obs} observations, "
            f"{self.n_readers} readers, {self.n_items} words, {self.n_dropped} rows dropped; "
            f"surprisal coef (ms per surprisal unit) [{coef}]; SD reader "
            f"{math.sqrt(self.var_reader):.1f} ms, item {math.sqrt(self.var_item):.1f} ms, "
            f"residual {math.sqrt(self.var_residual):.1f} ms; {spillover_text(self.spillover)}; "
            f"baseline {list(self.baseline)}{'' if self.converged else '; NOT CONVERGED'})"
        )


def delta_loglik_mixed(
    readers: Any,
    words: pd.DataFrame,
    *,
    surprisal: str = "surprisal",
    baseline: str | Sequence[str] = ("length", "log_freq"),
    spillover: int = 4,
    story: str = "story",
    position: str = "position",
    reader: str = "reader",
    response: str = "rt",
    word: str = "word",
    kept: str | None = "kept",
    frequency_floor: float = DEFAULT_FREQUENCY_FLOOR,
    optimizers: str | Sequence[str] = DEFAULT_OPTIMIZERS,
    method: str = "fast",
) -> MixedPPPResult:
    """In-sample ΔLL (nats/observation) of per-reader reading times, crossed random intercepts.

    As input:
        readers: one row per reader × word with ``story``, ``position``, ``reader`` and the
            response in ms (``rt``; 0 = skipped word) — ``ReadingTimeCorpus.readers`` — or a
            ``ReadingTimeCorpus`` itself, whose ``readers`` are used.
        words: one row per word with ``story``, ``position``, the surprisal (bits) and the
            baseline columns (``length`` and ``log_freq`` are computed from ``word`` when absent),
            e.g. ``corpus.frame.assign(surprisal=...)``. Its own ``rt`` column is not used.
        surprisal, baseline, spillover, frequency_floor: as in
            :func:`~phasewatch.measures.delta_loglik.delta_loglik`: every predictor enters with
            lags ``0 … spillover`` (previous words of the same story; 4 for self-paced reading, 2
            for eye tracking).
        story, position, reader, response, word: column names.
        kept: a boolean column of ``readers`` saying which readings entered the per-word mean
            (``load_tsv`` and the upstream loaders write it: nonzero and within the outlier
            bounds); rows where it is False are left out, so both ΔLLs use the same readings.
            Ignored when the column is absent; ``None`` = use every row.
        optimizers: scipy optimizer name(s) ``MixedLM.fit`` tries in turn.
        method: ``"fast"`` (a ``MixedLM`` subclass whose likelihood costs one sparse LU of the
            (items + readers)² matrix per call, :mod:`phasewatch.measures.crossed_mixedlm`) or
            ``"statsmodels"`` (the stock ``MixedLM``: same likelihood, SEs from its full Hessian,
            which builds dense rows × items matrices: small data only). Tested equal to 1e-5.

        Rows dropped (``n_dropped``): per-reader rows whose word lacks a full spillover history or
        has a non-finite predictor, and rows whose response is not finite or is 0 (a skipped
        word, left out as in the per-word ΔLL; it still serves as a lag of later words), and
        rows whose ``kept`` is False.

    As output:
        :class:`MixedPPPResult`: ``delta_ll`` (nats/observation, in-sample), the LR test, the
        surprisal coefficients ± SE (ms per surprisal unit), variance components (ms²) and the
        numbers of observations, readers and items.

    Cost: ~1.4 s for 83,000 observations, ~16 s and 1.7 GB for Natural Stories' size (851,248),
    about 2,000× the per-word OLS ΔLL and 20× a whole PPP evaluation (docs/ppp.md); off by
    default, call it on demand.
    """
    readers = _reader_frame(readers)
    if not isinstance(words, pd.DataFrame):
        raise TypeError(f"`words` must be a pandas DataFrame, got {type(words).__name__}")
    baseline = (baseline,) if isinstance(baseline, str) else tuple(baseline)
    spillover = check_spillover(spillover)
    optimizers = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if method not in _METHODS:
        raise ValueError(f"`method` can be {' or '.join(_METHODS)}, got {method!r}")
    _check_reader_columns(readers, [story, position, reader, response])
    words = add_baseline_columns(words, baseline, word=word, floor=frequency_floor)
    _check_columns(words, [surprisal, story, position])

    item, base, surp = _word_design(words, baseline, surprisal, story, position, spillover)
    row_item = _item_of_each_row(readers, words, story, position, item)
    y = readers[response].to_numpy(dtype=np.float64, na_value=np.nan)
    used = (row_item >= 0) & np.isfinite(y) & (y != 0)
    if kept is not None and kept in readers.columns:
        used &= readers[kept].fillna(False).to_numpy(dtype=bool)
    used[used] &= np.isfinite(base[row_item[used]]).all(1)
    used[used] &= np.isfinite(surp[row_item[used]]).all(1)
    n_obs = int(used.sum())
    n_params = 1 + base.shape[1] + surp.shape[1] + 3
    if n_obs <= n_params:
        raise ValueError(
            f"{n_obs} usable reader × word observations for {n_params} parameters (of "
            f"{len(readers)} per-reader rows); needs more rows whose word has a full spillover "
            "history, finite values and a nonzero response, or a smaller `spillover`"
        )

    items, item_codes = np.unique(row_item[used], return_inverse=True)
    reader_codes, reader_ids = pd.factorize(readers[reader].to_numpy()[used], sort=True)
    x_base = np.column_stack([np.ones(n_obs), base[row_item[used]]])
    x_full = np.column_stack([x_base, surp[row_item[used]]])
    y = y[used]
    y_center, y_scale = float(y.mean()), float(y.std())
    if not y_scale > 0:
        raise ValueError("every used reading time is the same; ΔLL is undefined")
    ys = (y - y_center) / y_scale
    model = sparse_model if method == "fast" else stock_model
    fit_base = _fit_ml(model(ys, _standardize(x_base)[0], reader_codes, item_codes), optimizers)
    xs_full, _, x_scale = _standardize(x_full)
    fit_full = _fit_ml(model(ys, xs_full, reader_codes, item_codes), optimizers)

    # ℓ of y in ms = ℓ of the standardized response − N ln(scale): the Jacobian cancels in ΔLL
    jacobian = n_obs * math.log(y_scale)
    ll_base, ll_full = fit_base.llf - jacobian, fit_full.llf - jacobian
    lr = 2.0 * (ll_full - ll_base)
    first = x_base.shape[1]
    fe, bse = np.asarray(fit_full.fe_params), np.asarray(fit_full.bse_fe)
    vcomp_ms2 = np.asarray(fit_full.vcomp, dtype=np.float64) * y_scale**2
    var_item, var_reader = float(vcomp_ms2[0]), float(vcomp_ms2[1])  # VCSpec order
    return MixedPPPResult(
        delta_ll=(ll_full - ll_base) / n_obs,
        loglik_full=ll_full,
        loglik_base=ll_base,
        lr_stat=lr,
        p_value=float(stats.chi2.sf(max(lr, 0.0), spillover + 1)),
        coef={k: float(fe[first + k] / x_scale[first + k] * y_scale) for k in range(spillover + 1)},
        se={k: float(bse[first + k] / x_scale[first + k] * y_scale) for k in range(spillover + 1)},
        var_reader=var_reader,
        var_item=var_item,
        var_residual=float(fit_full.scale) * y_scale**2,
        n_obs=n_obs,
        n_readers=len(reader_ids),
        n_items=len(items),
        n_dropped=len(readers) - n_obs,
        spillover=spillover,
        baseline=baseline,
        converged=bool(fit_base.converged and fit_full.converged),
    )


# --- data ----------------------------------------------------------------------------------------


def _reader_frame(readers: Any) -> pd.DataFrame:
    """The per-reader DataFrame, from itself or from a corpus's ``readers``; else a clear error."""
    if isinstance(readers, pd.DataFrame):
        return readers
    if hasattr(readers, "readers") and hasattr(readers, "frame"):
        if readers.readers is None:
            raise ValueError(
                f"corpus {getattr(readers, 'name', '?')!r} has no per-reader data "
                "(`ReadingTimeCorpus.readers` is None: it ships per-word means only). The "
                "mixed-effects ΔLL needs one row per reader x word: load a per-reader corpus "
                "(the generic format with a reader column), or use `delta_loglik` on the "
                "per-word means"
            )
        return readers.readers
    if readers is None:
        raise ValueError(
            "`readers` is None: the mixed-effects ΔLL needs per-reader data, one row per "
            "reader x word (story, position, reader, rt in ms), e.g. `corpus.readers`; for "
            "per-word means use `delta_loglik`"
        )
    raise TypeError(
        f"`readers` must be a pandas DataFrame of per-reader rows or a ReadingTimeCorpus, got "
        f"{type(readers).__name__}"
    )


def _check_reader_columns(readers: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in readers.columns]
    if missing:
        raise ValueError(
            f"the per-reader data lack the columns {missing}; they need one row per reader x "
            f"word with {columns} (pass other names to `story`, `position`, `reader`, "
            f"`response`). Columns: {list(readers.columns)}"
        )


def _word_design(
    words: pd.DataFrame,
    baseline: tuple[str, ...],
    surprisal: str,
    story: str,
    position: str,
    spillover: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per word row: its index into the lagged predictors (-1: no full history), and those."""
    order, lag_ok = _history(words, story, position, spillover)
    columns = [words[c].to_numpy(dtype=np.float64, na_value=np.nan)[order] for c in baseline]
    base = _lagged(columns, spillover) if baseline else np.zeros((len(order), 0))
    surp = _lagged([words[surprisal].to_numpy(dtype=np.float64, na_value=np.nan)[order]], spillover)
    item = np.full(len(words), -1, dtype=np.int64)
    item[order[lag_ok]] = np.flatnonzero(lag_ok)
    return item, base, surp


def _item_of_each_row(
    readers: pd.DataFrame, words: pd.DataFrame, story: str, position: str, item: np.ndarray
) -> np.ndarray:
    """Per per-reader row: the lagged-design row of its word (-1: word without full history)."""
    keys = pd.MultiIndex.from_arrays([words[story].astype(str), _positions(words, position)])
    where = keys.get_indexer(
        pd.MultiIndex.from_arrays([readers[story].astype(str), _positions(readers, position)])
    )
    if (where < 0).any():
        missing = readers.loc[where < 0, [story, position]].drop_duplicates()
        raise ValueError(
            f"{int((where < 0).sum())} per-reader rows name a (`{story}`, `{position}`) that is "
            f"not a word of `words`, e.g. {missing.head(3).to_dict('records')}; pass the words "
            "frame of the same corpus"
        )
    return item[where]


def _positions(frame: pd.DataFrame, position: str) -> np.ndarray:
    pos = pd.to_numeric(frame[position], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(pos) & (pos == np.round(pos))):
        raise ValueError(f"`{position}` must hold integer word positions in every frame")
    return pos.astype(np.int64)


# --- fitting -------------------------------------------------------------------------------------


def _fit_ml(model: Any, optimizers: list[str]):
    """ML fit (``reml=False``) of a crossed-intercepts ``MixedLM``; warns if it did not converge."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # boundary notes; we report below
        result = model.fit(reml=False, method=optimizers)
    if not result.converged:
        warnings.warn(
            "a mixed-effects ΔLL fit did not converge (MixedLM); the ΔLL may be off. Try other "
            "`optimizers`, e.g. ('nm', 'powell')",
            RuntimeWarning,
            stacklevel=3,
        )
    return result

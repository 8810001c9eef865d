"""statsmodels ``MixedLM`` with crossed random intercepts (readers, items) and a sparse likelihood.

The model: ``y = Xβ + Z_reader u + Z_item v + ε``, ``u ~ N(0, σ² τ_r I)``, ``v ~ N(0, σ² τ_i I)``,
``ε ~ N(0, σ² I)``; one statsmodels group holding every row, readers and items as two variance
components (statsmodels' documented way to express crossed effects). With ``V₀ = I + Z D Z′``
(``D`` = the variance ratios per column of ``Z = [Z_item, Z_reader]``) and ``S = D⁻¹ + Z′Z``,

- ``V₀⁻¹ = I − Z S⁻¹ Z′`` (Woodbury), so ``M′V₀⁻¹M = M′M − (Z′M)′ S⁻¹ (Z′M)`` for ``M = [X, y]``;
- ``ln det V₀ = ln det D + ln det S`` (matrix determinant lemma);
- the ML profile log-likelihood (β by GLS, ``σ̂² = r′V₀⁻¹r / N``) is
  ``ℓ = −½ ln det V₀ − (N/2) ln(r′V₀⁻¹r) − (N/2)(ln 2π − ln N + 1)``, statsmodels' own formula.

``M′M`` and ``Z′M`` are computed once, so one likelihood costs one sparse LU of the
(items + readers)² matrix ``S``, whatever the number of rows. The model subclass keeps
statsmodels' optimizers and results and replaces the methods that would otherwise build dense
(items + readers)² and rows × items matrices at every call (``loglike``, ``get_fe_params``,
``get_scale``, ``score``, ``hessian``). Its Hessian is the fixed-effects block, ``−X′V⁻¹X``: the
GLS information (lme4's ``vcov``); the variance components' standard errors are not computed
(their block is −identity and must not be reported).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

#: Variance ratios below this are treated as this (a zero variance has no D⁻¹).
_MIN_VARIANCE_RATIO = 1e-12


def indicator(codes: np.ndarray, width: int) -> sparse.csr_array:
    """Sparse 0/1 design: row ``i`` has a 1 in column ``codes[i]``."""
    rows = np.arange(len(codes))
    return sparse.csr_array((np.ones(len(codes)), (rows, codes)), shape=(len(codes), width))


def crossed_vc_spec(readers: np.ndarray, items: np.ndarray):
    """statsmodels ``VCSpec`` of reader and item intercepts (sparse designs), items first."""
    from statsmodels.regression.mixed_linear_model import VCSpec

    n_readers, n_items = int(readers.max()) + 1, int(items.max()) + 1
    return VCSpec(
        ["item", "reader"],
        [[[f"item{i}" for i in range(n_items)]], [[f"reader{i}" for i in range(n_readers)]]],
        [[indicator(items, n_items)], [indicator(readers, n_readers)]],
    )


def stock_model(y: np.ndarray, x: np.ndarray, readers: np.ndarray, items: np.ndarray):
    """Unmodified ``MixedLM`` of the same model: the reference (dense Hessian: small data only)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    vc = crossed_vc_spec(readers, items)
    n = len(y)
    return MixedLM(y, x, groups=np.zeros(n), exog_re=np.zeros((n, 0)), exog_vc=vc)


def sparse_model(y: np.ndarray, x: np.ndarray, readers: np.ndarray, items: np.ndarray):
    """``MixedLM`` subclass of the same model whose likelihood costs one sparse LU per call."""
    from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

    vc = crossed_vc_spec(readers, items)
    widths = (vc.mats[0][0].shape[1], vc.mats[1][0].shape[1])
    z = sparse.hstack([vc.mats[0][0], vc.mats[1][0]]).tocsr()
    m = np.column_stack([x, y])
    mtm = m.T @ m
    ztm = np.asarray(z.T @ m)
    ztz = (z.T @ z).tocsc()
    n, k = len(y), x.shape[1]

    def quadratic(vcomp: np.ndarray) -> tuple[np.ndarray, float]:
        """``M′V₀⁻¹M`` and ``ln det V₀`` at variance ratios ``vcomp`` (item, reader)."""
        d = np.repeat(np.maximum(np.asarray(vcomp, dtype=np.float64), _MIN_VARIANCE_RATIO), widths)
        lu = splu((ztz + sparse.diags_array(1.0 / d)).tocsc())
        w = mtm - ztm.T @ lu.solve(ztm)
        log_det = float(np.log(d).sum() + np.log(np.abs(lu.U.diagonal())).sum())
        return (w + w.T) / 2, log_det

    def gls(w: np.ndarray) -> np.ndarray:
        return np.linalg.solve(w[:k, :k], w[:k, k])

    def residual_quadratic(w: np.ndarray, fe: np.ndarray) -> float:
        """``r′V₀⁻¹r`` for ``r = y − X fe``, from ``M′V₀⁻¹M``."""
        return float(w[k, k] - 2.0 * fe @ w[:k, k] + fe @ w[:k, :k] @ fe)

    class CrossedInterceptsMixedLM(MixedLM):
        def _params(self, params: Any, has_fe: bool) -> Any:
            if isinstance(params, MixedLMParams):
                return params
            return MixedLMParams.from_packed(
                params, self.k_fe, self.k_re, use_sqrt=self.use_sqrt, has_fe=has_fe
            )

        def loglike(self, params: Any, profile_fe: bool = True) -> float:
            if self.reml:
                raise NotImplementedError("the sparse path computes ML likelihoods only")
            params = self._params(params, has_fe=False)
            w, log_det = quadratic(params.vcomp)
            fe = gls(w) if profile_fe else params.fe_params
            qf = residual_quadratic(w, fe)
            return -0.5 * log_det - 0.5 * n * (math.log(qf) + math.log(2 * math.pi / n) + 1.0)

        def get_fe_params(self, cov_re: Any, vcomp: Any, tol: float = 1e-10):
            return gls(quadratic(vcomp)[0]), False

        def get_scale(self, fe_params: Any, cov_re: Any, vcomp: Any) -> float:
            return residual_quadratic(quadratic(vcomp)[0], np.asarray(fe_params)) / n

        def score(self, params: Any, profile_fe: bool = True) -> np.ndarray:
            """Central differences of :meth:`loglike` in the packed variance parameters."""
            packed = np.asarray(params, dtype=np.float64)
            grad = np.empty_like(packed)
            for j in range(len(packed)):
                step = 1e-6 * max(1.0, abs(packed[j]))
                up, down = packed.copy(), packed.copy()
                up[j] += step
                down[j] -= step
                grad[j] = (self.loglike(up) - self.loglike(down)) / (2 * step)
            return grad

        def hessian(self, params: Any) -> tuple[np.ndarray, bool]:
            params = self._params(params, has_fe=True)
            w, _ = quadratic(params.vcomp)
            scale = residual_quadratic(w, params.fe_params) / n  # ML: r′V₀⁻¹r / N
            hess = -np.eye(self.k_fe + self.k_vc)
            hess[: self.k_fe, : self.k_fe] = -w[:k, :k] / scale
            return hess, False

    return CrossedInterceptsMixedLM(y, x, groups=np.zeros(n), exog_re=np.zeros((n, 0)), exog_vc=vc)

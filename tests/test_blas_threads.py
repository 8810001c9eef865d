"""The ΔLL fits run BLAS on one thread, and the caller's thread count comes back afterwards.

OpenBLAS keeps idle threads spinning after a call (~0.1 s of CPU per PPP measurement, measured in
phasewatch/measures/blas_threads.py); on a training machine that competes with the training step.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

#: The module (``phasewatch.measures.delta_loglik`` the attribute is the function of that name).
module = importlib.import_module("phasewatch.measures.delta_loglik")


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "story": np.repeat(np.arange(6), n // 6),
            "position": np.tile(np.arange(n // 6), 6),
            "length": rng.integers(1, 12, n).astype(float),
            "log_freq": rng.normal(-10, 2, n),
            "surprisal": rng.gamma(2.0, 3.0, n),
        }
    )
    frame["rt"] = 300 + 5 * frame["length"] + 4 * frame["surprisal"] + rng.normal(0, 20, n)
    return frame


def test_the_fits_run_on_one_blas_thread_and_restore_the_count(monkeypatch):
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    seen: list[list[int]] = []
    lstsq = np.linalg.lstsq

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return lstsq(*args, **kwargs)

    monkeypatch.setattr(module.np.linalg, "lstsq", recording)
    with threadpool_limits(limits=2, user_api="blas"):
        result = module.delta_loglik(_frame(), spillover=0, folds=5)
        after = _blas_threads()
    assert seen and all(threads == [1] * len(threads) for threads in seen)
    assert after == [2] * len(after)  # the caller's setting is back
    assert result.mean > 0  # the planted surprisal effect (4 ms/bit) is found

"""One BLAS thread for the small least-squares fits of ΔLL.

The fits multiply n × k designs (k ≤ ~12 columns): a second BLAS thread gains nothing there, and
OpenBLAS keeps its idle threads spinning after each call, ~0.1 s of CPU per PPP measurement
(measured: a word-surprisal pass right after the fits took 441 ms of CPU in 341 ms of wall time;
without them, CPU equals wall). During training that spin competes with the training step for
the cores.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable[..., Any])


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (~ms)


def one_blas_thread(function: F) -> F:
    """Run ``function`` with BLAS limited to one thread (restored afterwards)."""

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        with _controller().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited  # type: ignore[return-value]

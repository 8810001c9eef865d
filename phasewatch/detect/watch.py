"""Which series the transition detector watches by default, shared by the callback and analyze."""

from __future__ import annotations

from typing import Any

from phasewatch import keys

#: Default watched series: the max induction score (rise) and the training loss (drop, along its
#: own log-token trend, from step 300 on: its initial descent from ln(vocabulary size) is no
#: transition). Parameters as for :class:`phasewatch.detect.TransitionDetector`.
DEFAULT_WATCH: dict[str, dict[str, Any]] = {
    keys.HEADS_INDUCTION_MAX: {"direction": "rise", "min_change": 0.05},
    keys.LOSS: {"direction": "drop", "min_change": 0.25, "detrend": True, "start_step": 300},
}

#: Aoyama & Wilcox's (2025) transition point: the first evaluation at which the max
#: prefix-matching (induction) score exceeds 0.1.
PAPER_WATCH: dict[str, dict[str, Any]] = {
    keys.HEADS_INDUCTION_MAX: {"rule": "threshold", "level": 0.1},
}

"""The mean over corpora (``PPPMonitor(corpora=[...])``) against its alternatives, measured.

Two corpora from Natural Stories (no second reading-time corpus is at hand here): stories 1–7 as
the self-paced-reading corpus (spillover 4) and stories 8–10 re-labelled "eye tracking" (spillover
2 by that measure type; the reading times are still self-paced ones, so this row measures what the
spillover choice does to the same data, not eye tracking). One real surprisal: the demo's GPT-2
shape trained on the novels for ``--steps`` steps (``ppp_conventions.train_surprisal_model``).

Printed as a Markdown table (nats/word): each corpus's ΔLL ± SE; phasewatch's mean over corpora,
``(1/K) Σ ΔLL_k ± √(Σ SE_k²)/K``; the word-weighted alternative (all held-out words of both
corpora pooled: mean and ``SD/√n``); the second corpus with spillover 4 instead of its 2.

Run: ``.venv/bin/python benchmarks/ppp_corpora_mean.py [--steps 200]`` (a few minutes on 2 busy
CPU cores, mostly training). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import math

import _common
import numpy as np
import pandas as pd
from ppp_conventions import train_surprisal_model

from phasewatch import keys
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.measures.ppp_corpora import CorporaPPP
from phasewatch.measures.snapshot import PPPMeasure
from phasewatch.models import as_probe_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    _common.quiet()
    _common.set_threads(args.threads)
    model, tokenizer, loss = train_surprisal_model(args.steps)
    probe = as_probe_model(model.eval())

    ns = load("naturalstories")
    frame = ns.frame
    spr = ReadingTimeCorpus("spr", frame[frame["story"] <= 7].reset_index(drop=True))
    eye = ReadingTimeCorpus(
        "eye",
        frame[frame["story"] > 7].reset_index(drop=True),
        measure="eye tracking: gaze duration",
    )
    measure = CorporaPPP([spr, eye], folds=10)
    scalars, results = measure.measure(probe, tokenizer)
    parts = results[keys.PPP_DELTA_LL].parts
    pooled = pd.concat([p.per_word for p in parts.values()], ignore_index=True)
    eye4, _ = PPPMeasure(eye, spillover=4, folds=10).measure(probe, tokenizer)

    rows = [
        (f"spr (stories 1–7), spillover {measure.spillovers['spr']}", parts["spr"]),
        (f"eye (stories 8–10), spillover {measure.spillovers['eye']}", parts["eye"]),
    ]
    print(f"surprisal model: {args.steps} steps, final train loss {loss:.3f} nats/token\n")
    print("| quantity | ΔLL (nats/word) | SE | words |")
    print("|---|---|---|---|")
    for label, part in rows:
        print(f"| {label} | {part.mean:.5f} | {part.se:.5f} | {part.n} |")
    print(
        f"| mean over corpora (phasewatch: `ppp/delta_ll`) | {scalars[keys.PPP_DELTA_LL]:.5f} | "
        f"{scalars[keys.PPP_DELTA_LL_SE]:.5f} | {int(scalars[keys.PPP_N_WORDS])} |"
    )
    pooled_se = float(pooled.std(ddof=1) / math.sqrt(len(pooled)))
    print(
        f"| word-weighted: all words pooled | {pooled.mean():.5f} | {pooled_se:.5f} | "
        f"{len(pooled)} |"
    )
    print(
        f"| eye with spillover 4 instead of 2 | {eye4[keys.PPP_DELTA_LL]:.5f} | "
        f"{eye4[keys.PPP_DELTA_LL_SE]:.5f} | {int(eye4[keys.PPP_N_WORDS])} |"
    )
    check = np.mean([p.mean for p in parts.values()])
    assert abs(check - scalars[keys.PPP_DELTA_LL]) < 1e-12


if __name__ == "__main__":
    main()

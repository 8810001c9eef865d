"""Size of the run history that every checkpoint carries (issue 9: resumed runs).

Usage: ``.venv/bin/python benchmarks/history_size.py [--evaluations 1000 --layers 12 --heads 12]``

Builds the history file of a run with ``PPPMonitor`` and ``AttentionMonitor`` measuring
``--evaluations`` times (12 PPP scalars and 6 head scalars per evaluation, and five per-head maps
of layers × heads: induction, previous-token, duplicate-token, syntactic, entropy), with uniform
random values: full-precision digits compress worst, so this is an upper bound. Prints the
file's size in MB and the size of what goes into the checkpoint (zlib level 6, as
``phasewatch.callbacks._logging.history_state``).
"""

from __future__ import annotations

import argparse
import json
import zlib

import numpy as np

from phasewatch import keys

PER_HEAD = ("induction", "prev_token", "duplicate_token", "syntactic", "entropy")


def history_bytes(evaluations: int, layers: int, heads: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(evaluations):
        step, tokens = 100 * i, 100 * i * 524_288
        for prefix, count in (("ppp", 12), (keys.HEADS_PREFIX, 6)):
            values = {f"{prefix}/k{j}": float(rng.random()) for j in range(count)}
            record = {"kind": "measurement", "step": step, "tokens": tokens, "values": values}
            lines.append(json.dumps(record))
        maps = {name: rng.random((layers, heads)).tolist() for name in PER_HEAD}
        record = {"kind": "heads", "step": step, "tokens": tokens, "per_head": maps}
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=12)
    args = parser.parse_args()
    raw = history_bytes(args.evaluations, args.layers, args.heads)
    packed = zlib.compress(raw, 6)
    print(
        f"{args.evaluations} evaluations, {args.layers}x{args.heads} heads: history "
        f"{len(raw) / 1e6:.1f} MB, in the checkpoint {len(packed) / 1e6:.1f} MB (zlib 6)"
    )


if __name__ == "__main__":
    main()

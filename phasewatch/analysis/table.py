"""The analysis table: one row per checkpoint × metric, written as CSV (and Parquet with pyarrow).

Columns: ``checkpoint`` (path or ``repo@revision``), ``step``, ``tokens`` (tokens seen; empty when
unknown), ``metric`` (a key of :mod:`phasewatch.keys`), ``value`` (in the metric's unit: ΔLL in
nats/word, surprisal in bits, head scores in [0, 1], entropy in nats).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

#: File names beside the history, in the analysis folder.
TABLE_CSV = "phasewatch_analysis.csv"
TABLE_PARQUET = "phasewatch_analysis.parquet"
#: Columns of the tidy table, in order.
TIDY_COLUMNS = ("checkpoint", "step", "tokens", "metric", "value")


def tidy_table(rows: Iterable[tuple[str, int, int | None, dict[str, float]]]) -> pd.DataFrame:
    """The tidy table from ``(checkpoint, step, tokens, scalars)`` per checkpoint, sorted by step
    (metrics in the order measured)."""
    records = [
        (name, int(step), tokens, metric, float(value))
        for name, step, tokens, scalars in rows
        for metric, value in scalars.items()
    ]
    table = pd.DataFrame.from_records(records, columns=list(TIDY_COLUMNS))
    table["tokens"] = table["tokens"].astype("Int64")
    return table.sort_values("step", kind="stable").reset_index(drop=True)


def wide_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint (checkpoint, step, tokens, then one column per metric), by step."""
    rows = [
        {
            "checkpoint": name,
            "step": int(group["step"].iloc[0]),
            "tokens": group["tokens"].iloc[0],
            **dict(zip(group["metric"], group["value"], strict=True)),
        }
        for name, group in tidy.groupby("checkpoint", sort=False)
    ]
    wide = pd.DataFrame(rows, columns=["checkpoint", "step", "tokens", *tidy["metric"].unique()])
    wide["tokens"] = wide["tokens"].astype("Int64")
    return wide.sort_values("step", kind="stable").reset_index(drop=True)


def parquet_available() -> bool:
    """Whether Parquet can be written (``pip install phasewatch[parquet]`` adds pyarrow)."""
    return importlib.util.find_spec("pyarrow") is not None


def write_table(tidy: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write the tidy table as CSV (always; floats exact) and Parquet (with pyarrow); the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / TABLE_CSV]
    tidy.to_csv(written[0], index=False, float_format=None)
    if parquet_available():
        written.append(out / TABLE_PARQUET)
        tidy.to_parquet(written[1], index=False)
    return written


def read_table(path: str | Path) -> pd.DataFrame:
    """A tidy table written by :func:`write_table` (a folder, a ``.csv`` or a ``.parquet``); CSV
    floats are read back exactly."""
    path = Path(path)
    if path.is_dir():
        path = path / TABLE_CSV
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, float_precision="round_trip")
    table["tokens"] = table["tokens"].astype("Int64")
    return table

"""Tab-separated reading-time tables: a strict reader and :func:`load_tsv` for your own corpus.

Tables are read with quoting disabled (``csv.QUOTE_NONE``) and without NA parsing, so words such
as ``"Yes,"``, ``'What`` or ``null`` stay exactly as written.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.schema import ReadingTimeCorpus

_SHOWN_ROWS = 5


def read_tsv(path: str | Path, required: Sequence[str], *, sep: str = "\t") -> pd.DataFrame:
    """Read a table with a header row as strings; raise :class:`CorpusDataError` if it cannot be
    parsed or lacks a ``required`` column."""
    path = Path(path)
    expected = (
        f"a header row with the columns {list(required)}, then one row per word, {sep!r}-separated"
    )
    if not path.is_file():
        raise CorpusDataError(path, "file not found", expected=expected, found="no such file")
    try:
        frame = pd.read_csv(path, sep=sep, quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CorpusDataError(
            path, "cannot be parsed as a table", expected=expected, found=str(exc).strip()
        ) from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CorpusDataError(
            path,
            f"lacks the columns {missing}",
            expected=expected,
            found=f"the columns {list(frame.columns)}",
        )
    return frame


def numeric_column(
    frame: pd.DataFrame, column: str, path: str | Path, *, integer: bool = False
) -> pd.Series:
    """``frame[column]`` as float (or int) values; every value must be a finite number."""
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if integer:
        bad |= values.to_numpy() != np.round(values.to_numpy())
    if bad.any():
        rows = [
            f"line {i + 2}: {frame[column].iloc[i]!r}" for i in np.flatnonzero(bad)[:_SHOWN_ROWS]
        ]
        raise CorpusDataError(
            path,
            f"column {column!r} has {int(bad.sum())} values that are not finite "
            f"{'integers' if integer else 'numbers'}",
            expected=f"a finite {'integer' if integer else 'number'} in every row",
            found="; ".join(rows),
        )
    return values.astype(np.int64) if integer else values


def check_positions(frame: pd.DataFrame, path: str | Path) -> None:
    """Each story's ``position`` values must be exactly 1..n (the full text, no gaps or repeats)."""
    problems = []
    for story, positions in frame.groupby("story", sort=True)["position"]:
        got = np.sort(positions.to_numpy())
        if not np.array_equal(got, np.arange(1, len(got) + 1)):
            problems.append(f"story {story!r}: positions {got[:3].tolist()}…{got[-3:].tolist()}")
    if problems:
        raise CorpusDataError(
            path,
            "positions are not 1..n within each story",
            expected="positions 1, 2, …, n in every story: one row per displayed word",
            found="; ".join(problems[:_SHOWN_ROWS]),
            fix="keep every word of the text (the text is rebuilt from the rows)",
        )


def _story_ids(values: pd.Series) -> pd.Series:
    """Story ids as integers if every id is an integer, else as strings."""
    as_int = pd.to_numeric(values, errors="coerce")
    if as_int.notna().all() and (as_int == as_int.round()).all():
        return as_int.astype(np.int64)
    return values


def load_tsv(
    path: str | Path,
    *,
    story: str = "story",
    position: str = "position",
    word: str = "word",
    rt: str = "rt",
    n_readers: str | None = None,
    name: str | None = None,
    sep: str = "\t",
    license: str = "",
    citation: str = "",
    measure: str = "self-paced reading",
    default_spillover: int | None = None,
) -> ReadingTimeCorpus:
    """Load your own reading-time corpus from a table with one row per displayed word.

    Args:
        path: the table (TSV by default; ``sep=","`` for CSV). Quoting is disabled and no value is
            read as missing, so words keep their quotes and ``null`` stays a word.
        story, position, word, rt: the names of the columns holding the story id, the 1-based
            word position in the story (every story must have positions 1..n), the word as
            displayed (punctuation attached) and the reading time in ms (finite numbers).
        n_readers: optional column with the number of readers behind each ``rt``.
        name: corpus name; defaults to the file name without extension.
        license, citation, measure: carried with the corpus. ``measure`` names the reading
            measure, kind first: ``"self-paced reading"`` or ``"eye tracking: <measure>"``.
        default_spillover: previous words in the ΔLL regression for this corpus; by default from
            the measure's kind (self-paced reading 4, eye tracking 2; see
            :class:`ReadingTimeCorpus`).

    Returns:
        A :class:`ReadingTimeCorpus` sorted by story then position; further columns are kept
        (numeric where every value is a number).

    Raises:
        CorpusDataError: the file is missing or unparsable, a named column is absent, a value is
            not a number, or positions are not 1..n per story.
        ValueError: ``default_spillover`` is not given and the measure's kind has no default.
    """
    path = Path(path)
    names = {"story": story, "position": position, "word": word, "rt": rt}
    if n_readers is not None:
        names["n_readers"] = n_readers
    raw = read_tsv(path, list(names.values()), sep=sep)
    empty = np.flatnonzero(raw[word].str.len().to_numpy() == 0)
    if len(empty):
        raise CorpusDataError(
            path,
            f"column {word!r} (argument word=) has {len(empty)} empty words",
            expected="a non-empty displayed word in every row",
            found=", ".join(f"line {i + 2}" for i in empty[:_SHOWN_ROWS]),
        )
    frame = pd.DataFrame(
        {
            "story": _story_ids(raw[story]),
            "position": numeric_column(raw, position, path, integer=True),
            "word": raw[word],
            "rt": numeric_column(raw, rt, path),
        }
    )
    if n_readers is not None:
        frame["n_readers"] = numeric_column(raw, n_readers, path, integer=True)
    for column in raw.columns.difference(list(names.values()), sort=False):
        converted = pd.to_numeric(raw[column], errors="coerce")
        kept = f"{column}_raw" if column in frame.columns else column  # e.g. an unused "rt"
        frame[kept] = converted if converted.notna().all() else raw[column]
    check_positions(frame, path)
    frame = frame.sort_values(["story", "position"], kind="stable").reset_index(drop=True)
    return ReadingTimeCorpus(
        name=name or path.stem,
        frame=frame,
        license=license,
        citation=citation,
        measure=measure,
        extras={"path": str(path)},
        default_spillover=default_spillover,
    )

"""What the loaders of public reading-time corpora in their upstream layout share.

Finding a file (``data_dir`` or ``$PHASEWATCH_DATA/<corpus>/``; these corpora have no manifest and
are never downloaded), reading a delimited table with the line number of every row, choosing the
column of an eye-tracking measure, and turning per-reader rows into a :class:`ReadingTimeCorpus`
through :func:`~phasewatch.corpora.readers.aggregate_readers`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phasewatch.corpora import schema
from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.readers import aggregate_readers, kept_readings
from phasewatch.corpora.resolve import DATA_ENV, corpus_dir
from phasewatch.corpora.schema import READER_COLUMNS, ReadingTimeCorpus
from phasewatch.corpora.tsv import check_positions

#: The measures a loader may offer, by their phasewatch names (as in ``ReadingTimeCorpus.measure``
#: after ``"eye tracking: "``).
FIRST_FIXATION = schema.FIRST_FIXATION_DURATION.partition(": ")[2]
GAZE_DURATION = schema.FIRST_PASS_GAZE_DURATION.partition(": ")[2]
TOTAL_READING_TIME = schema.TOTAL_READING_TIME.partition(": ")[2]
RIGHT_BOUNDED = "right-bounded reading time"
GO_PAST = "go-past time"
SELF_PACED = "self-paced reading"

#: Other spellings accepted for a measure (compared lowercase, hyphens read as spaces).
_ALIASES = {
    FIRST_FIXATION: ("first fixation", "ffd"),
    GAZE_DURATION: (
        "gaze duration",
        "gaze",
        "gd",
        "first pass",
        "first pass reading time",
        "first run dwell time",
    ),
    TOTAL_READING_TIME: ("total", "total fixation time", "dwell time", "trt"),
    RIGHT_BOUNDED: ("right bounded",),
    GO_PAST: ("go past", "regression path duration"),
    SELF_PACED: ("spr",),
}
#: Cell texts read as a missing reading (a skip).
MISSING = ("", "NA", "NaN", "nan", ".")
_SHOWN = 5


def _normal(text: str) -> str:
    return " ".join(text.strip().lower().replace("-", " ").split())


_BY_SPELLING = {
    _normal(spelling): name for name, aliases in _ALIASES.items() for spelling in (name, *aliases)
}


def canonical_measure(measure: str) -> str:
    """``measure`` as a phasewatch measure name: an ``"eye tracking:"`` prefix dropped, case and
    hyphens ignored, aliases resolved (``"gaze duration"`` and ``"first pass"`` →
    ``"first-pass gaze duration"``); an unknown measure is returned stripped."""
    if not isinstance(measure, str):
        raise ValueError(
            f"`measure` must be a string such as 'first-pass gaze duration', got {measure!r}"
        )
    text = measure
    kind, colon, rest = measure.partition(":")
    if colon and _normal(kind) == "eye tracking":
        text = rest
    return _BY_SPELLING.get(_normal(text), text.strip())


def measure_column(measure: str, columns: Mapping[str, str], corpus: str) -> tuple[str, str]:
    """(phasewatch measure name, upstream column) for ``measure`` among ``columns``
    (measure name → upstream column) of ``corpus``.

    Raises:
        ValueError: the corpus has no such measure; the message lists those it has.
    """
    name = canonical_measure(measure)
    if name not in columns:
        offered = ", ".join(f"{m!r} ({c})" for m, c in columns.items())
        raise ValueError(
            f"`measure` must be one of the measures {corpus} provides: {offered}; got {measure!r}"
        )
    return name, columns[name]


def upstream_file(corpus: str, filename: str, *, data_dir: str | Path | None, source: str) -> Path:
    """The upstream file ``filename`` of ``corpus``: in ``data_dir`` (the corpus folder, or the
    folder holding ``<corpus>/``), else in ``$PHASEWATCH_DATA/<corpus>/``. Never downloads.

    Raises:
        CorpusDataError: the file is not there; the message says where to get it (``source``)
            and where to put it.
    """
    if data_dir is not None:
        path = corpus_dir(data_dir, corpus) / filename
        where = f"pass data_dir= the folder that holds {filename} (or {corpus}/{filename})"
    else:
        env = os.environ.get(DATA_ENV, "")
        if not env:
            raise CorpusDataError(
                Path(corpus) / filename,
                f"{corpus} is not bundled and cannot be downloaded, and neither data_dir= nor "
                f"${DATA_ENV} is set",
                expected=f"{filename} in upstream layout",
                found="no folder to look in",
                fix=f"get {filename} from {source}, put it in <folder>/{corpus}/ and set "
                f"{DATA_ENV}=<folder>, or pass data_dir=<folder holding {filename}>",
            )
        path = Path(env).expanduser() / corpus / filename
        where = f"put it at {path}, or pass data_dir= the folder that holds it"
    if not path.is_file():
        raise CorpusDataError(
            path,
            "file not found",
            expected=f"the {corpus} file {filename} in upstream layout",
            found="no such file",
            fix=f"get {filename} from {source} and {where} "
            "(see docs/corpora-recipes.md; the file name must match exactly)",
        )
    return path


def read_table(
    path: Path,
    required: Sequence[str],
    *,
    sep: str,
    encoding: str,
    quoting: bool,
) -> pd.DataFrame:
    """A delimited table with a header row as strings, indexed by each row's line number.

    ``quoting``: fields may be quoted as in CSV (RFC 4180); off, a field is the text between
    separators. Raises :class:`CorpusDataError` if it cannot be decoded, a row has another number
    of fields than the header, or a ``required`` column is missing.
    """
    expected = f"a {sep!r}-separated header row with the columns {list(required)}, then data rows"
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise CorpusDataError(
            path,
            f"is not {encoding} text",
            expected=expected,
            found=_undecodable(data, encoding),
            fix=f"use the upstream file unchanged (it is read as {encoding})",
        ) from None
    try:
        reader = csv.reader(
            io.StringIO(text, newline=""),
            delimiter=sep,
            quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE,
            strict=True,
        )
        header = next(reader, None)
        rows, lines = [], []
        for row in reader:
            if row and any(field.strip() for field in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise CorpusDataError(
            path, f"cannot be parsed: {exc}", expected=expected, fix="use the upstream file"
        ) from None
    if header is None:
        raise CorpusDataError(path, "is empty", expected=expected, found="no header, no rows")
    header = [name.lstrip("\ufeff") if i == 0 else name for i, name in enumerate(header)]
    wrong = [(n, len(r)) for n, r in zip(lines, rows, strict=True) if len(r) != len(header)]
    if wrong:
        raise CorpusDataError(
            path,
            f"has {len(wrong)} rows whose number of fields is not the header's {len(header)}",
            expected=expected,
            found="; ".join(f"line {n}: {k} fields" for n, k in wrong[:_SHOWN]),
            fix="use the upstream file unchanged",
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise CorpusDataError(
            path,
            f"lacks the columns {missing}",
            expected=expected,
            found=f"the columns {header}",
            fix="use the upstream file unchanged (column names are case-sensitive); for a "
            "table of your own use phasewatch.corpora.load_tsv",
        )
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    frame.index = pd.Index(lines, name="line")
    return frame


def _undecodable(data: bytes, encoding: str) -> str:
    """Where ``data`` first fails to decode: line, byte and its value."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError as exc:
            return f"line {number}, byte {exc.start + 1}: 0x{line[exc.start]:02x}"
    return "an incomplete character at the end"


def integer_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """``frame[column]`` as integers; a value that is not an integer raises naming line and
    column."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = np.flatnonzero((values.isna() | (values != values.round())).to_numpy())
    if len(bad):
        raise CorpusDataError(
            path,
            f"column {column!r} has {len(bad)} values that are not integers",
            expected=f"an integer in column {column!r} of every row",
            found="; ".join(
                f"line {frame.index[i]}, column {column!r}: {frame[column].iloc[i]!r}"
                for i in bad[:_SHOWN]
            ),
        )
    return values.astype(np.int64)


def reading_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """``frame[column]`` in ms: a missing reading (:data:`MISSING`) is 0 (a skip); text that is
    not a number, or a negative number, raises naming line and column."""
    text = frame[column].str.strip()
    values = pd.to_numeric(text.where(~text.isin(MISSING), "0"), errors="coerce")
    bad = np.flatnonzero((values.isna() | ~np.isfinite(values) | (values < 0)).to_numpy())
    if len(bad):
        raise CorpusDataError(
            path,
            f"column {column!r} has {len(bad)} readings that are not durations in ms >= 0",
            expected=f"a duration in ms >= 0 in column {column!r}, or {list(MISSING)} for a "
            "word the reader did not fixate",
            found="; ".join(
                f"line {frame.index[i]}, column {column!r}: {frame[column].iloc[i]!r}"
                for i in bad[:_SHOWN]
            ),
            fix="use the upstream file unchanged",
        )
    return values.astype(float)


def corpus_from_readers(
    readers: pd.DataFrame,
    words: pd.DataFrame | None,
    *,
    path: Path,
    name: str,
    measure: str,
    language: str,
    license: str,
    citation: str,
    min_rt: float | None,
    max_rt: float | None,
    min_readers: int,
    extras: dict,
) -> ReadingTimeCorpus:
    """A corpus whose ``rt`` aggregates ``readers`` (story, position, reader, rt ms; index: line
    numbers of ``path``) with :func:`aggregate_readers` and whose text is ``words`` (story,
    position, word: every displayed word once). A word no reader has is kept with rt 0 and
    n_readers 0 (left out of the ΔLL regression); a reading of a word not in ``words`` raises.
    ``words=None``: the text is the ``word`` column of ``readers``, which must agree between the
    readers of a word.
    """
    if words is None:
        words = aggregate_readers(readers[[*READER_COLUMNS, "word"]], keep=["word"], source=path)[
            ["story", "position", "word"]
        ]
        first_line = readers.assign(line=readers.index).groupby(["story", "position"])["line"].min()
        words.index = pd.Index(
            first_line.loc[list(zip(words["story"], words["position"], strict=True))].to_numpy(),
            name="line",
        )
    check_positions(words, path)
    known = words.set_index(["story", "position"]).index
    outside = ~readers.set_index(["story", "position"]).index.isin(known)
    if outside.any():
        at = np.flatnonzero(outside)
        raise CorpusDataError(
            path,
            f"has {int(outside.sum())} readings of words that are not in the text",
            expected="readings of the text's words only (story, position within the text)",
            found="; ".join(
                f"line {readers.index[i]}: story {readers['story'].iloc[i]!r}, position "
                f"{readers['position'].iloc[i]}"
                for i in at[:_SHOWN]
            ),
            fix="use the upstream files of one release together",
        )
    per_word = aggregate_readers(
        readers[list(READER_COLUMNS)],
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        keep=[],
        source=path,
    )
    frame = words.merge(per_word, on=["story", "position"], how="left")
    frame["rt"] = frame["rt"].fillna(0.0).astype(float)
    frame["n_readers"] = frame["n_readers"].fillna(0).astype(np.int64)
    frame = frame.sort_values(["story", "position"], kind="stable").reset_index(drop=True)
    kept_readers = (
        readers[list(READER_COLUMNS)]
        .assign(kept=kept_readings(readers["rt"], min_rt=min_rt, max_rt=max_rt))
        .sort_values(["story", "position", "reader"], kind="stable")
    )
    rule = (
        f"mean over readers of {measure} (ms); skips (0 or missing) left out; readings outside "
        f"[{min_rt}, {max_rt}] ms dropped; fewer than {min_readers} readings -> rt 0"
    )
    return ReadingTimeCorpus(
        name=name,
        frame=frame,
        license=license,
        citation=citation,
        measure=measure,
        language=language,
        readers=kept_readers.reset_index(drop=True),
        extras={"path": str(path), "rt": rule, **extras},
    )

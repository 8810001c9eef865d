"""Tab-separated reading-time tables: a strict reader and :func:`load_tsv` for your own corpus.

Tables are read with quoting disabled (a field is the text between separators) and without NA
parsing, so words such as ``"Yes,"``, ``'What`` or ``null`` stay exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.readers import aggregate_readers, kept_readings
from phasewatch.corpora.schema import DEPENDENCY_COLUMNS, ReadingTimeCorpus

_SHOWN_ROWS = 5


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def _decode(path: Path, data: bytes, encoding: str, expected: str) -> str:
    """``data`` decoded; a byte that is not ``encoding`` raises with its line and column."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        bad = []
        for number, line in enumerate(_LINE_BREAK_BYTES.split(data), start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                byte = line[exc.start : exc.end]
                bad.append(f"line {number}, byte {exc.start + 1}: 0x{byte.hex()} in {line[:60]!r}")
                if len(bad) == _SHOWN_ROWS:
                    break
        raise CorpusDataError(
            path,
            f"is not {encoding.upper() if encoding.lower() == 'utf-8' else encoding} text",
            expected=expected,
            found="; ".join(bad),
            fix="save the file as UTF-8, or pass its encoding (e.g. encoding='latin-1')",
        ) from None
    except LookupError as exc:
        raise ValueError(f"`encoding` {encoding!r} is not a codec Python knows: {exc}") from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is not a column


def _blank(line: str, sep: str) -> bool:
    """Whether ``line`` holds no field: only spaces and tabs (tabs count unless they separate)."""
    return not line.strip(" \t".replace(sep, ""))


def read_tsv(
    path: str | Path, required: Sequence[str], *, sep: str = "\t", encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read a table with a header row as strings, indexed by the 1-based line number of each row
    in the file (blank lines are skipped but counted); raise :class:`CorpusDataError` if it cannot
    be decoded, a row has another number of fields than the header, or a ``required`` column is
    missing.

    Quoting is off: a row's fields are its text between separators (``sep``, one character).
    """
    path = Path(path)
    if not isinstance(sep, str) or len(sep) != 1:
        raise ValueError(f"`sep` must be one character, e.g. '\\t' or ',', got {sep!r}")
    expected = (
        f"a header row with the columns {list(required)}, then one row per word, {sep!r}-separated"
    )
    if not path.is_file():
        raise CorpusDataError(path, "file not found", expected=expected, found="no such file")
    text = _decode(path, path.read_bytes(), encoding, expected)
    numbered = [
        (number, line)
        for number, line in enumerate(_LINE_BREAK.split(text), start=1)
        if not _blank(line, sep)
    ]
    if not numbered:
        raise CorpusDataError(
            path, "cannot be parsed as a table", expected=expected, found="no header, no rows"
        )
    (_, header_line), rows = numbered[0], numbered[1:]
    header = [name or f"Unnamed: {i}" for i, name in enumerate(header_line.split(sep))]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise CorpusDataError(
            path, f"repeats the column names {repeated}", expected=expected, found=repr(header)
        )
    fields = [line.split(sep) for _, line in rows]
    wrong = [(n, len(f)) for (n, _), f in zip(rows, fields, strict=True) if len(f) != len(header)]
    if wrong:
        raise CorpusDataError(
            path,
            f"has {len(wrong)} rows whose number of fields is not the header's {len(header)}",
            expected=f"{len(header)} fields in every row, {sep!r}-separated, as in the header",
            found="; ".join(f"line {n}: {k} fields" for n, k in wrong[:_SHOWN_ROWS]),
            fix="remove the extra separators or fill the missing fields"
            + ("; for a CSV file pass sep=','" if sep == "\t" else ""),
        )
    frame = pd.DataFrame(fields, columns=header, dtype=str)
    frame.index = pd.Index([n for n, _ in rows], name="line")
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
    """``frame[column]`` as float (or int) values; every value must be a finite number. Errors name
    rows by ``frame.index`` (the file's line numbers, as :func:`read_tsv` gives them)."""
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if integer:
        bad |= values.to_numpy() != np.round(values.to_numpy())
    if bad.any():
        rows = [
            f"line {frame.index[i]}: {frame[column].iloc[i]!r}"
            for i in np.flatnonzero(bad)[:_SHOWN_ROWS]
        ]
        raise CorpusDataError(
            path,
            f"column {column!r} has {int(bad.sum())} values that are not finite "
            f"{'integers' if integer else 'numbers'}",
            expected=f"a finite {'integer' if integer else 'number'} in every row",
            found="; ".join(rows),
        )
    return values.astype(np.int64) if integer else values


def check_reading_times(values: pd.Series, column: str, path: str | Path) -> None:
    """Reading times (ms) must be >= 0; 0 marks a skipped word. ``values.index``: line numbers."""
    negative = np.flatnonzero(values.to_numpy() < 0)
    if len(negative):
        raise CorpusDataError(
            path,
            f"column {column!r} has {len(negative)} negative values",
            expected="a reading time in ms >= 0 in every row (0 = a skipped word, which the ΔLL "
            "regression leaves out)",
            found="; ".join(
                f"line {values.index[i]}: {float(values.iloc[i]):g}" for i in negative[:_SHOWN_ROWS]
            ),
            fix="correct those rows, or set a missing reading to 0 (left out of the regression)",
        )


def _lines(numbers: Sequence[int]) -> str:
    """``"line 3"``, ``"lines 3 and 5"``, ``"lines 3, 5 and 9"``."""
    shown = [str(n) for n in numbers]
    if len(shown) == 1:
        return f"line {shown[0]}"
    return f"lines {', '.join(shown[:-1])} and {shown[-1]}"


def _position_problems(story: object, positions: pd.Series) -> list[str]:
    """What keeps one story's positions (indexed by line number) from being 1..n."""
    problems = []
    lines_of: dict[int, list[int]] = {}
    for line, position in positions.items():
        lines_of.setdefault(int(position), []).append(int(line))
    for position, lines in sorted(lines_of.items()):
        if position < 1:
            problems.append(
                f"story {story!r}: position {position} on {_lines(lines)} (positions start at 1)"
            )
        elif len(lines) > 1:
            problems.append(f"story {story!r}: position {position} on {_lines(lines)}")
    present = [p for p in sorted(lines_of) if p >= 1]
    for before, after in zip([0, *present], present, strict=False):
        if after - before > 1:
            missing = list(range(before + 1, after))
            named = (
                ", ".join(map(str, missing)) if len(missing) <= 3 else f"{before + 1}…{after - 1}"
            )
            around = f"line {lines_of[after][0]} has {after}"
            if before:
                around = f"line {lines_of[before][-1]} has {before}, {around}"
            problems.append(f"story {story!r}: no position {named} ({around})")
    return problems


def check_positions(frame: pd.DataFrame, path: str | Path) -> None:
    """Each story's ``position`` values must be exactly 1..n (the full text, no gaps or repeats).

    Errors name the offending rows by ``frame.index`` (the file's line numbers, as
    :func:`read_tsv` gives them).
    """
    problems = []
    for story, positions in frame.groupby("story", sort=True)["position"]:
        problems += _position_problems(story, positions)
    if problems:
        raise CorpusDataError(
            path,
            "positions are not 1..n within each story",
            expected="positions 1, 2, …, n in every story: one row per displayed word",
            found="; ".join(problems[:_SHOWN_ROWS])
            + (f"; and {len(problems) - _SHOWN_ROWS} more" if len(problems) > _SHOWN_ROWS else ""),
            fix="keep every word of the text once (the text is rebuilt from the rows)",
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
    encoding: str = "utf-8",
    reader: str | None = None,
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
    frequency: str | None = None,
    frequency_is_log: bool = False,
    head: str | None = None,
    relation: str | None = None,
    language: str = "en",
) -> ReadingTimeCorpus:
    """Load your own reading-time corpus: one row per displayed word, or per reader x word.

    Args:
        path: the table (TSV by default; ``sep=","`` for CSV; ``sep`` is one character). Quoting
            is disabled and no value is read as missing, so words keep their quotes and ``null``
            stays a word. Blank lines are skipped; every other row has the header's number of
            fields.
        story, position, word, rt: the names of the columns holding the story id, the 1-based
            word position in the story (every story must have positions 1..n), the word as
            displayed (punctuation attached) and the reading time in ms (a finite number >= 0;
            0 marks a skipped word, kept in the corpus and left out of the ΔLL regression).
        n_readers: optional column with the number of readers behind each ``rt``.
        name: corpus name; defaults to the file name without extension.
        license, citation, measure: carried with the corpus. ``measure`` names the reading
            measure, kind first: ``"self-paced reading"`` or an eye-tracking measure of
            :data:`~phasewatch.corpora.schema.EYE_TRACKING_MEASURES` (``"eye tracking:
            first-pass gaze duration"``, ``"... first fixation duration"``, ``"... total reading
            time"``).
        default_spillover: previous words in the ΔLL regression for this corpus; by default from
            the measure's kind (self-paced reading 4, eye tracking 2; see
            :class:`ReadingTimeCorpus`).
        encoding: the file's text encoding (UTF-8 by default; e.g. ``"latin-1"``).
        reader: a column of reader ids: the table has one row per reader x word and is
            aggregated to per-word means by :func:`~phasewatch.corpora.readers.aggregate_readers`
            with ``min_rt``, ``max_rt`` (ms, None = no bound) and ``min_readers``. A reading
            may be empty, ``NA`` or ``.`` (missing); missing and 0 are skips, left out of the
            mean. The rows are kept on ``corpus.readers`` (with a ``kept`` column saying which
            entered the mean, and the table's other columns); ``n_readers`` counts the kept
            readings. The word (and frequency, head, relation) must agree across readers.
        frequency: a column of the corpus's own word frequencies, raw (a count, per-million or
            probability, > 0) unless ``frequency_is_log``. It becomes ``log_freq`` = ln(frequency)
            (or the column as given), the ΔLL baseline in place of ``wordfreq``.
        head, relation: columns of the corpus's dependency arcs (given together): the head
            word's position in the same story (0 = root) and the relation label. They become
            ``corpus.dependencies``, which the syntactic score reads.
        language: the text's language, an ISO 639-1 code (``"de"``); ``wordfreq`` frequencies
            are looked up in it when the table has no frequency column.

    Returns:
        A :class:`ReadingTimeCorpus` sorted by story then position; further columns are kept
        (numeric where every value is a number) on the per-word frame, or, with ``reader``,
        on ``corpus.readers``.

    Raises:
        CorpusDataError: the file is missing, not in ``encoding``, or unparsable (a row with
            another number of fields than the header), a named column is absent, a value is not
            a number, a reading time is negative, a word is empty, positions are not 1..n per
            story (a repeat, a gap, a position below 1), a frequency is not > 0, a head lies
            outside its story or is the word itself, a relation is empty, or a per-word value
            differs between readers. The message names the column and the file's line numbers
            (blank lines counted) of the first offending rows.
        ValueError: an argument is inconsistent (``head`` without ``relation``, ``n_readers``
            with ``reader``, bounds), or ``default_spillover`` is not given and the measure's
            kind has no default.
    """
    path = Path(path)
    _check_load_arguments(reader, n_readers, head, relation, frequency_is_log, frequency)
    names = {"story": story, "position": position, "word": word, "rt": rt}
    optional = {
        "n_readers": n_readers,
        "reader": reader,
        "frequency": frequency,
        "head": head,
        "relation": relation,
    }
    names |= {k: v for k, v in optional.items() if v is not None}
    raw = read_tsv(path, list(dict.fromkeys(names.values())), sep=sep, encoding=encoding)
    _check_not_empty(raw, word, "word", path)
    frame = pd.DataFrame(
        {
            "story": _story_ids(raw[story]),
            "position": numeric_column(raw, position, path, integer=True),
            "word": raw[word],
        }
    )
    if frequency is not None:
        frame["log_freq"] = _log_frequency_column(raw, frequency, frequency_is_log, path)
    if head is not None:
        frame["head_position"] = _head_column(raw, head, frame, path)
        _check_not_empty(raw, relation, "relation", path)
        frame["relation"] = raw[relation]
    extra = [c for c in raw.columns if c not in names.values()]
    readers = None
    if reader is None:
        frame["rt"] = numeric_column(raw, rt, path)
        check_reading_times(frame["rt"], rt, path)
        if n_readers is not None:
            frame["n_readers"] = numeric_column(raw, n_readers, path, integer=True)
        _keep_columns(frame, raw, extra)
    else:
        file_names = {"word": word, "log_freq": frequency, "head_position": head}
        file_names["relation"] = relation
        frame, readers = _aggregate(
            frame, raw, reader, rt, extra, path, min_rt, max_rt, min_readers, file_names
        )
    check_positions(frame, path)
    frame = frame.sort_values(["story", "position"], kind="stable").reset_index(drop=True)
    dependencies = None
    if head is not None:
        dependencies = frame[list(DEPENDENCY_COLUMNS)].copy()
        frame = frame.drop(columns=["head_position", "relation"])
    extras = {"path": str(path)}
    if reader is not None:
        extras["aggregation"] = {"min_rt": min_rt, "max_rt": max_rt, "min_readers": min_readers}
    return ReadingTimeCorpus(
        name=name or path.stem,
        frame=frame,
        license=license,
        citation=citation,
        measure=measure,
        extras=extras,
        default_spillover=default_spillover,
        dependencies=dependencies,
        language=language,
        readers=readers,
    )


def _check_load_arguments(
    reader: str | None,
    n_readers: str | None,
    head: str | None,
    relation: str | None,
    frequency_is_log: bool,
    frequency: str | None,
) -> None:
    if (head is None) != (relation is None):
        raise ValueError(
            "dependency arcs need both `head=` (the head word's position, 0 = root) and "
            f"`relation=` (the relation label) columns; got head={head!r}, relation={relation!r}"
        )
    if reader is not None and n_readers is not None:
        raise ValueError(
            f"with `reader={reader!r}` the readers behind each word are counted from the rows; "
            f"drop `n_readers={n_readers!r}`"
        )
    if frequency_is_log and frequency is None:
        raise ValueError("`frequency_is_log=True` needs `frequency=`, the frequency column")


def _check_not_empty(raw: pd.DataFrame, column: str, argument: str, path: Path) -> None:
    empty = np.flatnonzero(raw[column].str.len().to_numpy() == 0)
    if len(empty):
        raise CorpusDataError(
            path,
            f"column {column!r} (argument {argument}=) has {len(empty)} empty {argument}s",
            expected=f"a non-empty {argument} in every row",
            found=", ".join(f"line {raw.index[i]}" for i in empty[:_SHOWN_ROWS]),
        )


def _log_frequency_column(raw: pd.DataFrame, column: str, is_log: bool, path: Path) -> pd.Series:
    """``ln(frequency)``, or the column itself when it already holds log frequencies."""
    values = numeric_column(raw, column, path)
    if is_log:
        return values
    bad = np.flatnonzero(values.to_numpy() <= 0)
    if len(bad):
        raise CorpusDataError(
            path,
            f"column {column!r} (argument frequency=) has {len(bad)} frequencies that are not > 0",
            expected="a raw frequency > 0 in every row (count, per-million or probability); its "
            "natural log is the baseline",
            found="; ".join(
                f"line {values.index[i]}: {values.iloc[i]:g}" for i in bad[:_SHOWN_ROWS]
            ),
            fix="smooth the counts (e.g. add 1 to every count), or pass a log-frequency column "
            "with frequency_is_log=True",
        )
    return np.log(values)


def _head_column(raw: pd.DataFrame, column: str, frame: pd.DataFrame, path: Path) -> pd.Series:
    """Head positions: integers, 0 (root) or a position of the same story, never the word."""
    heads = numeric_column(raw, column, path, integer=True)
    length = frame.groupby("story")["position"].transform("max")
    bad = np.flatnonzero(((heads < 0) | (heads > length) | (heads == frame["position"])).to_numpy())
    if len(bad):
        raise CorpusDataError(
            path,
            f"column {column!r} (argument head=) has {len(bad)} heads outside their story or on "
            "the word itself",
            expected="the head word's position in the same story (1..story length), 0 = root, "
            "never the word's own position",
            found="; ".join(
                f"line {heads.index[i]}: story {frame['story'].tolist()[i]!r}, position "
                f"{frame['position'].iloc[i]}, head {heads.iloc[i]} (story length "
                f"{length.iloc[i]})"
                for i in bad[:_SHOWN_ROWS]
            ),
        )
    return heads


def _keep_columns(frame: pd.DataFrame, raw: pd.DataFrame, columns: Sequence[str]) -> None:
    """Add ``raw``'s ``columns`` to ``frame`` (numeric where every value is a number)."""
    for column in columns:
        converted = pd.to_numeric(raw[column], errors="coerce")
        kept = f"{column}_raw" if column in frame.columns else column  # e.g. an unused "rt"
        frame[kept] = converted if converted.notna().all() else raw[column]


def _aggregate(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    reader: str,
    rt: str,
    extra: Sequence[str],
    path: Path,
    min_rt: float | None,
    max_rt: float | None,
    min_readers: int,
    file_names: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-word means of per-reader rows (indexed by each word's first line), and the rows."""
    # the file's own column names, so that errors name the file's columns
    per_word = {c: file_names.get(c, c) for c in frame.columns if c not in ("story", "position")}
    taken = {"story", "position", "rt", "n_readers", reader, rt}
    if len(set(per_word.values())) < len(per_word) or taken & set(per_word.values()):
        per_word = {c: c for c in per_word}
    rows = frame.rename(columns=per_word)
    reader_name = reader if reader not in rows.columns else "reader"
    rt_name = rt if rt not in (*rows.columns, reader_name) else "rt"
    rows = rows.assign(**{reader_name: raw[reader], rt_name: raw[rt]})
    words = aggregate_readers(
        rows,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        keep=list(per_word.values()),
        source=path,
        reader=reader_name,
        rt=rt_name,
    ).rename(columns={v: k for k, v in per_word.items()})
    first_line = rows.reset_index().groupby(["story", "position"])["line"].min()
    at = pd.MultiIndex.from_frame(words[["story", "position"]])
    words.index = pd.Index(first_line.reindex(at).to_numpy(), name="line")
    readings = pd.to_numeric(raw[rt], errors="coerce").astype(float)
    readers = pd.DataFrame(
        {
            "story": frame["story"],
            "position": frame["position"],
            "reader": raw[reader],
            "rt": readings.fillna(0.0),
            "kept": kept_readings(readings, min_rt=min_rt, max_rt=max_rt),
        }
    )
    _keep_columns(readers, raw, extra)
    readers = readers.sort_values(["story", "position", "reader"], kind="stable")
    return words, readers.reset_index(drop=True)

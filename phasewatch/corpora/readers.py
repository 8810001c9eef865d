"""Per-reader reading times (one row per reader x word) aggregated to one mean per word.

The rule, in order, for each word (story, position):

1. A reading of 0 ms or a missing reading (NaN) is a **skip**: the reader did not fixate the word
   (eye tracking) or has no data for it. Skips are left out of the mean, not counted as 0 ms —
   as Aoyama & Wilcox (2025) preprocess Provo (``IA_FIRST_RUN_DWELL_TIME``) and MECO
   (``firstrun.dur``): missing durations dropped, the mean taken over the readings left.
2. A reading outside ``[min_rt, max_rt]`` ms is dropped (an outlier). No bound by default (the
   paper's eye-tracking rule); Natural Stories' upstream rule for self-paced reading is
   :data:`NATURAL_STORIES_BOUNDS_MS` (100–3000 ms).
3. ``rt`` = the arithmetic mean of the readings kept (ms), ``n_readers`` = their number. A word
   with fewer than ``min_readers`` kept readings (e.g. one nobody fixated) gets ``rt = 0``: it stays
   in the text and the ΔLL regression leaves it out, as the paper's words without a reading time.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from phasewatch.corpora.errors import CorpusDataError

#: Natural Stories' upstream outlier rule for single self-paced reading times (ms), inclusive.
NATURAL_STORIES_BOUNDS_MS = (100.0, 3000.0)

_KEYS = ["story", "position"]
_SHOWN = 5


def kept_readings(
    rt_ms: pd.Series, *, min_rt: float | None = None, max_rt: float | None = None
) -> pd.Series:
    """Which readings enter a word's mean: > 0 ms, not missing, inside ``[min_rt, max_rt]`` ms."""
    kept = rt_ms.notna() & (rt_ms > 0)
    if min_rt is not None:
        kept &= rt_ms >= min_rt
    if max_rt is not None:
        kept &= rt_ms <= max_rt
    return kept


def aggregate_readers(
    frame: pd.DataFrame,
    *,
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
    keep: Sequence[str] | None = None,
    source: str | Path | None = None,
    story: str = "story",
    position: str = "position",
    reader: str = "reader",
    rt: str = "rt",
) -> pd.DataFrame:
    """One row per word from per-reader rows: ``rt`` (ms) the mean over the readings kept.

    Args:
        frame: one row per reader x word with the columns ``story``, ``position``, ``reader`` and
            ``rt`` (ms; 0, NaN, empty, ``NA`` or ``.`` = skipped), named by the arguments of the
            same names. Further columns (e.g. ``word``) are per-word values.
        min_rt, max_rt: readings outside ``[min_rt, max_rt]`` ms are dropped (None = no bound).
        min_readers: a word with fewer kept readings gets ``rt = 0`` (left out of the ΔLL
            regression, kept in the text).
        keep: the per-word columns to carry (default: every column but the four above); each
            must hold one value per word.
        source: the file ``frame`` came from; when given, errors are :class:`CorpusDataError`
            naming rows by ``frame.index`` as line numbers.
        story, position, reader, rt: the frame's names of the four columns (e.g. Provo's
            ``Text_ID``, ``Word_Number``, ``Participant_ID``, ``IA_FIRST_RUN_DWELL_TIME``).

    Returns:
        DataFrame sorted by story then position: ``story``, ``position`` (these names, whatever
        the input's), the ``keep`` columns,
        ``rt`` (mean ms, 0 when fewer than ``min_readers``) and ``n_readers`` (readings kept).

    Raises:
        ValueError (CorpusDataError with ``source``): a column is missing, a reading is negative,
            a reader reads a word twice, a ``keep`` column differs between readers of one word,
            or the bounds are not numbers with ``min_rt <= max_rt``.
    """
    _check_arguments(min_rt, max_rt, min_readers)
    names = {"story": story, "position": position, "reader": reader, "rt": rt}
    missing = [c for c in names.values() if c not in frame.columns]
    if missing:
        _fail(
            source,
            f"lacks the per-reader columns {missing}",
            f"the columns {list(names.values())} (one row per reader x word, rt in ms)",
            f"the columns {list(frame.columns)}",
        )
    own = set(names.values())
    keep = [c for c in frame.columns if c not in own] if keep is None else list(keep)
    unknown = [c for c in keep if c not in frame.columns or c in own]
    if unknown:
        raise ValueError(
            f"`keep` must name per-word columns of the frame other than {list(names.values())}, "
            f"got {unknown}; the frame has {list(frame.columns)}"
        )
    clash = [c for c in keep if c in ("story", "position", "rt", "n_readers")]
    if clash:
        raise ValueError(
            f"the per-word columns {clash} would overwrite the output's columns; rename them"
        )
    columns = {"story": story, "position": position, "reader": reader} | {c: c for c in keep}
    work = pd.DataFrame({k: frame[c].to_numpy() for k, c in columns.items()}, index=frame.index)
    readings = pd.Series(pd.to_numeric(frame[rt], errors="coerce").to_numpy(float), frame.index)
    _check_readings(frame[rt], readings, rt, source)
    _check_one_reading_per_reader(work, source)
    words = _per_word_values(work, keep, source)
    kept = kept_readings(readings, min_rt=min_rt, max_rt=max_rt).to_numpy()
    chosen = work.loc[kept, _KEYS].assign(rt=readings.to_numpy()[kept])
    stats = chosen.groupby(_KEYS)["rt"].agg(["mean", "size"])
    out = words.join(stats, on=_KEYS)
    n = out["size"].fillna(0).astype(np.int64)
    out["rt"] = np.where(n >= min_readers, out["mean"].fillna(0.0), 0.0)
    out["n_readers"] = n
    out = out.drop(columns=["mean", "size"])
    return out.sort_values(_KEYS, kind="stable").reset_index(drop=True)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (``1``, not ``np.int64(1)``, in messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_arguments(min_rt: float | None, max_rt: float | None, min_readers: int) -> None:
    for name, value in (("min_rt", min_rt), ("max_rt", max_rt)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value)
        ):
            raise ValueError(f"`{name}` must be a finite number of ms or None, got {value!r}")
    if min_rt is not None and max_rt is not None and min_rt > max_rt:
        raise ValueError(
            f"`min_rt` ({min_rt} ms) must not exceed `max_rt` ({max_rt} ms); e.g. "
            "min_rt=100, max_rt=3000 (Natural Stories' rule for self-paced reading)"
        )
    if isinstance(min_readers, bool) or not isinstance(min_readers, int) or min_readers < 1:
        raise ValueError(f"`min_readers` must be an int >= 1, got {min_readers!r}")


def _rows(frame: pd.DataFrame, positions: Sequence[int], source: str | Path | None) -> str:
    """The rows at ``positions`` by their index labels (line numbers when read from a file)."""
    what = "line" if source is not None else "row"
    return ", ".join(f"{what} {frame.index[i]}" for i in positions[:_SHOWN])


def _fail(source: str | Path | None, problem: str, expected: str, found: str, fix: str = ""):
    if source is not None:
        raise CorpusDataError(source, problem, expected=expected, found=found, fix=fix)
    raise ValueError(
        f"the per-reader frame {problem}: expected {expected}; found {found}"
        + (f"; to fix: {fix}" if fix else "")
    )


def _check_readings(raw: pd.Series, rt: pd.Series, column: str, source: str | Path | None) -> None:
    """Readings must be numbers >= 0 or empty (NaN); text that is no number is an error."""
    frame = raw.to_frame()
    text = raw.astype(str).str.strip()
    blank = raw.isna() | text.isin(["", "NA", "NaN", "nan", "."])
    not_number = np.flatnonzero((rt.isna() & ~blank).to_numpy() | np.isinf(rt.to_numpy()))
    if len(not_number):
        _fail(
            source,
            f"column {column!r} has {len(not_number)} readings that are not numbers",
            "a reading in ms >= 0, or empty / NA / '.' for a missing reading (a skip)",
            "; ".join(f"{_rows(frame, [i], source)}: {raw.iloc[i]!r}" for i in not_number[:_SHOWN]),
        )
    negative = np.flatnonzero((rt < 0).to_numpy())
    if len(negative):
        _fail(
            source,
            f"column {column!r} has {len(negative)} negative readings",
            "a reading in ms >= 0 (0 or missing = skipped)",
            "; ".join(f"{_rows(frame, [i], source)}: {rt.iloc[i]:g}" for i in negative[:_SHOWN]),
        )


def _check_one_reading_per_reader(frame: pd.DataFrame, source: str | Path | None) -> None:
    repeated = frame.duplicated([*_KEYS, "reader"], keep=False).to_numpy()
    if repeated.any():
        at = np.flatnonzero(repeated)
        _fail(
            source,
            f"has {int(repeated.sum())} rows where one reader reads one word twice",
            "one row per (story, position, reader)",
            "; ".join(
                f"{_rows(frame, [i], source)}: story {frame['story'].tolist()[i]!r}, position "
                f"{frame['position'].iloc[i]}, reader {frame['reader'].tolist()[i]!r}"
                for i in at[:_SHOWN]
            ),
            "keep one reading per reader and word (e.g. first-pass or summed durations)",
        )


def _per_word_values(
    frame: pd.DataFrame, keep: list[str], source: str | Path | None
) -> pd.DataFrame:
    """One row per word with its ``keep`` values; a value differing between readers raises."""
    grouped = frame.groupby(_KEYS, sort=False)
    for column in keep:
        counts = grouped[column].nunique(dropna=False)
        differing = counts[counts > 1]
        if len(differing):
            problems = []
            for key in differing.index[:_SHOWN]:
                rows = grouped.indices[key]
                values = list(dict.fromkeys(frame[column].iloc[rows].tolist()))
                where = _rows(frame, rows, source)
                problems.append(
                    f"story {_plain(key[0])!r}, position {key[1]}: {values[:3]} ({where})"
                )
            _fail(
                source,
                f"column {column!r} differs between readers of {len(differing)} words",
                f"one {column!r} per (story, position), the same in every reader's row",
                "; ".join(problems),
                "correct the rows (a word must be the same for every reader), or leave "
                "reader-specific columns out of the per-word columns",
            )
    return grouped[keep].first().reset_index() if keep else grouped.size().reset_index()[_KEYS]

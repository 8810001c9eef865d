"""GECO, the Ghent Eye-tracking Corpus: a whole novel (Agatha Christie's *The Mysterious Affair at
Styles*) read in English by monolingual readers, and in Dutch and English by Dutch-English
bilinguals.

Cop, Dirix, Drieghe & Duyck (2017), Behavior Research Methods 49(2):602–615; files from
https://expsy.ugent.be/downloads/geco/ (Excel workbooks). Not bundled and not downloadable here: put
the workbook in ``$PHASEWATCH_DATA/geco/`` or pass ``data_dir=``. No manifest pins it (no checksum
is known here), so the file is read as it is. Reading ``.xlsx`` needs ``openpyxl``
(``pip install 'phasewatch[corpora]'``); the full monolingual workbook takes minutes to read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.upstream import (
    FIRST_FIXATION,
    GAZE_DURATION,
    GO_PAST,
    TOTAL_READING_TIME,
    corpus_from_readers,
    integer_column,
    measure_column,
    reading_column,
    upstream_file,
)

NAME = "geco"
DUTCH_NAME = "geco-nl"
L2_NAME = "geco-l2"
SOURCE = "https://expsy.ugent.be/downloads/geco/ (the GECO download page, Ghent University)"
#: Reader group → (workbook, language of the text).
FILES = {
    "monolingual": ("MonolingualReadingData.xlsx", "en"),
    "bilingual-l1": ("L1ReadingData.xlsx", "nl"),
    "bilingual-l2": ("L2ReadingData.xlsx", "en"),
}
#: Reader group → the corpus name (each group its own name, so two groups can be measured
#: side by side: ``PPPMonitor(corpora=["geco", "geco-l2"])``).
NAMES = {"monolingual": NAME, "bilingual-l1": DUTCH_NAME, "bilingual-l2": L2_NAME}
LICENSE = (
    "no licence stated on the download page (free for research; cite Cop et al. 2017 and ask "
    "the authors before redistributing)"
)
CITATION = (
    "Cop, U., Dirix, N., Drieghe, D., & Duyck, W. (2017). Presenting GECO: An eyetracking corpus "
    "of monolingual and bilingual sentence reading. Behavior Research Methods, 49(2), 602–615. "
    "https://doi.org/10.3758/s13428-016-0734-0"
)
#: phasewatch measure → column of the reading-data workbooks ("." = the word was not fixated).
MEASURES = {
    FIRST_FIXATION: "WORD_FIRST_FIXATION_DURATION",
    GAZE_DURATION: "WORD_GAZE_DURATION",
    TOTAL_READING_TIME: "WORD_TOTAL_READING_TIME",
    GO_PAST: "WORD_GO_PAST_TIME",
}
_COLUMNS = ["PP_NR", "PART", "TRIAL", "WORD_ID_WITHIN_TRIAL", "WORD"]


def load(
    *,
    data_dir: str | Path | None = None,
    measure: str = GAZE_DURATION,
    group: str = "monolingual",
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
) -> ReadingTimeCorpus:
    """GECO in phasewatch's schema: ``story`` = the novel's ``PART`` (1–4), ``position`` = the
    word's place in the part (trials, i.e. screens, in ``TRIAL`` order, words in
    ``WORD_ID_WITHIN_TRIAL`` order), ``word`` = ``WORD``, ``rt`` the mean over readers
    (``PP_NR``) of the measure.

    Args:
        data_dir: the folder holding the workbook (or ``geco/`` with it); default
            ``$PHASEWATCH_DATA/geco/``.
        measure: ``"first-pass gaze duration"`` (``WORD_GAZE_DURATION``, the default; ``"gaze
            duration"`` also works), ``"first fixation duration"``, ``"total reading time"``
            or ``"go-past time"``.
        group: ``"monolingual"`` (English readers, ``MonolingualReadingData.xlsx``),
            ``"bilingual-l1"`` (Dutch-English bilinguals reading Dutch, ``L1ReadingData.xlsx``,
            ``language="nl"``) or ``"bilingual-l2"`` (the bilinguals reading English,
            ``L2ReadingData.xlsx``).
        min_rt, max_rt, min_readers: the rule of
            :func:`~phasewatch.corpora.readers.aggregate_readers` (ms; default no bounds). A
            word not fixated (``.``) is a skip, left out of the mean.

    Returns:
        A corpus with ``rt`` (mean ms), ``n_readers``, the per-reader rows on ``readers``,
        ``measure="eye tracking: <measure>"`` (spillover 2) and ``language`` of the group.

    Raises:
        ImportError: ``openpyxl`` is not installed (the message says how to install it).
        CorpusDataError: the workbook is missing (the message says where to get it and put
            it), lacks a column, holds a value that is not a number where one is due, or
            readers disagree on a word.
        ValueError: an unknown ``measure`` or ``group``, or bad rule arguments.
    """
    name, column = measure_column(measure, MEASURES, "GECO")
    if group not in FILES:
        raise ValueError(f"`group` must be one of {list(FILES)}, got {group!r}")
    filename, language = FILES[group]
    path = upstream_file(NAME, filename, data_dir=data_dir, source=SOURCE)
    raw = read_sheet(path, [*_COLUMNS, column])
    part = integer_column(raw, "PART", path)
    trial = integer_column(raw, "TRIAL", path)
    within = integer_column(raw, "WORD_ID_WITHIN_TRIAL", path)
    order = pd.DataFrame({"part": part, "trial": trial, "within": within})
    places = order.drop_duplicates().sort_values(["part", "trial", "within"])
    places["position"] = places.groupby("part").cumcount() + 1
    position = order.merge(places, on=["part", "trial", "within"], how="left")["position"]
    readers = pd.DataFrame(
        {
            "story": part,
            "position": position.to_numpy(),
            "reader": raw["PP_NR"].str.strip(),
            "rt": reading_column(raw, column, path),
            "word": raw["WORD"],
        },
        index=raw.index,
    )
    return corpus_from_readers(
        readers,
        None,
        path=path,
        name=NAMES[group],
        measure=f"eye tracking: {name}",
        language=language,
        license=LICENSE,
        citation=CITATION,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        extras={"column": column, "group": group, "upstream": SOURCE},
    )


def group_loader(group: str) -> Callable[..., ReadingTimeCorpus]:
    """:func:`load` with ``group`` fixed, for the registry (one registered name per group)."""
    if group not in FILES:
        raise ValueError(f"`group` must be one of {list(FILES)}, got {group!r}")

    def load_group(**options: Any) -> ReadingTimeCorpus:
        return load(group=group, **options)

    load_group.__doc__ = f"GECO's {group} reading, ``{NAMES[group]}``: load(group={group!r})."
    return load_group


#: GECO's Dutch reading (bilinguals in their first language).
load_dutch = group_loader("bilingual-l1")
#: GECO's English reading by the Dutch bilinguals (their second language).
load_l2 = group_loader("bilingual-l2")


def read_sheet(path: Path, required: list[str]) -> pd.DataFrame:
    """The ``required`` columns of the first worksheet of ``path`` as strings, indexed by
    spreadsheet row number (1 = the header); an empty cell is ``""``, an integral number is written
    without ``.0``. Rows whose required cells are all empty are skipped.

    Raises:
        ImportError: ``openpyxl`` is missing.
        CorpusDataError: the file is not a workbook, or lacks a ``required`` column.
    """
    try:
        import openpyxl
    except ImportError as exc:
        raise ImportError(
            "reading GECO's .xlsx workbooks needs openpyxl: pip install 'phasewatch[corpora]' "
            "(or pip install openpyxl)"
        ) from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException …
        raise CorpusDataError(
            path,
            f"is not an Excel workbook: {exc}",
            expected="the upstream .xlsx file",
            fix=f"download it again from {SOURCE}",
        ) from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [_cell(v) for v in next(rows, ())]
        missing = [c for c in required if c not in header]
        if missing:
            raise CorpusDataError(
                path,
                f"lacks the columns {missing}",
                expected=f"a header row with the columns {required} in the first worksheet",
                found=f"the columns {header}",
                fix="use the upstream workbook unchanged (column names are case-sensitive)",
            )
        at = [header.index(c) for c in required]
        cells, numbers = [], []
        for number, row in enumerate(rows, start=2):
            values = [_cell(row[i]) if i < len(row) else "" for i in at]
            if any(values):
                cells.append(values)
                numbers.append(number)
    finally:
        book.close()
    frame = pd.DataFrame(cells, columns=list(required), dtype=str)
    frame.index = pd.Index(numbers, name="line")
    return frame


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

"""The Provo Corpus: eye tracking of 84 readers on 55 English passages (2,689 words).

Luke & Christianson (2018), Behavior Research Methods 50(2):826–833; files on OSF
(https://osf.io/sjefs/), licence CC BY 4.0. Not bundled and not downloadable here: put the two
upstream CSV files in ``$PHASEWATCH_DATA/provo/`` or pass ``data_dir=``. No manifest pins them
(no checksums are known here), so the files are read as they are.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.upstream import (
    FIRST_FIXATION,
    GAZE_DURATION,
    TOTAL_READING_TIME,
    corpus_from_readers,
    integer_column,
    measure_column,
    read_table,
    reading_column,
    upstream_file,
)

NAME = "provo"
EYE_FILE = "Provo_Corpus-Eyetracking_Data.csv"
NORMS_FILE = "Provo_Corpus-Predictability_Norms.csv"
SOURCE = "https://osf.io/sjefs/ (the Provo Corpus on OSF)"
LICENSE = (
    "CC BY 4.0 (Creative Commons Attribution 4.0 International, as stated on https://osf.io/sjefs/)"
)
CITATION = (
    "Luke, S. G., & Christianson, K. (2018). The Provo Corpus: A large eye-tracking corpus with "
    "predictability norms. Behavior Research Methods, 50(2), 826–833. "
    "https://doi.org/10.3758/s13428-017-0908-4"
)
#: phasewatch measure → column of the eye-tracking file (SR Research Data Viewer interest-area
#: report). ``IA_FIRST_RUN_DWELL_TIME`` is the measure Aoyama & Wilcox (2025) use.
MEASURES = {
    FIRST_FIXATION: "IA_FIRST_FIXATION_DURATION",
    GAZE_DURATION: "IA_FIRST_RUN_DWELL_TIME",
    TOTAL_READING_TIME: "IA_DWELL_TIME",
}
ENCODING = "latin-1"
#: The files write the apostrophe as byte 0xD5 (Mac Roman's ’), Õ in Latin-1; the paper's code
#: reads Latin-1 and replaces Õ by ', and so does this loader.
_APOSTROPHE = ("\u00d5", "'")
_PUNCTUATION = ".,;:!?\"'()"


def load(
    *,
    data_dir: str | Path | None = None,
    measure: str = GAZE_DURATION,
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
) -> ReadingTimeCorpus:
    """Provo in phasewatch's schema: one row per word of the 55 passages.

    The text is each passage's ``Text`` from ``Provo_Corpus-Predictability_Norms.csv`` (per
    ``Text_ID``), split at whitespace: ``story`` = ``Text_ID``, ``position`` = the word's 1-based
    index, ``word`` as displayed. Reading times come from ``Provo_Corpus-Eyetracking_Data.csv``,
    one row per reader (``Participant_ID``) x word (``Text_ID``, ``Word_Number``); rows without a
    ``Text_ID`` or ``Word_Number`` are dropped (their number is in ``extras["rows_without_ids"]``).
    Where the eye-tracking file's ``Word`` differs from the passage word at the same place
    (punctuation and case ignored), a warning lists the places (``extras["word_mismatches"]``):
    the numbering of the two files would disagree there.

    Args:
        data_dir: the folder holding the two files (or ``provo/`` with them); default
            ``$PHASEWATCH_DATA/provo/``.
        measure: ``"first-pass gaze duration"`` (``IA_FIRST_RUN_DWELL_TIME``, the paper's;
            ``"gaze duration"`` also works), ``"first fixation duration"``
            (``IA_FIRST_FIXATION_DURATION``) or ``"total reading time"`` (``IA_DWELL_TIME``); an
            ``"eye tracking: "`` prefix, other case and hyphens are allowed.
        min_rt, max_rt, min_readers: the aggregation rule of
            :func:`~phasewatch.corpora.readers.aggregate_readers` (ms; default: no bounds, one
            reader, as the paper). A skipped word (empty/NA duration, or 0) is left out of the
            mean; a word nobody fixated has rt 0 and is left out of the ΔLL regression.

    Returns:
        A corpus with ``rt`` (mean ms), ``n_readers``, the per-reader rows on ``readers``,
        ``measure="eye tracking: <measure>"`` (default spillover 2) and ``language="en"``.

    Raises:
        CorpusDataError: a file is missing (the message says where to get it and put it), not
            Latin-1, lacks a column, or holds a value that is not a number where one is due, or
            a reading of a word beyond its passage.
        ValueError: an unknown ``measure`` (the message lists Provo's), or bad rule arguments.
    """
    name, column = measure_column(measure, MEASURES, "Provo")
    norms_path = upstream_file(NAME, NORMS_FILE, data_dir=data_dir, source=SOURCE)
    eye_path = upstream_file(NAME, EYE_FILE, data_dir=data_dir, source=SOURCE)
    words = _passage_words(norms_path)
    raw = read_table(
        eye_path,
        ["Participant_ID", "Text_ID", "Word_Number", "Word", column],
        sep=",",
        encoding=ENCODING,
        quoting=True,
    )
    ids = raw[["Text_ID", "Word_Number"]].apply(lambda c: c.str.strip().isin(["", "NA"]))
    numbered = raw[~ids.any(axis=1)]
    readers = pd.DataFrame(
        {
            "story": integer_column(numbered, "Text_ID", eye_path),
            "position": integer_column(numbered, "Word_Number", eye_path),
            "reader": numbered["Participant_ID"].str.strip(),
            "rt": reading_column(numbered, column, eye_path),
        },
        index=numbered.index,
    )
    mismatches = _word_mismatches(readers.assign(word=numbered["Word"]), words)
    if mismatches:
        warnings.warn(
            f"Provo: at {len(mismatches)} places the eye-tracking file's Word differs from the "
            f"passage word at the same Text_ID/Word_Number (punctuation and case ignored), e.g. "
            f"{mismatches[:3]}; the reading times there may belong to a neighbouring word. "
            "rt is taken as numbered; the list is in corpus.extras['word_mismatches']",
            stacklevel=2,
        )
    return corpus_from_readers(
        readers,
        words,
        path=eye_path,
        name=NAME,
        measure=f"eye tracking: {name}",
        language="en",
        license=LICENSE,
        citation=CITATION,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        extras={
            "column": column,
            "rows_without_ids": int(len(raw) - len(numbered)),
            "word_mismatches": mismatches,
            "text": f"{NORMS_FILE}: Text per Text_ID, split at whitespace",
            "upstream": SOURCE,
        },
    )


def _comparable(word: str) -> str:
    """A word as compared between the two files: apostrophe as ', no outer punctuation, lower."""
    return word.replace(*_APOSTROPHE).strip(_PUNCTUATION).lower()


def _word_mismatches(readers: pd.DataFrame, words: pd.DataFrame) -> list[tuple]:
    """(story, position, eye-tracking Word, passage word) wherever the two disagree."""
    pairs = readers[["story", "position", "word"]].drop_duplicates()
    joined = pairs.merge(words, on=["story", "position"], how="inner", suffixes=("_eye", ""))
    differ = joined["word_eye"].map(_comparable) != joined["word"].map(_comparable)
    return [
        (int(s), int(p), e, w)
        for s, p, e, w in joined.loc[differ, ["story", "position", "word_eye", "word"]].itertuples(
            index=False
        )
    ]


def _passage_words(path: Path) -> pd.DataFrame:
    """(story, position, word) of every passage: its ``Text`` split at whitespace."""
    raw = read_table(path, ["Text_ID", "Text"], sep=",", encoding=ENCODING, quoting=True)
    raw = raw.assign(Text_ID=integer_column(raw, "Text_ID", path))
    spaced = raw["Text"].map(lambda t: " ".join(t.split()))
    texts = spaced.groupby(raw["Text_ID"], sort=True).agg(lambda t: list(dict.fromkeys(t)))
    differing = texts[texts.map(len) > 1]
    if len(differing):
        raise CorpusDataError(
            path,
            f"gives {len(differing)} passages more than one Text",
            expected="one Text per Text_ID (repeated on each of its rows)",
            found=f"Text_ID {list(differing.index[:5])}",
            fix="use the upstream file unchanged",
        )
    rows = []
    for story, (text,) in texts.items():
        text = text.replace(*_APOSTROPHE)
        rows += [(story, i, w) for i, w in enumerate(text.split(), start=1)]
    return pd.DataFrame(rows, columns=["story", "position", "word"])

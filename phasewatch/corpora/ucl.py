"""The UCL corpus: 361 English sentences read word by word (self-paced) and 205 of them with
eye tracking.

Frank, Fernandez Monsalve, Thompson & Vigliocco (2013), Behavior Research Methods 45(4):1182–1190,
electronic supplementary material 1 (a zip with ``eyetracking.RT.txt`` and
``selfpacedreading.RT.txt``). Not bundled and not downloadable here: put the files in
``$PHASEWATCH_DATA/ucl/`` or pass ``data_dir=``. No manifest pins them (no checksums are known
here), so the files are read as they are. Each sentence is one ``story``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phasewatch.corpora.readers import NATURAL_STORIES_BOUNDS_MS
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.upstream import (
    FIRST_FIXATION,
    GAZE_DURATION,
    GO_PAST,
    RIGHT_BOUNDED,
    SELF_PACED,
    canonical_measure,
    corpus_from_readers,
    integer_column,
    measure_column,
    read_table,
    reading_column,
    upstream_file,
)

NAME = "ucl"
SPR_NAME = "ucl-spr"
EYE_FILE = "eyetracking.RT.txt"
SPR_FILE = "selfpacedreading.RT.txt"
SOURCE = (
    "the electronic supplementary material of Frank et al. (2013), "
    "https://doi.org/10.3758/s13428-012-0313-y (13428_2012_313_MOESM1_ESM.zip)"
)
LICENSE = (
    "no licence stated upstream: supplementary material of a Springer journal article (ask the "
    "authors before redistributing; cite the article)"
)
CITATION = (
    "Frank, S. L., Fernandez Monsalve, I., Thompson, R. L., & Vigliocco, G. (2013). Reading time "
    "data for evaluating broad-coverage models of English sentence processing. Behavior Research "
    "Methods, 45(4), 1182–1190. https://doi.org/10.3758/s13428-012-0313-y"
)
#: phasewatch measure → column of ``eyetracking.RT.txt``; the self-paced file's column is ``RT``.
MEASURES = {
    FIRST_FIXATION: "RTfirstfix",
    GAZE_DURATION: "RTfirstpass",
    RIGHT_BOUNDED: "RTrightbound",
    GO_PAST: "RTgopast",
    SELF_PACED: "RT",
}
_COLUMNS = ["subj_nr", "sent_nr", "word_pos", "word"]


def load(
    *,
    data_dir: str | Path | None = None,
    measure: str = GAZE_DURATION,
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
) -> ReadingTimeCorpus:
    """UCL in phasewatch's schema: one row per word, ``story`` = ``sent_nr``, ``position`` =
    ``word_pos``, ``word`` as displayed, ``rt`` the mean over readers (``subj_nr``).

    Args:
        data_dir: the folder holding the upstream files (or ``ucl/`` with them); default
            ``$PHASEWATCH_DATA/ucl/``.
        measure: from ``eyetracking.RT.txt`` ``"first-pass gaze duration"`` (``RTfirstpass``,
            the default; ``"gaze duration"`` also works), ``"first fixation duration"``
            (``RTfirstfix``), ``"right-bounded reading time"`` (``RTrightbound``) or
            ``"go-past time"`` (``RTgopast``); or
            ``"self-paced reading"`` (``RT`` of ``selfpacedreading.RT.txt``; see
            :func:`load_spr`). UCL has no total reading time.
        min_rt, max_rt, min_readers: the rule of
            :func:`~phasewatch.corpora.readers.aggregate_readers` (ms). Eye tracking: no bounds
            by default; self-paced reading: ``None`` means Natural Stories' 100–3000 ms. A
            reading of 0 ms (a word not fixated) is a skip, left out of the mean.

    Returns:
        A corpus with ``rt`` (mean ms), ``n_readers``, the per-reader rows on ``readers``,
        ``language="en"`` and ``measure`` ``"eye tracking: <measure>"`` (spillover 2) or
        ``"self-paced reading"`` (spillover 4).

    Raises:
        CorpusDataError: the file is missing (the message says where to get it and put it),
            lacks a column, a value is not a number, readers disagree on a word, or a sentence's
            word positions are not 1..n.
        ValueError: an unknown ``measure`` (the message lists UCL's), or bad rule arguments.
    """
    name, column = measure_column(measure, MEASURES, "UCL")
    spr = name == SELF_PACED
    path = upstream_file(NAME, SPR_FILE if spr else EYE_FILE, data_dir=data_dir, source=SOURCE)
    raw = read_table(path, [*_COLUMNS, column], sep="\t", encoding="utf-8", quoting=False)
    readers = pd.DataFrame(
        {
            "story": integer_column(raw, "sent_nr", path),
            "position": integer_column(raw, "word_pos", path),
            "reader": integer_column(raw, "subj_nr", path),
            "rt": reading_column(raw, column, path),
            "word": raw["word"],
        },
        index=raw.index,
    )
    if spr:
        min_rt = NATURAL_STORIES_BOUNDS_MS[0] if min_rt is None else min_rt
        max_rt = NATURAL_STORIES_BOUNDS_MS[1] if max_rt is None else max_rt
    return corpus_from_readers(
        readers,
        None,
        path=path,
        name=SPR_NAME if spr else NAME,
        measure=SELF_PACED if spr else f"eye tracking: {name}",
        language="en",
        license=LICENSE,
        citation=CITATION,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        extras={"column": column, "upstream": SOURCE},
    )


def load_spr(
    *,
    data_dir: str | Path | None = None,
    measure: str = SELF_PACED,
    min_rt: float | None = None,
    max_rt: float | None = None,
    min_readers: int = 1,
) -> ReadingTimeCorpus:
    """UCL's self-paced reading times (``selfpacedreading.RT.txt``, column ``RT``): as
    :func:`load` with ``measure="self-paced reading"``; readings outside 100–3000 ms are dropped
    unless ``min_rt``/``max_rt`` say otherwise.

    Raises:
        ValueError: ``measure`` is not self-paced reading.
        CorpusDataError: as :func:`load`.
    """
    if canonical_measure(measure) != SELF_PACED:
        raise ValueError(
            f"`measure` of {SPR_NAME} must be 'self-paced reading', got {measure!r}; for UCL's "
            f"eye-tracking measures use phasewatch.corpora.load({NAME!r}, measure=...)"
        )
    return load(
        data_dir=data_dir,
        measure=SELF_PACED,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
    )

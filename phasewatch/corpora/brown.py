"""The Brown self-paced reading corpus: passages of the Brown corpus read word by word.

Smith & Levy (2013), Cognition 128(3):302–319, in the per-reader table ``brown_spr.csv`` that later
studies of surprisal and reading times share (one row per reader x word; ``text_id`` and
``text_pos`` 0-based; ``time`` in ms). Not bundled and not downloadable here: put the file in
``$PHASEWATCH_DATA/brown/`` or pass ``data_dir=``. No manifest pins it (no checksum is known
here), so the file is read as it is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from phasewatch.corpora.readers import NATURAL_STORIES_BOUNDS_MS
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.upstream import (
    SELF_PACED,
    canonical_measure,
    corpus_from_readers,
    integer_column,
    read_table,
    reading_column,
    upstream_file,
)

NAME = "brown"
FILE = "brown_spr.csv"
SOURCE = (
    "the data of Smith & Levy (2013); there is no official download: the file circulates among "
    "later reading-time studies, e.g. in the Google Drive archive (data/corpora/) that "
    "t-aoyam/pt-and-ppp's data/README.md links for Dundee"
)
LICENSE = (
    "no licence stated upstream: research data of Smith & Levy (2013); the passages are from the "
    "Brown corpus (ask the authors before redistributing; cite the article)"
)
CITATION = (
    "Smith, N. J., & Levy, R. (2013). The effect of word predictability on reading time is "
    "logarithmic. Cognition, 128(3), 302–319. https://doi.org/10.1016/j.cognition.2013.02.013"
)
#: The one measure: self-paced reading time in ms.
MEASURES = {SELF_PACED: "time"}


def load(
    *,
    data_dir: str | Path | None = None,
    measure: str = SELF_PACED,
    min_rt: float | None = NATURAL_STORIES_BOUNDS_MS[0],
    max_rt: float | None = NATURAL_STORIES_BOUNDS_MS[1],
    min_readers: int = 1,
) -> ReadingTimeCorpus:
    """Brown SPR in phasewatch's schema: ``story`` = ``text_id`` + 1, ``position`` = ``text_pos``
    + 1, ``word`` as displayed, ``rt`` the mean ``time`` (ms) over readers (``subject``).

    A display unit holding a space (``"N. H."``) becomes one word without it (``"N.H."``): the
    text is rebuilt with single spaces between words, so a word may not contain one; how many were
    joined is in ``extras["words_with_spaces"]``.

    Args:
        data_dir: the folder holding ``brown_spr.csv`` (or ``brown/`` with it); default
            ``$PHASEWATCH_DATA/brown/``.
        measure: ``"self-paced reading"``, the only one.
        min_rt, max_rt, min_readers: the rule of
            :func:`~phasewatch.corpora.readers.aggregate_readers`; by default Natural Stories'
            100–3000 ms, as for the other self-paced reading corpus.

    Returns:
        A corpus with ``rt`` (mean ms), ``n_readers``, the per-reader rows on ``readers``,
        ``measure="self-paced reading"`` (spillover 4) and ``language="en"``.

    Raises:
        CorpusDataError: the file is missing (the message says where to get it and put it),
            lacks a column, a value is not a number, readers disagree on a word, or a text's
            positions are not 0..n-1.
        ValueError: ``measure`` is not self-paced reading, or bad rule arguments.
    """
    if canonical_measure(measure) != SELF_PACED:
        raise ValueError(
            f"`measure` must be 'self-paced reading' (Brown SPR has one measure, column "
            f"'time'), got {measure!r}"
        )
    path = upstream_file(NAME, FILE, data_dir=data_dir, source=SOURCE)
    raw = read_table(
        path,
        ["subject", "text_id", "text_pos", "word", "time"],
        sep=",",
        encoding="utf-8",
        quoting=True,
    )
    spaced = raw["word"].str.strip().str.contains(r"\s", regex=True)
    readers = pd.DataFrame(
        {
            "story": integer_column(raw, "text_id", path) + 1,
            "position": integer_column(raw, "text_pos", path) + 1,
            "reader": raw["subject"].str.strip(),
            "rt": reading_column(raw, "time", path),
            "word": raw["word"].map(lambda w: "".join(w.split())),
        },
        index=raw.index,
    )
    joined = readers.loc[spaced.to_numpy(), ["story", "position"]].drop_duplicates()
    return corpus_from_readers(
        readers,
        None,
        path=path,
        name=NAME,
        measure=SELF_PACED,
        language="en",
        license=LICENSE,
        citation=CITATION,
        min_rt=min_rt,
        max_rt=max_rt,
        min_readers=min_readers,
        extras={"column": "time", "words_with_spaces": len(joined), "upstream": SOURCE},
    )

"""Reading-time corpora in one schema, and the verified data files behind them.

``load("naturalstories")`` returns a :class:`ReadingTimeCorpus`; ``load_tsv`` reads your own corpus.
Data files are found in ``data_dir=``, else ``$PHASEWATCH_DATA/<corpus>/``, else a per-user cache
filled by verified download (see :mod:`phasewatch.corpora.resolve`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from phasewatch.corpora import brown, geco, naturalstories, provo, ucl
from phasewatch.corpora.download import cache_root, fetch
from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.readers import NATURAL_STORIES_BOUNDS_MS, aggregate_readers
from phasewatch.corpora.registry import (
    READING_TIMES,
    TRAINING_TEXT,
    CorpusEntry,
    corpus_entry,
    known_corpora,
    reading_time_corpora,
    register_corpus,
    registered_corpora,
)
from phasewatch.corpora.resolve import data_file, data_files
from phasewatch.corpora.schema import (
    EYE_TRACKING_MEASURES,
    FIRST_FIXATION_DURATION,
    FIRST_PASS_GAZE_DURATION,
    TOTAL_READING_TIME,
    ReadingTimeCorpus,
)
from phasewatch.corpora.tsv import load_tsv

register_corpus(
    naturalstories.NAME,
    naturalstories.load,
    measure="self-paced reading",
    language="en",
    manifest=True,
    description="Natural Stories, self-paced reading, 10 stories, 10,256 words (CC BY-NC-SA 4.0)",
)
register_corpus(
    "english-novels-pd",
    role=TRAINING_TEXT,
    measure=None,
    language="en",
    manifest=True,
    description="25 public-domain English novels, the demo's training text",
)
# Public corpora in their upstream layout: not bundled, no manifest, never downloaded; their
# files go in $PHASEWATCH_DATA/<name>/ (docs/corpora-recipes.md).
register_corpus(
    provo.NAME,
    provo.load,
    measure="eye tracking: first-pass gaze duration",
    language="en",
    description="Provo Corpus, eye tracking, 55 passages (CC BY 4.0); files from OSF",
)
register_corpus(
    ucl.NAME,
    ucl.load,
    measure="eye tracking: first-pass gaze duration",
    language="en",
    description="UCL corpus (Frank et al. 2013), eye tracking, 205 sentences",
)
register_corpus(
    ucl.SPR_NAME,
    ucl.load_spr,
    measure="self-paced reading",
    language="en",
    description="UCL corpus (Frank et al. 2013), self-paced reading, 361 sentences",
)
register_corpus(
    brown.NAME,
    brown.load,
    measure="self-paced reading",
    language="en",
    description="Brown self-paced reading corpus (Smith & Levy 2013)",
)
register_corpus(
    geco.NAME,
    geco.load,
    measure="eye tracking: first-pass gaze duration",
    language="en",
    description="GECO, eye tracking, a novel read in English (needs openpyxl)",
)
register_corpus(
    geco.DUTCH_NAME,
    geco.load_dutch,
    measure="eye tracking: first-pass gaze duration",
    language="nl",
    description="GECO, eye tracking, the novel read in Dutch by bilinguals (needs openpyxl)",
)
register_corpus(
    geco.L2_NAME,
    geco.load_l2,
    measure="eye tracking: first-pass gaze duration",
    language="en",
    description="GECO, eye tracking, the novel read in English by the Dutch bilinguals (L2)",
)


def load(
    name: str = "naturalstories", *, data_dir: str | Path | None = None, **options: Any
) -> ReadingTimeCorpus:
    """Load a registered reading-time corpus by name (``"naturalstories"``; see
    :func:`reading_time_corpora`).

    ``data_dir`` is a folder holding the corpus in its upstream layout, or the folder above it that
    holds ``<name>/``; by default ``$PHASEWATCH_DATA/<name>/``, else the download cache.
    ``options`` go to the corpus's loader (e.g. an eye-tracking corpus's ``measure=``).

    Raises:
        ValueError: ``name`` is not a registered reading-time corpus.
        CorpusDataError: a data file is missing, corrupt or unreadable (the message says how
            to fix it).
    """
    entry = corpus_entry(name, role=READING_TIMES, argument="name")
    corpus = entry.loader(data_dir=data_dir, **options)
    if corpus.name != name:  # keys are named after the corpus: the registered name wins
        corpus = dataclasses.replace(corpus, name=name)
    return corpus


__all__ = [
    "EYE_TRACKING_MEASURES",
    "FIRST_FIXATION_DURATION",
    "FIRST_PASS_GAZE_DURATION",
    "NATURAL_STORIES_BOUNDS_MS",
    "READING_TIMES",
    "TOTAL_READING_TIME",
    "TRAINING_TEXT",
    "CorpusDataError",
    "CorpusEntry",
    "ReadingTimeCorpus",
    "aggregate_readers",
    "cache_root",
    "corpus_entry",
    "data_file",
    "data_files",
    "fetch",
    "known_corpora",
    "load",
    "load_tsv",
    "reading_time_corpora",
    "register_corpus",
    "registered_corpora",
]

"""Reading-time corpora in one schema, and the verified data files behind them.

``load("naturalstories")`` returns a :class:`ReadingTimeCorpus`; ``load_tsv`` reads your own corpus.
Data files are found in ``data_dir=``, else ``$PHASEWATCH_DATA/<corpus>/``, else a per-user cache
filled by verified download (see :mod:`phasewatch.corpora.resolve`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from phasewatch.corpora import naturalstories
from phasewatch.corpora.download import cache_root, fetch
from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.manifest import known_corpora
from phasewatch.corpora.resolve import data_file, data_files
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.tsv import load_tsv

_LOADERS: dict[str, Callable[..., ReadingTimeCorpus]] = {naturalstories.NAME: naturalstories.load}


def reading_time_corpora() -> tuple[str, ...]:
    """Names accepted by :func:`load`."""
    return tuple(_LOADERS)


def load(name: str = "naturalstories", *, data_dir: str | Path | None = None) -> ReadingTimeCorpus:
    """Load a bundled reading-time corpus by name (``"naturalstories"``).

    ``data_dir`` is a folder holding the corpus in its upstream layout, or the folder above it that
    holds ``<name>/``; by default ``$PHASEWATCH_DATA/<name>/``, else the download cache.

    Raises:
        ValueError: ``name`` is not a known reading-time corpus.
        CorpusDataError: a data file is missing, corrupt or unreadable (the message says how
            to fix it).
    """
    if name not in _LOADERS:
        raise ValueError(
            f"`name` must be one of the reading-time corpora {list(_LOADERS)}, got {name!r}; "
            "for your own corpus use phasewatch.corpora.load_tsv(path, story=..., position=..., "
            "word=..., rt=...)"
        )
    return _LOADERS[name](data_dir=data_dir)


__all__ = [
    "CorpusDataError",
    "ReadingTimeCorpus",
    "cache_root",
    "data_file",
    "data_files",
    "fetch",
    "known_corpora",
    "load",
    "load_tsv",
    "reading_time_corpora",
]

"""Where a corpus file comes from: an explicit folder, ``$PHASEWATCH_DATA``, or the cache.

Resolution order for ``data_file(corpus, relpath)``:

1. ``data_dir=`` given: ``data_dir/<corpus>/<relpath>`` if ``data_dir/<corpus>/`` exists, else
   ``data_dir/<relpath>`` (``data_dir`` is the corpus folder itself, in upstream layout).
   Never downloads.
2. ``$PHASEWATCH_DATA/<corpus>/<relpath>`` if ``$PHASEWATCH_DATA/<corpus>/`` exists.
   Never downloads.
3. the per-user cache (:func:`~phasewatch.corpora.download.cache_root`), filled by verified
   download. If ``$PHASEWATCH_DATA`` is set but lacks ``<corpus>/``, a failed download says so.

Every file is checked against the manifest (size, sha256) before it is returned.
"""

from __future__ import annotations

import os
from pathlib import Path

from phasewatch.corpora.download import cache_root, download_file
from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.manifest import manifest_entry, read_manifest
from phasewatch.corpora.verify import check_file

DATA_ENV = "PHASEWATCH_DATA"


def corpus_dir(data_dir: str | Path, corpus: str) -> Path:
    """The corpus folder of ``data_dir``: ``data_dir/<corpus>`` if it exists, else ``data_dir``."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise CorpusDataError(
            folder,
            "`data_dir` is not a folder",
            expected=f"a folder holding {corpus}/ or the {corpus} files in upstream layout",
            found="no such folder",
            fix=f"pass data_dir= the folder that holds {corpus}/ (as in PHASEWATCH_DATA)",
        )
    nested = folder / corpus
    return nested if nested.is_dir() else folder


def data_file(
    corpus: str,
    relpath: str,
    *,
    data_dir: str | Path | None = None,
    base_url: str | None = None,
    deadline_s: float | None = None,
) -> Path:
    """Path of the verified file ``relpath`` (upstream layout, e.g.
    ``"naturalstories_RTS/all_stories.tok"``) of ``corpus``, found or downloaded as in the module
    docstring. ``base_url`` (default ``$PHASEWATCH_BASE_URL``) replaces the upstream URL when
    downloading; ``deadline_s`` bounds the download's whole time (default 600 s).

    Raises:
        ValueError: unknown corpus, ``relpath`` not in its manifest, or a bad ``deadline_s``.
        CorpusDataError: the file is missing or does not match the manifest, or its download
            failed (the message says when ``$PHASEWATCH_DATA`` is set but lacks the corpus).
    """
    entry = manifest_entry(corpus, relpath)
    if data_dir is not None:
        root = corpus_dir(data_dir, corpus)
        layout = (
            f"{data_dir} has no {corpus}/ folder, so it is read as the {corpus} folder itself; "
            if root == Path(data_dir).expanduser()
            else ""
        )
        fix = (
            f"{layout}copy the upstream file (URL above) to {root / relpath}, pass data_dir= "
            f"a folder holding an intact {corpus}/, or leave data_dir=None to use "
            f"${DATA_ENV} or the download cache (`phasewatch data fetch {corpus}`)"
        )
        return check_file(root / relpath, entry, fix=fix)
    env_dir = os.environ.get(DATA_ENV, "")
    if env_dir and (Path(env_dir).expanduser() / corpus).is_dir():
        root = Path(env_dir).expanduser() / corpus
        fix = (
            f"copy the upstream file (URL above) to {root / relpath}, set "
            f"{DATA_ENV}=/path/to/corpora to a folder whose {corpus}/ is intact, or unset "
            f"{DATA_ENV} to download into the cache (`phasewatch data fetch {corpus}`)"
        )
        return check_file(root / relpath, entry, fix=fix)
    target = cache_root() / corpus / relpath
    try:
        return download_file(entry, target, base_url=base_url, deadline_s=deadline_s)
    except CorpusDataError as exc:
        if not env_dir:
            raise
        folder = Path(env_dir).expanduser()
        lacks = f"holds no {corpus}/ folder" if folder.is_dir() else "is not a folder"
        raise CorpusDataError(
            exc.path,
            f"{exc.problem}\n  ({DATA_ENV}={env_dir} is set but {lacks}, so the download cache "
            "was used)",
            expected=exc.expected,
            found=exc.found,
            fix=f"to work offline put the {corpus} files in upstream layout under "
            f"{folder / corpus} (this file: {folder / corpus / relpath}); or {exc.fix}",
        ) from exc


def data_files(
    corpus: str,
    *,
    data_dir: str | Path | None = None,
    base_url: str | None = None,
    deadline_s: float | None = None,
) -> dict[str, Path]:
    """Relative path → verified local path for every file in the manifest of ``corpus``;
    ``deadline_s`` bounds each file's download (default 600 s)."""
    return {
        relpath: data_file(
            corpus, relpath, data_dir=data_dir, base_url=base_url, deadline_s=deadline_s
        )
        for relpath in read_manifest(corpus)
    }

"""Verified download into the per-user cache with pooch.

pooch streams each file into a temporary file next to its target, checks the sha256 and only then
moves it into place: a failed or corrupt download leaves nothing under the target name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pooch
import requests

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.manifest import BASE_URL_ENV, ManifestEntry, read_manifest
from phasewatch.corpora.verify import expected_of, mismatch

CACHE_ENV = "PHASEWATCH_CACHE"
DOWNLOAD_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder that holds ``<corpus>/<path>``: ``cache_dir``, else ``$PHASEWATCH_CACHE``,
    else ``pooch.os_cache("phasewatch")`` (e.g. ``~/.cache/phasewatch`` on Linux)."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or pooch.os_cache("phasewatch")
    return Path(chosen).expanduser()


def download_file(entry: ManifestEntry, target: Path, *, base_url: str | None = None) -> Path:
    """Return ``target`` holding the verified file of ``entry``, downloading it if needed.

    An intact ``target`` is returned without a request. A ``target`` that does not match the
    manifest (an old version, a damaged file) is deleted and downloaded again.
    """
    if target.is_file():
        if mismatch(target, entry) is None:
            return target
        log.warning("%s does not match the %s manifest; downloading it again", target, entry.corpus)
        target.unlink()
    url = entry.url_from(base_url)
    fix = (
        f"check the network and the URL (argument base_url= or ${BASE_URL_ENV}), then re-run "
        f"or run `phasewatch data fetch {entry.corpus}`; to work offline set "
        f"PHASEWATCH_DATA=/path/to/corpora, a folder holding {entry.corpus}/{entry.path}"
    )
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{entry.sha256}",
            fname=target.name,
            path=target.parent,
            downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S),
            progressbar=False,
        )
    except ValueError as exc:  # pooch: the downloaded hash differs; the temporary file is gone
        raise CorpusDataError(
            target,
            f"the file downloaded from {url} does not match the {entry.corpus} manifest; "
            "nothing was written to the cache",
            expected=expected_of(entry),
            found=str(exc),
            fix=fix,
        ) from exc
    except (requests.RequestException, OSError) as exc:
        raise CorpusDataError(
            target,
            f"could not download {url}",
            expected=expected_of(entry),
            found=f"{type(exc).__name__}: {exc}",
            fix=fix,
        ) from exc
    return target


def fetch(corpus: str, *, cache_dir: str | Path | None = None, base_url: str | None = None) -> Path:
    """Download every file in the manifest of ``corpus`` into the cache, verified; return the
    corpus folder (``<cache>/<corpus>``). Files already cached and intact are not downloaded.

    Raises:
        ValueError: ``corpus`` has no manifest.
        CorpusDataError: a download failed or did not match the manifest (nothing is left under
            that file's name).

    This is what ``phasewatch data fetch <corpus>`` runs.
    """
    root = cache_root(cache_dir) / corpus
    for relpath, entry in read_manifest(corpus).items():
        download_file(entry, root / relpath, base_url=base_url)
    return root

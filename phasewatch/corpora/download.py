"""Verified download into the per-user cache with pooch.

pooch streams each file into a temporary file next to its target, checks the sha256 and only then
moves it into place: a failed or corrupt download leaves nothing under the target name.

Two limits bound a download: each read waits at most ``DOWNLOAD_TIMEOUT_S`` (60 s) for data, and
the whole download (a file, or all files of :func:`fetch`) is abandoned once it has taken
``deadline_s`` (default ``DOWNLOAD_DEADLINE_S``, 600 s), so a server that trickles a byte at a
time cannot hold it forever. The deadline is checked after every read, and one read waits at most
``min(DOWNLOAD_TIMEOUT_S, deadline_s)``: a download ends at most that long after its deadline.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import pooch
import requests
import urllib3

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.manifest import BASE_URL_ENV, ManifestEntry, read_manifest
from phasewatch.corpora.verify import expected_of, mismatch

CACHE_ENV = "PHASEWATCH_CACHE"
#: Seconds one read (connection, or a block of data) may wait.
DOWNLOAD_TIMEOUT_S = 60.0
#: Seconds a whole download may take, unless ``deadline_s=`` says otherwise.
DOWNLOAD_DEADLINE_S = 600.0
_READ_BYTES = 1 << 16

#: The clock of deadlines, in seconds; a test hook (tests replace it by a counter).
_clock = time.monotonic

log = logging.getLogger(__name__)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder that holds ``<corpus>/<path>``: ``cache_dir``, else ``$PHASEWATCH_CACHE``,
    else ``pooch.os_cache("phasewatch")`` (e.g. ``~/.cache/phasewatch`` on Linux)."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or pooch.os_cache("phasewatch")
    return Path(chosen).expanduser()


class DeadlinePassed(requests.exceptions.Timeout):
    """A download ran past its overall deadline (``received`` bytes by then)."""

    def __init__(self, received: int) -> None:
        self.received = received
        super().__init__(f"{received} bytes received when the deadline passed")


def deadline_from(deadline_s: float | None) -> float:
    """The :data:`_clock` time ``deadline_s`` seconds (default ``DOWNLOAD_DEADLINE_S``) from now.

    Raises:
        ValueError: ``deadline_s`` is not a finite number of seconds > 0.
    """
    seconds = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ValueError(
            f"`deadline_s` must be a number of seconds > 0 (how long a whole download may take; "
            f"default {DOWNLOAD_DEADLINE_S:g} s), got {deadline_s!r}"
        )
    return _clock() + float(seconds)


class _DeadlineDownloader:
    """A pooch downloader: HTTP GET read in blocks, each read waiting at most
    ``DOWNLOAD_TIMEOUT_S``, abandoned with :class:`DeadlinePassed` once ``_clock()`` passes
    ``deadline``."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def _wait_s(self, received: int) -> float:
        left = self.deadline - _clock()
        if left <= 0:
            raise DeadlinePassed(received)
        return min(DOWNLOAD_TIMEOUT_S, left)

    def __call__(self, url: str, output_file: str, pooch_: object, check_only: bool = False):
        if check_only:
            response = requests.head(url, timeout=self._wait_s(0), allow_redirects=True)
            return response.status_code == 200
        received = 0
        # identity: no compressed body, so each read hands over what the network delivered
        with (
            requests.get(
                url,
                stream=True,
                timeout=self._wait_s(received),
                headers={"Accept-Encoding": "identity"},
            ) as response,
            open(output_file, "wb") as out,
        ):
            response.raise_for_status()
            while True:
                try:
                    block = response.raw.read1(_READ_BYTES)  # one read: returns what arrived
                except urllib3.exceptions.HTTPError as exc:  # a read timeout, a cut connection
                    raise requests.exceptions.ConnectionError(exc) from exc
                if not block:
                    return None
                out.write(block)
                received += len(block)
                self._wait_s(received)


def download_file(
    entry: ManifestEntry,
    target: Path,
    *,
    base_url: str | None = None,
    deadline_s: float | None = None,
    deadline: float | None = None,
) -> Path:
    """Return ``target`` holding the verified file of ``entry``, downloading it if needed.

    An intact ``target`` is returned without a request. A ``target`` that does not match the
    manifest (an old version, a damaged file) is deleted and downloaded again. The download is
    abandoned after ``deadline_s`` seconds (default ``DOWNLOAD_DEADLINE_S``, 600 s), or at
    ``deadline`` (a :data:`_clock` time, as :func:`fetch` passes one deadline to all its files).

    Raises:
        ValueError: ``deadline_s`` is not a number of seconds > 0.
        CorpusDataError: the download failed, ran past its deadline, or does not match the
            manifest; nothing is left under ``target``.
    """
    if deadline is None:
        deadline = deadline_from(deadline_s)
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
            downloader=_DeadlineDownloader(deadline),
            progressbar=False,
        )
    except DeadlinePassed as exc:
        seconds = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
        raise CorpusDataError(
            target,
            f"the download from {url} did not finish within {seconds:g} s; "
            "nothing was written to the cache",
            expected=expected_of(entry),
            found=f"{exc.received} of {entry.size} bytes received by the deadline",
            fix=f"on a slow connection pass a longer deadline_s= (seconds for the whole "
            f"download); else {fix}",
        ) from exc
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


def fetch(
    corpus: str,
    *,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    deadline_s: float | None = None,
) -> Path:
    """Download every file in the manifest of ``corpus`` into the cache, verified; return the
    corpus folder (``<cache>/<corpus>``). Files already cached and intact are not downloaded.
    ``deadline_s``: seconds all the downloads together may take (default ``DOWNLOAD_DEADLINE_S``,
    600 s).

    Raises:
        ValueError: ``corpus`` has no manifest, or ``deadline_s`` is not a number of seconds > 0.
        CorpusDataError: a download failed, ran past the deadline or did not match the manifest
            (nothing is left under that file's name).

    This is what ``phasewatch data fetch <corpus>`` runs.
    """
    deadline = deadline_from(deadline_s)
    root = cache_root(cache_dir) / corpus
    for relpath, entry in read_manifest(corpus).items():
        download_file(
            entry, root / relpath, base_url=base_url, deadline_s=deadline_s, deadline=deadline
        )
    return root

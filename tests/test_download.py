"""Verified download, for real, from a local HTTP server on 127.0.0.1 serving a mirror copy."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from phasewatch.corpora import CorpusDataError, fetch, load, verify
from phasewatch.corpora import download as download_module
from phasewatch.corpora import naturalstories as ns
from phasewatch.corpora.manifest import read_manifest

SOURCE = Path(os.environ.get("PHASEWATCH_DATA", "/nonexistent")) / "naturalstories"
pytestmark = pytest.mark.skipif(
    not (SOURCE / ns.TOKENS_PATH).is_file(),
    reason="set PHASEWATCH_DATA to a folder holding naturalstories/ (e.g. /work/shared/corpora)",
)


class _CountingHandler(SimpleHTTPRequestHandler):
    """Serves files from ``directory`` and records every requested path."""

    def __init__(self, *args, requests: list[str], **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self._requests.append(self.path)
        super().do_GET()

    def do_HEAD(self):
        self._requests.append(self.path)
        super().do_HEAD()

    def log_message(self, format, *args):
        pass


@dataclass
class Mirror:
    folder: Path  # the served copy of naturalstories/
    requests: list[str]  # paths requested so far
    base_url: str  # http://127.0.0.1:<port>/naturalstories


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A temporary copy of the corpus served at ``http://127.0.0.1:<port>/naturalstories``, with
    ``PHASEWATCH_BASE_URL`` pointing at it and the cache in ``tmp_path / "cache"``."""
    root = tmp_path / "mirror"
    for relpath in read_manifest("naturalstories"):
        (root / "naturalstories" / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SOURCE / relpath, root / "naturalstories" / relpath)
    requests: list[str] = []
    handler = functools.partial(_CountingHandler, requests=requests, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("PHASEWATCH_DATA", raising=False)
    monkeypatch.setenv("PHASEWATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PHASEWATCH_BASE_URL", f"{base}/{{corpus}}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(download_module, "DOWNLOAD_TIMEOUT_S", 10.0)
    verify._sha256_of_version.cache_clear()
    try:
        yield Mirror(root / "naturalstories", requests, f"{base}/naturalstories")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _cached(tmp_path: Path, relpath: str) -> Path:
    return tmp_path / "cache" / "naturalstories" / relpath


def test_download_fills_the_cache_and_loads_the_corpus(mirror, tmp_path):
    requests = mirror.requests
    corpus = load("naturalstories")
    assert len(corpus) == 10_256
    assert sorted(requests) == [
        f"/naturalstories/{ns.TOKENS_PATH}",
        f"/naturalstories/{ns.WORDINFO_PATH}",
        f"/naturalstories/{ns.PARSES_PATH}",
    ]
    assert corpus.has_dependencies
    for relpath in (ns.TOKENS_PATH, ns.WORDINFO_PATH, ns.PARSES_PATH):
        cached = _cached(tmp_path, relpath)
        assert cached.read_bytes() == (SOURCE / relpath).read_bytes()


def test_second_load_makes_no_request(mirror):
    requests = mirror.requests
    first = load("naturalstories")
    served = len(requests)
    verify._sha256_of_version.cache_clear()  # as in a new process: the cache is re-verified
    second = load("naturalstories")
    assert served == 3  # words, reading times, parses
    assert len(requests) == served
    assert second.frame.equals(first.frame)


def test_corrupt_download_raises_and_leaves_no_file(mirror, tmp_path):
    folder, requests = mirror.folder, mirror.requests
    served = folder / ns.TOKENS_PATH
    data = bytearray(served.read_bytes())
    data[5000] ^= 0x01  # same size, other content
    served.write_bytes(bytes(data))
    with pytest.raises(
        CorpusDataError, match=r"all_stories\.tok: the file downloaded from"
    ) as caught:
        load("naturalstories")
    message = str(caught.value)
    assert "does not match the naturalstories manifest; nothing was written" in message
    assert "0e4e9bd4708aaa01d8bea342696bb83cedff679c09184545483f6f3f4ba8aca3" in message
    assert "PHASEWATCH_DATA" in message
    assert requests == [f"/naturalstories/{ns.TOKENS_PATH}"]
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


def test_damaged_cache_file_is_downloaded_again(mirror, tmp_path):
    requests = mirror.requests
    load("naturalstories")
    cached = _cached(tmp_path, ns.WORDINFO_PATH)
    cached.write_bytes(cached.read_bytes()[:-10])
    corpus = load("naturalstories")
    assert len(corpus) == 10_256
    assert requests.count(f"/naturalstories/{ns.WORDINFO_PATH}") == 2
    assert cached.read_bytes() == (SOURCE / ns.WORDINFO_PATH).read_bytes()


def test_missing_file_on_the_server_is_a_clear_error(mirror, tmp_path):
    folder = mirror.folder
    (folder / ns.TOKENS_PATH).unlink()
    with pytest.raises(CorpusDataError, match=r"could not download http://127\.0\.0\.1:\d+/"):
        load("naturalstories")
    assert not _cached(tmp_path, ns.TOKENS_PATH).exists()


def test_wrong_size_file_in_a_local_data_dir_errors_without_downloading(mirror, tmp_path):
    requests = mirror.requests
    local = tmp_path / "local" / "naturalstories" / "naturalstories_RTS"
    local.mkdir(parents=True)
    shutil.copy(SOURCE / ns.TOKENS_PATH, local)
    (local / "processed_wordinfo.tsv").write_bytes((SOURCE / ns.WORDINFO_PATH).read_bytes()[:-1])
    with pytest.raises(
        CorpusDataError, match=r"processed_wordinfo\.tsv: file does not match"
    ) as caught:
        load("naturalstories", data_dir=tmp_path / "local")
    message = str(caught.value)
    assert "expected: 901515 bytes with sha256 047d2a0b" in message
    assert "found:    901514 bytes" in message
    assert "copy the upstream file" in message
    assert requests == []


def test_fetch_downloads_every_manifest_file_verified(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("PHASEWATCH_BASE_URL")  # the mirror is named by the argument alone
    corpus_dir = fetch("naturalstories", cache_dir=tmp_path / "fetched", base_url=mirror.base_url)
    assert corpus_dir == tmp_path / "fetched" / "naturalstories"
    manifest = read_manifest("naturalstories")
    assert len(mirror.requests) == len(manifest)
    for relpath in manifest:
        assert (corpus_dir / relpath).read_bytes() == (mirror.folder / relpath).read_bytes()
    fetch("naturalstories", cache_dir=tmp_path / "fetched", base_url=mirror.base_url)
    assert len(mirror.requests) == len(manifest)


# --- faults: a trickling server, an empty PHASEWATCH_DATA (issue 9) -------------------------


class _TrickleHandler(SimpleHTTPRequestHandler):
    """Announces the file's full size, then sends one byte every 50 ms, 200 bytes at most: each
    read returns within the per-read timeout, so only an overall deadline ends the download."""

    def __init__(self, *args, size: int, sent: list[int], **kwargs):
        self._size, self._sent = size, sent
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self._size))
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                self._sent[0] += 1
                time.sleep(0.05)
        except OSError:  # the client hung up: what the deadline is for
            pass

    def log_message(self, format, *args):
        pass


@pytest.fixture
def trickle_server():
    """``(base_url, sent)``: a server on 127.0.0.1 trickling any file; ``sent[0]`` bytes sent."""
    entry = read_manifest("naturalstories")[ns.TOKENS_PATH]
    sent = [0]
    handler = functools.partial(_TrickleHandler, size=entry.size, sent=sent)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/naturalstories", sent
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_trickling_server_is_abandoned_at_the_overall_deadline(
    trickle_server, tmp_path, monkeypatch
):
    """Deterministic: the download's clock is a counter that advances 1 s per look, so the
    5 s deadline passes after a handful of reads, whatever the machine's speed."""
    base_url, sent = trickle_server
    ticks = itertools.count()
    monkeypatch.setattr(download_module, "_clock", lambda: float(next(ticks)))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    entry = read_manifest("naturalstories")[ns.TOKENS_PATH]
    target = tmp_path / "cache" / "naturalstories" / ns.TOKENS_PATH
    with pytest.raises(CorpusDataError, match=r"did not finish within 5 s") as caught:
        download_module.download_file(entry, target, base_url=base_url, deadline_s=5)
    message = str(caught.value)
    assert f"of {entry.size} bytes" in message and "deadline_s=" in message
    assert sent[0] < 50  # abandoned after a few reads, long before the server's 200 bytes
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("deadline", [0, -1.0, "60", float("nan"), True])
def test_a_deadline_that_is_not_a_positive_number_of_seconds_is_refused(deadline, tmp_path):
    with pytest.raises(ValueError, match=r"`deadline_s` must be a number of seconds > 0"):
        fetch("naturalstories", cache_dir=tmp_path, deadline_s=deadline)


def test_phasewatch_data_without_the_corpus_is_named_when_the_download_fails(
    mirror, tmp_path, monkeypatch
):
    empty = tmp_path / "my-corpora"
    empty.mkdir()
    monkeypatch.setenv("PHASEWATCH_DATA", str(empty))
    (mirror.folder / ns.TOKENS_PATH).unlink()
    with pytest.raises(CorpusDataError, match=r"could not download") as caught:
        load("naturalstories")
    message = str(caught.value)
    assert f"PHASEWATCH_DATA={empty} is set but holds no naturalstories/ folder" in message
    assert f"{empty}/naturalstories/{ns.TOKENS_PATH}" in message  # where to put the file


def test_ppp_alone_needs_no_parse_file(mirror):
    corpus = load("naturalstories", dependencies=False)
    assert not corpus.has_dependencies and len(corpus) == 10_256
    assert f"/naturalstories/{ns.PARSES_PATH}" not in mirror.requests

"""Check a file against its manifest entry: size first, then sha256 (memoised per process)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.manifest import ManifestEntry

_CHUNK_BYTES = 1 << 20


@functools.lru_cache(maxsize=4096)
def _sha256_of_version(path: str, size: int, mtime_ns: int, inode: int) -> str:
    # The stat fields are part of the key: a file rewritten in place is hashed again.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file; repeated calls on an unchanged file do not read it again."""
    st = Path(path).stat()
    return _sha256_of_version(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def mismatch(path: Path, entry: ManifestEntry) -> str | None:
    """How ``path`` differs from ``entry`` ("12 bytes", "sha256 ab12…"), or None if intact."""
    size = path.stat().st_size
    if size != entry.size:
        return f"{size} bytes"
    digest = sha256_of(path)
    if digest != entry.sha256:
        return f"sha256 {digest} ({size} bytes, the right size but other content)"
    return None


def expected_of(entry: ManifestEntry) -> str:
    """The manifest's promise about a file, for error messages."""
    return f"{entry.size} bytes with sha256 {entry.sha256} (upstream {entry.url})"


def check_file(path: Path, entry: ManifestEntry, *, fix: str) -> Path:
    """Return ``path`` if it exists and matches ``entry``; else raise :class:`CorpusDataError`."""
    if not path.is_file():
        raise CorpusDataError(
            path, "file not found", expected=expected_of(entry), found="no such file", fix=fix
        )
    found = mismatch(path, entry)
    if found is not None:
        raise CorpusDataError(
            path,
            f"file does not match the {entry.corpus} manifest",
            expected=expected_of(entry),
            found=found,
            fix=fix,
        )
    return path

"""Manifests shipped with phasewatch: every upstream file a corpus loader reads, pinned by sha256.

A manifest is a TSV in ``phasewatch/corpora/manifests/<corpus>.tsv`` with the columns ``path``
(relative to the corpus folder, the upstream repository layout), ``size`` (bytes), ``sha256`` and
``url`` (the upstream file at a fixed commit). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from importlib import resources

MANIFEST_COLUMNS = ("path", "size", "sha256", "url")
BASE_URL_ENV = "PHASEWATCH_BASE_URL"


@dataclass(frozen=True)
class ManifestEntry:
    """One pinned file of a corpus: where it lives in the corpus folder and what it must hash to."""

    corpus: str
    path: str
    size: int
    sha256: str
    url: str

    def url_from(self, base_url: str | None = None) -> str:
        """The download URL: ``url``, or ``<base_url>/<path>`` for a mirror.

        ``base_url`` defaults to ``$PHASEWATCH_BASE_URL``; a ``{corpus}`` placeholder in it is
        replaced by the corpus name, so one mirror of the ``PHASEWATCH_DATA`` layout serves all
        corpora (``http://mirror/corpora/{corpus}``).
        """
        base = base_url if base_url is not None else os.environ.get(BASE_URL_ENV, "")
        if not base:
            return self.url
        return f"{base.replace('{corpus}', self.corpus).rstrip('/')}/{self.path}"


def manifest_corpora() -> tuple[str, ...]:
    """Names of the corpora that have a manifest file (the registry's ``manifest=True`` entries
    must be exactly these; a test checks it)."""
    names = (f.name for f in _manifest_folder().iterdir())
    return tuple(sorted(n.removesuffix(".tsv") for n in names if n.endswith(".tsv")))


def _manifest_folder():
    return resources.files("phasewatch.corpora") / "manifests"


@functools.cache
def read_manifest(corpus: str) -> dict[str, ManifestEntry]:
    """Relative path → :class:`ManifestEntry` for every file of ``corpus``, in manifest order."""
    known = manifest_corpora()
    if corpus not in known:
        from phasewatch.corpora.registry import registered_corpora

        if corpus in registered_corpora():
            raise ValueError(
                f"{corpus!r} has no manifest: phasewatch pins no copy of its files, so it can "
                f"neither download nor verify them; put them under $PHASEWATCH_DATA/{corpus}/ "
                "(or pass data_dir=) as docs/corpora-recipes.md says. Corpora with a manifest: "
                f"{list(known)}"
            )
        raise ValueError(f"`corpus` must be one of {list(known)}, got {corpus!r}")
    text = (_manifest_folder() / f"{corpus}.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or tuple(rows[0]) != MANIFEST_COLUMNS:
        raise ValueError(f"manifest of {corpus!r} must have the columns {MANIFEST_COLUMNS}")
    return {
        r["path"]: ManifestEntry(corpus, r["path"], int(r["size"]), r["sha256"].lower(), r["url"])
        for r in rows
    }


def manifest_entry(corpus: str, relpath: str) -> ManifestEntry:
    """The entry for ``relpath`` of ``corpus``; a ValueError lists the manifest's paths if
    ``relpath`` is not one of them."""
    entries = read_manifest(corpus)
    if relpath not in entries:
        raise ValueError(
            f"`relpath` must be a file of the {corpus!r} manifest, one of {list(entries)}, "
            f"got {relpath!r}"
        )
    return entries[relpath]

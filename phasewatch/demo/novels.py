"""The english-novels-pd training text for the demo: 25 public-domain novels, split into paragraphs.

The files (see the corpus README) start with a UTF-8 BOM, use CRLF line endings and come in
three layouts, detected per file by :func:`detect_layout`:

- ``"line"``: one paragraph per (long) line, blank lines optional (e.g. *The Secret Garden*);
- ``"blank"``: hard-wrapped at ~70 columns with blank lines between paragraphs (e.g. *She*);
- ``"wrapped"``: hard-wrapped with *no* separator between paragraphs (e.g. *Kim*); a paragraph
  ends where a line ends a sentence and the next line's first word would have fitted on it
  (the classic re-flow rule), or where the next line is indented.

Files come from :func:`phasewatch.corpora.data_files` (``$PHASEWATCH_DATA`` or a verified download).
The validation split is deterministic: the last ``val_fraction`` of each novel's paragraphs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phasewatch.corpora import data_files

CORPUS_NAME = "english-novels-pd"
LAYOUTS = ("line", "blank", "wrapped")

# A file whose 95th-percentile line is at most this many characters is hard-wrapped.
_MAX_WRAP_WIDTH = 100
# A hard-wrapped file with fewer blank lines than this share of its text lines has no separators.
_MIN_BLANK_SHARE = 0.05
# Characters that may end a paragraph in a hard-wrapped file without separators.
_PARAGRAPH_END = tuple(".!?\"':;)]")


@dataclass(frozen=True)
class Novel:
    """One novel: its file stem, detected layout and paragraphs (whitespace-normalised)."""

    name: str
    layout: str
    paragraphs: tuple[str, ...]

    def __repr__(self) -> str:
        words = sum(len(p.split()) for p in self.paragraphs)
        return (
            f"Novel({self.name!r}, layout={self.layout!r}, "
            f"paragraphs={len(self.paragraphs)}, words={words})"
        )


@dataclass(frozen=True)
class NovelSplits:
    """Training and validation documents: one per novel, paragraphs joined by ``"\\n"``."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    val_fraction: float

    def __repr__(self) -> str:
        n_train = sum(len(t) for t in self.train)
        n_val = sum(len(t) for t in self.validation)
        return (
            f"NovelSplits(documents={len(self.train)}, train_chars={n_train}, "
            f"validation_chars={n_val}, val_fraction={self.val_fraction})"
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of both splits: a cache key for tokenizers and token ids."""
        digest = hashlib.sha256()
        for part in (*self.train, "\x00", *self.validation):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]


def normalize_newlines(raw: bytes | str) -> str:
    """Decode (``utf-8-sig``), drop a leading BOM, turn CRLF/CR into LF and form feeds into LF."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")


def detect_layout(lines: Sequence[str]) -> str:
    """Layout of a file from its LF-split lines: ``"line"``, ``"blank"`` or ``"wrapped"``."""
    lengths = sorted(len(line.rstrip()) for line in lines if line.strip())
    if not lengths:
        return "line"
    n_blank = sum(1 for line in lines if not line.strip())
    if lengths[int(0.95 * (len(lengths) - 1))] > _MAX_WRAP_WIDTH:
        return "line"
    return "blank" if n_blank >= _MIN_BLANK_SHARE * len(lengths) else "wrapped"


def split_paragraphs(text: str, layout: str | None = None) -> tuple[list[str], str]:
    """Split a novel's text into paragraphs with single spaces; returns ``(paragraphs, layout)``.

    Args:
        text: the file's text (any newline convention; a leading BOM is dropped).
        layout: one of :data:`LAYOUTS`, or ``None`` to detect it with :func:`detect_layout`.
    """
    lines = normalize_newlines(text).split("\n")
    if layout is None:
        layout = detect_layout(lines)
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` can be one of {LAYOUTS} or None, got {layout!r}.")
    if layout == "line":
        groups = [[line] for line in lines if line.strip()]
    elif layout == "blank":
        groups = _split_on_blank_lines(lines)
    else:
        groups = _split_wrapped(lines)
    paragraphs = [" ".join(" ".join(group).split()) for group in groups]
    return [p for p in paragraphs if p], layout


def _split_on_blank_lines(lines: Sequence[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def _split_wrapped(lines: Sequence[str]) -> list[list[str]]:
    """Re-flow hard-wrapped lines that have no blank line between paragraphs."""
    text_lines = [line.rstrip() for line in lines if line.strip()]
    lengths = sorted(len(line) for line in text_lines)
    width = lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0
    groups: list[list[str]] = []
    for i, line in enumerate(text_lines):
        if not groups or _starts_paragraph(text_lines[i - 1], line, width):
            groups.append([])
        groups[-1].append(line)
    return groups


def _starts_paragraph(previous: str, line: str, width: int) -> bool:
    if line[:1].isspace():
        return True
    first_word = line.split()[0]
    next_word_would_fit = len(previous) + 1 + len(first_word) <= width
    return next_word_would_fit and previous.endswith(_PARAGRAPH_END)


def read_novel(path: str | os.PathLike[str]) -> Novel:
    """Read one novel file into a :class:`Novel` (layout detected per file)."""
    path = Path(path)
    paragraphs, layout = split_paragraphs(normalize_newlines(path.read_bytes()))
    return Novel(name=path.stem, layout=layout, paragraphs=tuple(paragraphs))


def load_novels(data_dir: str | os.PathLike[str] | None = None) -> list[Novel]:
    """All 25 novels of english-novels-pd, sorted by file name, each file verified by sha256.

    Files are found by :func:`phasewatch.corpora.data_files`: ``data_dir`` (the folder holding
    ``english-novels-pd/``, or that folder itself), else ``$PHASEWATCH_DATA/english-novels-pd/``,
    else the per-user cache filled by verified download.

    Raises:
        CorpusDataError: a file is missing or corrupt; the message says how to fix it (e.g.
            ``export PHASEWATCH_DATA=/path/to/corpora``).
    """
    files = data_files(CORPUS_NAME, data_dir=data_dir)
    return [read_novel(files[rel]) for rel in sorted(files) if rel.endswith(".txt")]


def split_train_validation(novels: Sequence[Novel], val_fraction: float = 0.05) -> NovelSplits:
    """Hold out the last ``val_fraction`` of each novel's paragraphs (at least one) for validation.

    Each novel gives one training and one validation document (paragraphs joined by ``"\\n"``),
    so no text crosses the split except at one paragraph boundary per novel.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in (0, 1), got {val_fraction!r}.")
    train, validation = [], []
    for novel in novels:
        n = len(novel.paragraphs)
        if n < 2:
            raise ValueError(
                f"Novel {novel.name!r} has {n} paragraph(s); need at least 2 to hold one out."
            )
        n_val = min(n - 1, max(1, round(val_fraction * n)))
        train.append("\n".join(novel.paragraphs[: n - n_val]))
        validation.append("\n".join(novel.paragraphs[n - n_val :]))
    return NovelSplits(train=tuple(train), validation=tuple(validation), val_fraction=val_fraction)


_WORD = re.compile(r"\S+")


def count_words(texts: Sequence[str]) -> int:
    """Whitespace-separated words in ``texts`` (the corpus README's word count)."""
    return sum(len(_WORD.findall(t)) for t in texts)

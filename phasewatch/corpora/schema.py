"""One schema for a reading-time corpus: words in reading order with a response in ms."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

REQUIRED_COLUMNS = ("story", "position", "word", "rt")


@dataclass(frozen=True)
class ReadingTimeCorpus:
    """A reading-time corpus in phasewatch's schema.

    ``frame`` has one row per displayed word, sorted by ``story`` then ``position``:

    - ``story``: story id (int or str), ``position``: 1-based word index within the story,
    - ``word``: the word as displayed, punctuation attached (``"England,"``),
    - ``rt``: the response in ms (e.g. mean self-paced reading time over readers),
    - optional ``n_readers`` and any further per-word columns.

    ``texts`` maps each story to its text: the words joined by single spaces.
    """

    name: str
    frame: pd.DataFrame
    license: str = ""
    citation: str = ""
    measure: str = "self-paced reading"
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(
                f"corpus {self.name!r} lacks the columns {missing}; a reading-time corpus needs "
                f"{list(REQUIRED_COLUMNS)} (story, 1-based position, displayed word, rt in ms)"
            )

    @property
    def stories(self) -> list:
        """Story ids in frame order."""
        return list(dict.fromkeys(self.frame["story"].tolist()))

    @property
    def texts(self) -> dict:
        """Story id → text (words joined by single spaces, in position order)."""
        return {s: " ".join(g["word"].tolist()) for s, g in self.frame.groupby("story", sort=False)}

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return (
            f"ReadingTimeCorpus({self.name!r}, {len(self.frame)} words, "
            f"{len(self.stories)} stories, {self.measure})"
        )

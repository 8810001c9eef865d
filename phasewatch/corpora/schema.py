"""One schema for a reading-time corpus: words in reading order with a response in ms."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

REQUIRED_COLUMNS = ("story", "position", "word", "rt")
#: Columns of ``ReadingTimeCorpus.dependencies``: one arc per word, ``head_position`` 0 = root.
DEPENDENCY_COLUMNS = ("story", "position", "head_position", "relation")
#: Columns of ``ReadingTimeCorpus.readers``: one row per reader x word, ``rt`` in ms (0 = skipped).
READER_COLUMNS = ("story", "position", "reader", "rt")

#: Reading measure kind → default spillover (previous words whose predictors join the current
#: word's in the ΔLL regression), as in Aoyama & Wilcox (2025): self-paced reading shows effects
#: of the 4 previous words, eye tracking of 2.
SPILLOVER_BY_MEASURE = {"self-paced reading": 4, "eye tracking": 2}

#: Eye-tracking measures by name (``measure=``); all of kind "eye tracking" (spillover 2). Durations
#: in ms; a word the reader skipped has none (0 or missing). Provo / MECO columns: first-pass gaze
#: duration = ``IA_FIRST_RUN_DWELL_TIME`` / ``firstrun.dur`` (the measure Aoyama & Wilcox, 2025,
#: use), first fixation = ``IA_FIRST_FIXATION_DURATION`` / ``firstfix.dur``, total reading time
#: = ``IA_DWELL_TIME`` / ``dur``.
FIRST_PASS_GAZE_DURATION = "eye tracking: first-pass gaze duration"
FIRST_FIXATION_DURATION = "eye tracking: first fixation duration"
TOTAL_READING_TIME = "eye tracking: total reading time"
EYE_TRACKING_MEASURES = (FIRST_PASS_GAZE_DURATION, FIRST_FIXATION_DURATION, TOTAL_READING_TIME)


def measure_kind(measure: str) -> str:
    """The kind of a reading measure: its text before ``:``, lowercased, ``-`` read as a space.

    ``"Eye-tracking: gaze duration"`` → ``"eye tracking"``; ``"self-paced reading"`` →
    ``"self paced reading"``.
    """
    return " ".join(measure.split(":", 1)[0].replace("-", " ").lower().split())


_SPILLOVER_BY_KIND = {measure_kind(m): s for m, s in SPILLOVER_BY_MEASURE.items()}


@dataclass(frozen=True)
class ReadingTimeCorpus:
    """A reading-time corpus in phasewatch's schema.

    ``frame`` has one row per displayed word, sorted by ``story`` then ``position``:

    - ``story``: story id (int or str), ``position``: 1-based word index within the story,
    - ``word``: the word as displayed, punctuation attached (``"England,"``),
    - ``rt``: the response in ms (e.g. mean self-paced reading time over readers),
    - optional ``n_readers`` and any further per-word columns.

    ``texts`` maps each story to its text: the words joined by single spaces.

    ``dependencies`` (optional) holds the corpus's own dependency arcs between its words, one row
    per word: ``story``, ``position`` (the dependent), ``head_position`` (the head word in the same
    story, 0 = root) and ``relation``. The syntactic score reads these arcs and no others; a corpus
    without them has no syntactic score. ``language`` is the text's language as an ISO 639-1
    code (``"en"``), used for word frequencies (``wordfreq``) when the frame has no ``log_freq``
    column of its own. ``readers`` (optional) keeps the per-reader data behind ``rt``, one row per
    reader x word (:data:`READER_COLUMNS`; ``rt`` in ms, 0 = skipped), for analyses over readers
    such as a mixed-effects ΔLL.

    ``measure`` names the reading measure, kind first (``"self-paced reading"``,
    ``"eye tracking: gaze duration"``). ``default_spillover`` is the number of previous words whose
    predictors enter the ΔLL regression with the current word's: given, or else taken from the
    measure's kind (:data:`SPILLOVER_BY_MEASURE`: self-paced reading 4, eye tracking 2).

    Raises:
        ValueError: a required column is missing, ``default_spillover`` is not an int >= 0, or it
            is not given and the measure's kind has no default, or ``dependencies`` lacks a
            column of :data:`DEPENDENCY_COLUMNS`.
    """

    name: str
    frame: pd.DataFrame
    license: str = ""
    citation: str = ""
    measure: str = "self-paced reading"
    extras: dict = field(default_factory=dict)
    default_spillover: int | None = None
    dependencies: pd.DataFrame | None = None
    language: str = "en"
    readers: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(
                f"corpus {self.name!r} lacks the columns {missing}; a reading-time corpus needs "
                f"{list(REQUIRED_COLUMNS)} (story, 1-based position, displayed word, rt in ms)"
            )
        spillover = self.default_spillover
        if spillover is None:
            spillover = _SPILLOVER_BY_KIND.get(measure_kind(self.measure))
            if spillover is None:
                raise ValueError(
                    f"corpus {self.name!r} has measure {self.measure!r}, whose kind "
                    f"{measure_kind(self.measure)!r} has no default spillover; pass "
                    "`default_spillover=` (previous words in the ΔLL regression: 4 for self-paced "
                    "reading, 2 for eye tracking) or a measure of kind "
                    f"{' or '.join(map(repr, SPILLOVER_BY_MEASURE))}"
                )
        if isinstance(spillover, bool) or not isinstance(spillover, int) or spillover < 0:
            raise ValueError(
                f"`default_spillover` must be an int >= 0 (previous words), got {spillover!r}"
            )
        object.__setattr__(self, "default_spillover", spillover)
        if self.dependencies is not None:
            lacking = [c for c in DEPENDENCY_COLUMNS if c not in self.dependencies.columns]
            if lacking:
                raise ValueError(
                    f"the dependencies of corpus {self.name!r} lack the columns {lacking}; arcs "
                    f"need {list(DEPENDENCY_COLUMNS)} (dependent story and position, head "
                    "position in the same story with 0 = root, relation)"
                )
        if self.readers is not None:
            lacking = [c for c in READER_COLUMNS if c not in self.readers.columns]
            if lacking:
                raise ValueError(
                    f"the per-reader data of corpus {self.name!r} lack the columns {lacking}; "
                    f"they need {list(READER_COLUMNS)} (one row per reader x word, rt in ms)"
                )
        if not isinstance(self.language, str) or not self.language:
            raise ValueError(
                f"`language` must be an ISO 639-1 code such as 'en', got {self.language!r}"
            )

    @property
    def has_dependencies(self) -> bool:
        """Whether the corpus carries its own dependency arcs (needed by the syntactic score)."""
        return self.dependencies is not None

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
            f"{len(self.stories)} stories, {self.measure}, default spillover "
            f"{self.default_spillover} previous words"
            f"{', with dependency arcs' if self.has_dependencies else ''})"
        )

"""Every kind of head score in one table: its name, logged key, title, and how it is computed.

Adding a kind is one row of :data:`HEAD_KINDS` (plus its key constant in :mod:`phasewatch.keys`
and a test): the measures, ``AttentionMonitor``, offline analysis, the report and the heatmaps
all read this table. A kind read off the repeated-random-token probe states where its key lies
relative to the query (``offset``); asking for an unknown kind raises, so no kind silently takes
another's rule. Plain data, importing only :mod:`phasewatch.keys`: ``report/`` reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from phasewatch import keys

#: Probe of the induction-style scores: ``[BOS] t_0 .. t_{n-1} t_0 .. t_{n-1}`` (random tokens).
REPEATED_TOKENS = "repeated_tokens"
#: Probe of the syntactic score: gold dependency arcs of a parsed corpus.
DEPENDENCY_ARCS = "dependency_arcs"
_PROBES = (REPEATED_TOKENS, DEPENDENCY_ARCS)


@dataclass(frozen=True)
class HeadKind:
    """One kind of per-head score.

    Attributes:
        name: the measure's name (key of the per-head dicts, e.g. ``"induction"``).
        key: the logged scalar, the max over heads (a constant of :mod:`phasewatch.keys`).
        title: panel title in heatmaps and legend in the run report.
        probe: :data:`REPEATED_TOKENS` or :data:`DEPENDENCY_ARCS`.
        offset: repeated-token kinds only: ``(a, b)`` with ``key(s) = s + a·n + b`` for a query
            ``s`` of the second repeat (``n`` = ``seq_len``); the score averages ``A[s, key(s)]``.
        description: one line for docs and reprs.
    """

    name: str
    key: str
    title: str
    probe: str
    offset: tuple[int, int] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.probe not in _PROBES:
            raise ValueError(
                f"head kind {self.name!r}: `probe` can be {', '.join(_PROBES)}, got {self.probe!r}"
            )
        if (self.offset is None) == (self.probe == REPEATED_TOKENS):
            raise ValueError(
                f"head kind {self.name!r}: a {REPEATED_TOKENS} kind needs `offset=(a, b)` "
                f"(key(s) = s + a·seq_len + b) and other kinds take none, got {self.offset!r}"
            )

    def key_offset(self, seq_len: int) -> int:
        """``key(s) - s`` on a probe of ``seq_len`` tokens per repeat (tokens; ≤ 0)."""
        if self.offset is None:
            raise ValueError(
                f"head kind {self.name!r} is measured on {self.probe}, not on the repeated-token "
                "probe: it has no key offset"
            )
        per_repeat, constant = self.offset
        return per_repeat * seq_len + constant


HEAD_KINDS: dict[str, HeadKind] = {
    kind.name: kind
    for kind in (
        HeadKind(
            "induction",
            keys.HEADS_INDUCTION_MAX,
            "induction score",
            REPEATED_TOKENS,
            offset=(-1, 1),
            description="the token after the earlier occurrence (prefix matching)",
        ),
        HeadKind(
            "previous_token",
            keys.HEADS_PREV_TOKEN_MAX,
            "previous-token score",
            REPEATED_TOKENS,
            offset=(0, -1),
            description="the token before",
        ),
        HeadKind(
            "duplicate_token",
            keys.HEADS_DUPLICATE_TOKEN_MAX,
            "duplicate-token score",
            REPEATED_TOKENS,
            offset=(-1, 0),
            description="the earlier occurrence of the current token",
        ),
        HeadKind(
            "syntactic",
            keys.HEADS_SYNTACTIC_MAX,
            "syntactic score (best head)",
            DEPENDENCY_ARCS,
            description="fraction of all dependency arcs whose head word the head picks out",
        ),
    )
}

#: Title of :data:`phasewatch.keys.HEADS_SAS` (a model-level score: best head per relation).
SAS_TITLE = "SAS (best head per relation)"


def head_kind(name: str) -> HeadKind:
    """The row of ``name``; an unknown name raises ``ValueError`` listing the known kinds."""
    try:
        return HEAD_KINDS[name]
    except KeyError:
        raise ValueError(
            f"unknown head kind {name!r}: the kinds are {', '.join(HEAD_KINDS)}; a new kind is "
            "one row of phasewatch.head_kinds.HEAD_KINDS (docs/extending.md)"
        ) from None


def repeated_token_kinds() -> tuple[str, ...]:
    """Names of the kinds read off the repeated-random-token probe, in table order."""
    return tuple(name for name, kind in HEAD_KINDS.items() if kind.probe == REPEATED_TOKENS)


def score_keys() -> dict[str, str]:
    """Kind name → logged key (max over heads), in table order."""
    return {name: kind.key for name, kind in HEAD_KINDS.items()}


def head_series() -> dict[str, str]:
    """Every head scalar ``AttentionMonitor`` logs → its title: the kinds' maxima, then SAS."""
    return {**{kind.key: kind.title for kind in HEAD_KINDS.values()}, keys.HEADS_SAS: SAS_TITLE}

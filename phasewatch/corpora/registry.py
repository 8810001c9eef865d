"""The one registry of corpora phasewatch knows by name.

Each entry says what the corpus is for (``"reading times"``: loadable as a
:class:`ReadingTimeCorpus`; ``"training text"``: text a model is trained on), how to load it, its
reading measure (so the default spillover is known before the data are read), its language, and
whether a manifest pins its files for verified download. ``known_corpora()`` (corpora with a
manifest) and ``reading_time_corpora()`` (corpora ``load`` accepts) are views of this registry, so
the two can no longer disagree.

Register your own corpus once and every name-taking API accepts it
(``PPPMonitor(corpus="mycorpus")``, ``phasewatch.corpora.load("mycorpus")``)::

    register_corpus("mycorpus", lambda data_dir=None: load_tsv("my.tsv"), measure="eye tracking")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phasewatch.corpora.schema import SPILLOVER_BY_MEASURE, ReadingTimeCorpus, measure_kind

READING_TIMES = "reading times"
TRAINING_TEXT = "training text"
ROLES = (READING_TIMES, TRAINING_TEXT)

_SPILLOVER_BY_KIND = {measure_kind(m): s for m, s in SPILLOVER_BY_MEASURE.items()}


@dataclass(frozen=True)
class CorpusEntry:
    """One named corpus.

    ``loader(data_dir=None, **options) -> ReadingTimeCorpus`` for reading-time corpora (None for
    training text); ``measure`` as in :class:`ReadingTimeCorpus` (``"self-paced reading"``,
    ``"eye tracking: gaze duration"``); ``language`` an ISO 639-1 code; ``manifest``: its files
    are pinned in ``phasewatch/corpora/manifests/<name>.tsv``.
    """

    name: str
    role: str
    loader: Callable[..., ReadingTimeCorpus] | None = None
    measure: str | None = None
    language: str = "en"
    manifest: bool = False
    description: str = ""

    @property
    def default_spillover(self) -> int | None:
        """Previous words in the ΔLL regression by the measure's kind (None if unknown)."""
        return None if self.measure is None else _SPILLOVER_BY_KIND.get(measure_kind(self.measure))


_REGISTRY: dict[str, CorpusEntry] = {}


def register_corpus(
    name: str,
    loader: Callable[..., ReadingTimeCorpus] | None = None,
    *,
    role: str = READING_TIMES,
    measure: str | None = "self-paced reading",
    language: str = "en",
    manifest: bool = False,
    description: str = "",
    replace: bool = False,
) -> CorpusEntry:
    """Add a corpus to the registry and return its entry.

    Raises:
        ValueError: ``name`` is empty or already registered (pass ``replace=True`` to replace
            it), ``role`` is unknown, or a reading-time corpus has no ``loader``.
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"`name` must be a non-empty corpus name without '/', got {name!r}")
    if role not in ROLES:
        raise ValueError(f"`role` must be one of {list(ROLES)}, got {role!r}")
    if role == READING_TIMES and not callable(loader):
        raise ValueError(
            f"a reading-time corpus needs `loader`, a function (data_dir=None) -> "
            f"ReadingTimeCorpus; got {loader!r} for {name!r}"
        )
    if name in _REGISTRY and not replace:
        existing = _REGISTRY[name]
        raise ValueError(
            f"a corpus named {name!r} is already registered "
            f"({existing.description or existing.role}); choose another name or pass replace=True"
        )
    entry = CorpusEntry(name, role, loader, measure, language, manifest, description)
    _REGISTRY[name] = entry
    return entry


def registered_corpora() -> dict[str, CorpusEntry]:
    """Name → :class:`CorpusEntry` for every registered corpus, in registration order."""
    return dict(_REGISTRY)


def corpus_entry(name: str, *, role: str | None = None, argument: str = "corpus") -> CorpusEntry:
    """The entry of ``name``; a ValueError (about the caller's ``argument``) lists the registered
    names (of ``role``, if given)."""
    entry = _REGISTRY.get(name)
    if entry is None or (role is not None and entry.role != role):
        names = [n for n, e in _REGISTRY.items() if role is None or e.role == role]
        what = "corpora" if role is None else f"{role} corpora"
        raise ValueError(
            f"`{argument}` must be one of the registered {what} {names}, got {name!r}; for your "
            "own corpus use phasewatch.corpora.load_tsv(path, ...) or register it with "
            "phasewatch.corpora.register_corpus(name, loader)"
        )
    return entry


def reading_time_corpora() -> tuple[str, ...]:
    """Names of the registered reading-time corpora (:func:`phasewatch.corpora.load` takes them)."""
    return tuple(n for n, e in _REGISTRY.items() if e.role == READING_TIMES)


def known_corpora() -> tuple[str, ...]:
    """Names of the registered corpora whose files a manifest pins (downloadable, verifiable)."""
    return tuple(sorted(n for n, e in _REGISTRY.items() if e.manifest))

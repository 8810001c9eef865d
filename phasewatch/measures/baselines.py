"""Baseline predictors of reading time: word length and log word frequency.

These are the predictors the ΔLL regression controls for before it credits surprisal
(Wilcox et al., 2020). Both are computed from the displayed word in Unicode NFC form (a decomposed
``u`` + combining diaeresis is one ``ü``) with its surrounding punctuation removed (``"“Hello,”"``
→ ``Hello``); inner punctuation stays (``don't``, ``well-known``). Length counts characters
(code points after NFC), not bytes: ``Müller`` is 6.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

#: wordfreq's lowest listed English frequency is ~1.02e-8 (Zipf 1.0): unseen words get this.
DEFAULT_FREQUENCY_FLOOR = 1e-8

#: Baseline columns :func:`add_baseline_columns` can compute from the ``word`` column.
COMPUTABLE_BASELINES = ("length", "log_freq")

_SURROUNDING_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")


def strip_punctuation(word: str) -> str:
    """The word without leading/trailing non-alphanumerics (``"England,"`` → ``England``)."""
    return _SURROUNDING_PUNCTUATION.sub("", word)


def _bare(word: object) -> str:
    """The word in NFC form without surrounding punctuation."""
    return strip_punctuation(unicodedata.normalize("NFC", str(word)))


def word_length(words: Iterable[str]) -> np.ndarray:
    """Characters per word (NFC code points) without surrounding punctuation (int64; 0 for
    punctuation-only words)."""
    return np.fromiter((len(_bare(w)) for w in words), dtype=np.int64)


def log_frequency(
    words: Iterable[str], *, lang: str = "en", floor: float = DEFAULT_FREQUENCY_FLOOR
) -> np.ndarray:
    """Natural log of each word's unigram frequency, ``ln max(f(w), floor)`` (float64).

    ``f(w) = wordfreq.word_frequency(w, lang)`` (Speer, 2022: a word's frequency per token in a
    blend of corpora) in the language ``lang`` (ISO 639-1, e.g. ``"de"``), looked up in NFC form,
    lowercased and without surrounding punctuation. Words wordfreq does not know, and
    punctuation-only words, get ``floor`` (default :data:`DEFAULT_FREQUENCY_FLOOR`, wordfreq's
    lowest listed English frequency).

    Raises:
        ValueError: wordfreq has no word list for ``lang`` (the message lists those it has).
        ImportError: the language needs a segmenter wordfreq does not install by default
            (Chinese ``jieba``, Japanese/Korean ``mecab``).
    """
    if not floor > 0:
        raise ValueError(f"`floor` must be a frequency > 0, got {floor!r}")
    _check_language(lang)
    return np.fromiter(
        (_log_frequency(_bare(w).lower(), lang, float(floor)) for w in words),
        dtype=np.float64,
    )


@lru_cache(maxsize=64)
def _check_language(lang: str) -> None:
    """Raise with the fix when wordfreq cannot give frequencies in ``lang``."""
    import wordfreq

    fix = (
        "give the corpus its own frequencies (load_tsv(..., frequency=<column>), or a "
        "`log_freq` column in the frame), which are then used as they are"
    )
    try:
        wordfreq.word_frequency("a", lang)
    except ModuleNotFoundError as err:
        raise ImportError(
            f"wordfreq needs the package {err.name!r} to split {lang!r} text into words; install "
            f"it (pip install 'wordfreq[cjk]'), or {fix}"
        ) from None
    except (LookupError, ValueError) as err:  # langcodes' LanguageTagError is a ValueError
        raise ValueError(
            f"wordfreq has no word frequencies for the language {lang!r} ({err}); it has "
            f"{sorted(wordfreq.available_languages())}. Pass the corpus's ISO 639-1 code "
            f"(`language=`), or {fix}"
        ) from None


@lru_cache(maxsize=200_000)
def _log_frequency(word: str, lang: str, floor: float) -> float:
    from wordfreq import word_frequency

    return math.log(max(word_frequency(word, lang), floor)) if word else math.log(floor)


def add_baseline_columns(
    frame: pd.DataFrame,
    names: Sequence[str] = COMPUTABLE_BASELINES,
    *,
    word: str = "word",
    lang: str = "en",
    floor: float = DEFAULT_FREQUENCY_FLOOR,
) -> pd.DataFrame:
    """``frame`` with the columns ``length`` / ``log_freq`` among ``names`` added where absent.

    Returns ``frame`` itself when nothing is missing, else a shallow copy with the new columns.
    Raises ``ValueError`` when a missing column cannot be computed (not ``length``/``log_freq``, or
    no ``word`` column).
    """
    missing = [n for n in names if n not in frame.columns]
    if not missing:
        return frame
    unknown = [n for n in missing if n not in COMPUTABLE_BASELINES]
    if unknown:
        raise ValueError(
            f"baseline columns {unknown} are not in the frame and cannot be computed; phasewatch "
            f"computes only {list(COMPUTABLE_BASELINES)} from the words. Add the columns, or drop "
            f"them from `baseline`. Frame columns: {list(frame.columns)}"
        )
    if word not in frame.columns:
        raise ValueError(
            f"baseline columns {missing} are computed from the column {word!r}, which the frame "
            f"lacks; add it or the columns themselves. Frame columns: {list(frame.columns)}"
        )
    out = frame.copy(deep=False)
    words = frame[word].astype(str).tolist()
    if "length" in missing:
        out["length"] = word_length(words)
    if "log_freq" in missing:
        out["log_freq"] = log_frequency(words, lang=lang, floor=floor)
    return out

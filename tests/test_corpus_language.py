"""Non-English corpora: frequencies from wordfreq in the corpus's language, or its own column;
word length in characters (NFC), not bytes."""

from __future__ import annotations

import math
import unicodedata

import numpy as np
import pytest
import wordfreq

from phasewatch.corpora import load_tsv
from phasewatch.measures.baselines import DEFAULT_FREQUENCY_FLOOR, log_frequency, word_length
from phasewatch.measures.snapshot import PPPMeasure

_GERMAN = (
    "story\tposition\tword\trt\tcount\n"
    "1\t1\tDie\t300\t9000\n"
    "1\t2\tKatze\t340\t40\n"
    "1\t3\tschläft\t360\t12\n"
    "1\t4\tüber\t310\t800\n"
    "1\t5\tdem\t290\t5000\n"
    "1\t6\tMüller.\t420\t7\n"
)


def _by_hand(word: str, lang: str) -> float:
    bare = word.strip(".,").lower()
    return math.log(max(wordfreq.word_frequency(bare, lang), DEFAULT_FREQUENCY_FLOOR))


@pytest.fixture
def german(tmp_path):
    path = tmp_path / "de.tsv"
    path.write_text(_GERMAN, encoding="utf-8")
    return path


def test_a_german_corpus_gets_german_frequencies_in_ppp(german):
    corpus = load_tsv(german, language="de")
    frame = PPPMeasure(corpus).frame
    words = corpus.frame["word"].tolist()
    expected = [_by_hand(w, "de") for w in words]
    np.testing.assert_allclose(frame["log_freq"], expected, rtol=1e-12)
    english = [_by_hand(w, "en") for w in words]
    assert max(abs(a - b) for a, b in zip(expected, english, strict=True)) > 2  # not English
    assert frame["length"].tolist() == [3, 5, 7, 4, 3, 6]  # characters: ü and ä count 1


def test_the_corpus_own_frequency_column_is_used_as_is(german):
    corpus = load_tsv(german, language="de", frequency="count")
    frame = PPPMeasure(corpus).frame
    assert frame["log_freq"].tolist() == [math.log(c) for c in (9000, 40, 12, 800, 5000, 7)]


def test_decomposed_unicode_counts_and_looks_up_as_composed():
    decomposed = unicodedata.normalize("NFD", "Müller,")  # u + combining diaeresis
    assert len(decomposed) == 8 and word_length([decomposed]).tolist() == [6]
    cafe = unicodedata.normalize("NFD", "café")
    composed = log_frequency(["café"], lang="fr")
    assert composed[0] > math.log(DEFAULT_FREQUENCY_FLOOR)
    assert log_frequency([cafe], lang="fr").tolist() == composed.tolist()


def test_a_language_wordfreq_lacks_says_how_to_fix(german):
    with pytest.raises(ValueError, match=r"no word frequencies for the language 'xx'.*frequency="):
        log_frequency(["Katze"], lang="xx")
    with pytest.raises(ValueError, match="language 'xx'"):
        PPPMeasure(load_tsv(german, language="xx"))
    PPPMeasure(load_tsv(german, language="xx", frequency="count"))  # own frequencies: no lookup

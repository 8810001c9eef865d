"""The generic corpus format: per-reader rows, frequency, dependency arcs, language, measures.

The acceptance test re-exports Natural Stories by hand, one row per reader x word, and loads it
back with ``load_tsv(..., reader=...)``: the same ΔLL as the bundled loader, the same arcs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from phasewatch.corpora import CorpusDataError, load_tsv
from phasewatch.corpora.readers import NATURAL_STORIES_BOUNDS_MS
from phasewatch.corpora.schema import EYE_TRACKING_MEASURES
from phasewatch.measures.delta_loglik import delta_loglik

#: Each word's 5 kept readings are its mean plus these offsets (ms), which sum to 0.
_OFFSETS = np.array([40.0, -40.0, 17.0, -17.0, 0.0])


def _export_per_reader(corpus, path, rng: np.random.Generator) -> None:
    """Natural Stories as a per-reader TSV in reader-major order, as Provo or MECO ship it: five
    readings per word that average to meanItemRT, one skip (0 or NA) and one reading outside
    100-3000 ms, which the rule drops; head and relation from the corpus's own arcs."""
    arcs = corpus.dependencies.set_index(["story", "position"])
    lines = ["subject\titem\tzone\tWORD\tRT\thead\tdeprel\tfixations"]
    frame = corpus.frame
    offsets = np.stack([rng.permutation(_OFFSETS) for _ in range(len(frame))])
    dropped = rng.choice(["0", "NA", "60", "3500.5"], size=(len(frame), 2))
    for reader in range(7):
        for i, row in enumerate(frame.itertuples()):
            head, relation = arcs.loc[(row.story, row.position)]
            rt = repr(float(row.rt + offsets[i, reader])) if reader < 5 else dropped[i, reader - 5]
            lines.append(
                f"s{reader}\t{row.story}\t{row.position}\t{row.word}\t{rt}\t{head}\t{relation}"
                f"\t{reader % 3}"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_natural_stories_exported_per_reader_gives_the_bundled_delta_ll(ns_corpus, tmp_path):
    path = tmp_path / "ns_per_reader.tsv"
    _export_per_reader(ns_corpus, path, np.random.default_rng(0))
    mine = load_tsv(
        path,
        story="item",
        position="zone",
        word="WORD",
        rt="RT",
        reader="subject",
        head="head",
        relation="deprel",
        min_rt=NATURAL_STORIES_BOUNDS_MS[0],
        max_rt=NATURAL_STORIES_BOUNDS_MS[1],
    )
    assert len(mine) == len(ns_corpus) == 10_256
    assert mine.frame["n_readers"].eq(5).all()  # the skip and the out-of-bounds reading dropped
    np.testing.assert_allclose(mine.frame["rt"], ns_corpus.frame["rt"], rtol=1e-12, atol=0)
    assert mine.frame["word"].tolist() == ns_corpus.frame["word"].tolist()
    pd.testing.assert_frame_equal(mine.dependencies, ns_corpus.dependencies, check_dtype=False)
    assert mine.default_spillover == ns_corpus.default_spillover == 4

    # one surprisal column for both, tied to the reading times so that ΔLL is far from 0
    rng = np.random.default_rng(1)
    surprisal = (ns_corpus.frame["rt"] - 300) / 40 + rng.normal(0, 2, len(ns_corpus))
    ours = delta_loglik(mine.frame.assign(surprisal=surprisal.to_numpy()))
    bundled = delta_loglik(ns_corpus.frame.assign(surprisal=surprisal.to_numpy()))
    assert bundled.mean > 0.01  # a ΔLL that could be wrong
    assert ours.n == bundled.n
    assert abs(ours.mean - bundled.mean) < 1e-9 and abs(ours.se - bundled.se) < 1e-9

    readers = mine.readers
    assert len(readers) == 7 * 10_256 and readers["kept"].sum() == 5 * 10_256
    assert readers.loc[readers["rt"].isin([60.0, 3500.5]), "kept"].eq(False).all()
    assert set(readers.columns) >= {"story", "position", "reader", "rt", "kept", "fixations"}
    assert "fixations" not in mine.frame.columns  # a per-reader column stays with the readers


def _write(tmp_path, text: str, name: str = "c.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


_PER_READER = (
    "story\tposition\treader\tword\trt\n"
    "1\t1\ta\tDie\t200\n"
    "1\t1\tb\tDie\t0\n"
    "1\t2\ta\tKatze\t310\n"
    "1\t2\tb\tKatze\t330\n"
    "1\t3\ta\tschläft.\t\n"
    "1\t3\tb\tschläft.\tNA\n"
)


def test_per_reader_rows_skips_and_a_word_nobody_read(tmp_path):
    corpus = load_tsv(_write(tmp_path, _PER_READER), reader="reader", language="de")
    assert corpus.frame["rt"].tolist() == [200.0, 320.0, 0.0]  # 0 = left out of the regression
    assert corpus.frame["n_readers"].tolist() == [1, 2, 0]
    assert corpus.texts[1] == "Die Katze schläft."
    assert corpus.language == "de"
    assert corpus.readers["kept"].tolist() == [True, False, True, True, False, False]


def test_min_readers_leaves_out_words_with_too_few_readings(tmp_path):
    corpus = load_tsv(_write(tmp_path, _PER_READER), reader="reader", min_readers=2)
    assert corpus.frame["rt"].tolist() == [0.0, 320.0, 0.0]
    assert corpus.extras["aggregation"] == {"min_rt": None, "max_rt": None, "min_readers": 2}


def test_a_word_that_differs_between_readers_names_column_and_lines(tmp_path):
    text = _PER_READER.replace("1\t2\tb\tKatze", "1\t2\tb\tKatz")
    with pytest.raises(CorpusDataError, match=r"column 'word' differs(.|\n)*line 4, line 5"):
        load_tsv(_write(tmp_path, text), reader="reader")


def test_a_head_that_differs_between_readers_names_the_files_column(tmp_path):
    text = _PER_READER.replace("\trt\n", "\trt\tparent\tlabel\n", 1)
    lines = text.splitlines()
    heads = ["2", "2", "0", "3", "0", "0"]  # line 5 gives "Katze" another head than line 4
    text = "\n".join(
        [lines[0]] + [f"{line}\t{h}\tdep" for line, h in zip(lines[1:], heads, strict=True)]
    )
    with pytest.raises(CorpusDataError, match=r"column 'parent' differs(.|\n)*line 4, line 5"):
        load_tsv(_write(tmp_path, text + "\n"), reader="reader", head="parent", relation="label")


def test_a_reading_that_is_no_number_names_column_and_line(tmp_path):
    text = _PER_READER.replace("330", "fast")
    with pytest.raises(CorpusDataError, match=r"column 'ms' has 1 readings(.|\n)*line 5: 'fast'"):
        load_tsv(_write(tmp_path, text.replace("\trt\n", "\tms\n", 1)), reader="reader", rt="ms")


_ARCS = (
    "story,position,word,rt,head,rel,count\n"
    "1,1,The,300,2,det,600\n"
    "1,2,cat,320,3,nsubj,30\n"
    "1,3,sat.,400,0,root,12\n"
    "2,1,Dogs,310,2,nsubj,9\n"
    "2,2,bark.,350,0,root,3\n"
)


def test_arcs_and_frequency_from_the_corpus_own_columns(tmp_path):
    corpus = load_tsv(
        _write(tmp_path, _ARCS, "c.csv"), sep=",", head="head", relation="rel", frequency="count"
    )
    assert corpus.has_dependencies
    assert corpus.dependencies.to_dict("list") == {
        "story": [1, 1, 1, 2, 2],
        "position": [1, 2, 3, 1, 2],
        "head_position": [2, 3, 0, 2, 0],
        "relation": ["det", "nsubj", "root", "nsubj", "root"],
    }
    assert corpus.frame["log_freq"].tolist() == [math.log(c) for c in (600, 30, 12, 9, 3)]
    assert "head" not in corpus.frame.columns and "count" not in corpus.frame.columns
    as_log = load_tsv(
        _write(tmp_path, _ARCS, "c.csv"), sep=",", frequency="count", frequency_is_log=True
    )
    assert as_log.frame["log_freq"].tolist() == [600.0, 30.0, 12.0, 9.0, 3.0]
    assert not as_log.has_dependencies


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (
            ("2,1,Dogs,310,2", "2,1,Dogs,310,3"),
            {},
            r"'head' \(argument head=\) has 1 heads(.|\n)"
            r"*line 5: story 2, position 1, head 3 \(story length 2\)",
        ),
        (("1,2,cat,320,3", "1,2,cat,320,2"), {}, r"on the word itself(.|\n)*line 3"),
        (("1,2,cat,320,3", "1,2,cat,320,x"), {}, r"column 'head' has 1 values(.|\n)*line 3: 'x'"),
        ((",nsubj,30", ",,30"), {}, r"column 'rel' \(argument relation=\) has 1 empty"),
        (
            (",root,12", ",root,0"),
            {"frequency": "count"},
            r"column 'count' \(argument frequency=\) has 1 frequencies that are not > 0"
            r"(.|\n)*line 4",
        ),
    ],
)
def test_bad_arcs_and_frequencies_name_the_column_and_line(tmp_path, change, kwargs, message):
    path = _write(tmp_path, _ARCS.replace(*change), "c.csv")
    with pytest.raises(CorpusDataError, match=message):
        load_tsv(path, sep=",", head="head", relation="rel", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head": "head"}, "need both `head=`"),
        ({"reader": "r", "n_readers": "n"}, "drop `n_readers="),
        ({"frequency_is_log": True}, "needs `frequency=`"),
    ],
)
def test_inconsistent_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_tsv(_write(tmp_path, _ARCS, "c.csv"), sep=",", **kwargs)


@pytest.mark.parametrize("measure", EYE_TRACKING_MEASURES)
def test_eye_tracking_measures_default_to_2_previous_words(tmp_path, measure):
    corpus = load_tsv(_write(tmp_path, _PER_READER), reader="reader", measure=measure)
    assert corpus.default_spillover == 2 and corpus.measure == measure


def test_frequency_scale_and_log_base_do_not_change_delta_ll(ns_corpus):
    """Counts vs probabilities shift ln f by a constant, log10 vs ln scale it: the regression's
    intercept and coefficient absorb both, so ΔLL is the same (a raw column of any scale works)."""
    frame = ns_corpus.frame[ns_corpus.frame["story"] <= 3].copy()
    rng = np.random.default_rng(2)
    frame["surprisal"] = (frame["rt"] - 300) / 40 + rng.normal(0, 2, len(frame))
    counts = rng.integers(1, 10_000, len(frame)).astype(float)
    results = [
        delta_loglik(frame.assign(log_freq=values))
        for values in (np.log(counts), np.log(counts / counts.sum()), np.log10(counts))
    ]
    assert results[0].mean > 0.01
    for other in results[1:]:
        assert abs(other.mean - results[0].mean) < 1e-9

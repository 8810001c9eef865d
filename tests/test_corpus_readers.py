"""aggregate_readers: per-reader rows to per-word means under the stated rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phasewatch.corpora import CorpusDataError
from phasewatch.corpora.readers import NATURAL_STORIES_BOUNDS_MS, aggregate_readers


def _per_reader(rng: np.random.Generator, words: int = 30, readers: int = 8) -> pd.DataFrame:
    rows = []
    for story in (1, 2):
        for position in range(1, words + 1):
            for reader in range(readers):
                rt = float(rng.choice([0.0, np.nan, 50.0, 4000.0, *rng.uniform(120, 900, 4)]))
                rows.append((story, position, f"r{reader}", rt, f"w{story}.{position}"))
    return pd.DataFrame(rows, columns=["story", "position", "reader", "rt", "word"])


def _by_hand(frame: pd.DataFrame, lo: float, hi: float, min_readers: int) -> dict:
    """The rule written out word by word: drop skips (0/NaN) and readings outside [lo, hi]."""
    out = {}
    for (story, position), group in frame.groupby(["story", "position"]):
        kept = [r for r in group["rt"] if r == r and r > 0 and lo <= r <= hi]
        out[(story, position)] = (
            float(np.mean(kept)) if len(kept) >= min_readers else 0.0,
            len(kept),
        )
    return out


@pytest.mark.parametrize("bounds", [(None, None), NATURAL_STORIES_BOUNDS_MS])
@pytest.mark.parametrize("min_readers", [1, 5])
def test_means_follow_the_stated_rule(bounds, min_readers):
    frame = _per_reader(np.random.default_rng(3))
    out = aggregate_readers(frame, min_rt=bounds[0], max_rt=bounds[1], min_readers=min_readers)
    lo, hi = (-np.inf, np.inf) if bounds[0] is None else bounds
    expected = _by_hand(frame, lo, hi, min_readers)
    assert len(out) == 60 and list(out.columns) == ["story", "position", "word", "rt", "n_readers"]
    for row in out.itertuples():
        rt, n = expected[(row.story, row.position)]
        assert row.rt == pytest.approx(rt, rel=1e-12, abs=0) and row.n_readers == n
        assert row.word == f"w{row.story}.{row.position}"
    if min_readers == 5:  # some words fall below the minimum and are left out (rt 0)
        assert ((out["rt"] == 0) & (out["n_readers"] > 0)).any()


def test_skips_are_left_out_of_the_mean_not_counted_as_zero():
    frame = pd.DataFrame(
        {
            "story": 1,
            "position": [1, 1, 1, 2, 2],
            "reader": ["a", "b", "c", "a", "b"],
            "rt": [200.0, 0.0, np.nan, 0.0, np.nan],
        }
    )
    out = aggregate_readers(frame)
    assert out["rt"].tolist() == [200.0, 0.0]  # not 200/3; a word nobody fixated: 0 = left out
    assert out["n_readers"].tolist() == [1, 0]


def test_a_word_that_differs_between_readers_names_the_rows():
    frame = pd.DataFrame(
        {
            "story": 1,
            "position": [1, 1],
            "reader": ["a", "b"],
            "rt": [200, 300],
            "word": ["The", "Teh"],
        },
        index=pd.Index([2, 7], name="line"),
    )
    with pytest.raises(ValueError, match=r"'word' differs.*\['The', 'Teh'\] \(row 2, row 7\)"):
        aggregate_readers(frame)
    with pytest.raises(CorpusDataError, match=r"line 2, line 7"):
        aggregate_readers(frame, source="x.tsv")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"rt": [-5, 200]}, "1 negative readings"),
        ({"rt": ["fast", 200]}, "not numbers.*'fast'"),
        ({"reader": ["a", "a"]}, "one reader reads one word twice"),
    ],
)
def test_bad_readings_raise_naming_the_row(rows, message):
    frame = pd.DataFrame({"story": 1, "position": 1, "reader": ["a", "b"], "rt": [200, 300]})
    for column, values in rows.items():
        frame[column] = values
    with pytest.raises(ValueError, match=message):
        aggregate_readers(frame)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_rt": 3000, "max_rt": 100}, "must not exceed"),
        ({"min_readers": 0}, "`min_readers` must be an int >= 1"),
        ({"max_rt": float("nan")}, "`max_rt` must be a finite number"),
        ({"keep": ["rt"]}, "`keep` must name per-word columns"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    frame = pd.DataFrame({"story": 1, "position": 1, "reader": ["a"], "rt": [200]})
    with pytest.raises(ValueError, match=message):
        aggregate_readers(frame, **kwargs)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"lacks the per-reader columns \['reader'\]"):
        aggregate_readers(pd.DataFrame({"story": [1], "position": [1], "rt": [1.0]}))


def test_the_frames_own_column_names_and_the_schema_names_out():
    provo = pd.DataFrame(
        {
            "Text_ID": [3, 3, 3, 3],
            "Word_Number": [2, 2, 1, 1],
            "Participant_ID": ["p1", "p2", "p1", "p2"],
            "IA_FIRST_RUN_DWELL_TIME": ["180", "NA", "240", "260"],
            "Word": ["cat", "cat", "The", "The"],
        }
    )
    out = aggregate_readers(
        provo,
        story="Text_ID",
        position="Word_Number",
        reader="Participant_ID",
        rt="IA_FIRST_RUN_DWELL_TIME",
        min_rt=np.float64(100),
    )
    assert out.to_dict("list") == {
        "story": [3, 3],
        "position": [1, 2],
        "Word": ["The", "cat"],
        "rt": [250.0, 180.0],
        "n_readers": [2, 1],
    }
    provo.loc[1, "IA_FIRST_RUN_DWELL_TIME"] = "slow"
    with pytest.raises(ValueError, match="column 'IA_FIRST_RUN_DWELL_TIME' has 1 readings"):
        aggregate_readers(
            provo,
            story="Text_ID",
            position="Word_Number",
            reader="Participant_ID",
            rt="IA_FIRST_RUN_DWELL_TIME",
        )

"""Reading-time corpora: Natural Stories against its raw files, dependencies, load_tsv, errors."""

from __future__ import annotations

import math
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phasewatch.corpora import (
    CorpusDataError,
    ReadingTimeCorpus,
    data_file,
    data_files,
    load,
    load_tsv,
    verify,
)
from phasewatch.corpora import naturalstories as ns

DATA_ROOT = Path(os.environ.get("PHASEWATCH_DATA", "/nonexistent"))
NS_DIR = DATA_ROOT / "naturalstories"
pytestmark = pytest.mark.skipif(
    not (NS_DIR / ns.TOKENS_PATH).is_file(),
    reason="set PHASEWATCH_DATA to a folder holding naturalstories/ (e.g. /work/shared/corpora)",
)


def _raw_rows(relpath: str) -> list[list[str]]:
    """A TSV's data rows split by hand: no pandas, no quoting, no NA parsing."""
    lines = (NS_DIR / relpath).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:]]


@pytest.fixture(scope="module")
def corpus():
    return load("naturalstories")


@pytest.fixture(scope="module")
def arcs():
    return ns.load_dependencies()


def test_naturalstories_has_every_word_of_all_stories_tok(corpus):
    rows = _raw_rows(ns.TOKENS_PATH)
    per_story = Counter(int(item) for _, _, item in rows)
    assert len(corpus) == len(rows) == 10_256
    assert corpus.stories == sorted(per_story) == list(range(1, 11))
    assert corpus.frame.groupby("story").size().to_dict() == dict(per_story)


def test_positions_run_from_1_to_n_in_each_story(corpus):
    frame = corpus.frame
    assert frame[["story", "position"]].equals(
        frame[["story", "position"]].sort_values(["story", "position"])
    )
    for _, positions in frame.groupby("story")["position"]:
        assert positions.tolist() == list(range(1, len(positions) + 1))


def test_rt_is_meanItemRT_in_ms_and_n_readers_is_nItem(corpus):
    info = {
        (w, int(z), int(i)): (float(rt), int(n))
        for w, z, i, n, rt, *_ in _raw_rows(ns.WORDINFO_PATH)
    }
    frame = corpus.frame
    assert np.isfinite(frame["rt"]).all()
    # Upstream keeps RTs within 100–3000 ms, so every per-word mean lies in that range.
    assert frame["rt"].between(100, 3000).all()
    assert 250 < frame["rt"].mean() < 500
    for row in frame.sample(300, random_state=0).itertuples():
        rt_ms, n_readers = info[(row.word, row.position, row.story)]
        assert math.isclose(row.rt, rt_ms, rel_tol=1e-12)
        assert row.n_readers == n_readers


def test_join_loses_no_rows(corpus):
    tokens = {(w, int(z), int(i)) for w, z, i in _raw_rows(ns.TOKENS_PATH)}
    info = {(r[0], int(r[1]), int(r[2])) for r in _raw_rows(ns.WORDINFO_PATH)}
    loaded = set(
        zip(corpus.frame["word"], corpus.frame["position"], corpus.frame["story"], strict=True)
    )
    assert loaded == tokens == info
    assert len(loaded) == len(corpus)


def test_words_are_kept_verbatim_with_quotes(corpus):
    raw_words = [w for w, _, _ in _raw_rows(ns.TOKENS_PATH)]
    assert corpus.frame["word"].tolist() == raw_words  # file order is story, position order
    assert all(isinstance(w, str) and w for w in corpus.frame["word"])
    quoted = [w for w in raw_words if w.startswith("'")]
    assert len(quoted) > 10
    assert set(quoted) <= set(corpus.frame["word"])


def test_text_of_story_1_is_its_words_joined_by_spaces(corpus):
    story_1 = [w for w, _, item in _raw_rows(ns.TOKENS_PATH) if item == "1"]
    text = corpus.texts[1]
    assert text.startswith(" ".join(story_1[:12]) + " ")
    assert text == " ".join(story_1)


def test_license_and_citation_travel_with_the_corpus(corpus):
    assert "CC BY-NC-SA 4.0" in corpus.license
    assert "Futrell" in corpus.citation
    assert "55(1), 63–77" in corpus.citation


def test_naturalstories_is_self_paced_reading_with_4_previous_words_of_spillover(corpus):
    assert corpus.measure == "self-paced reading"
    assert corpus.default_spillover == 4
    assert "self-paced reading, default spillover 4 previous words" in repr(corpus)


@pytest.mark.parametrize(
    ("measure", "given", "expected"),
    [
        ("self-paced reading", None, 4),
        ("eye tracking: gaze duration", None, 2),
        ("Eye-tracking: first-pass reading time", None, 2),
        ("eye tracking", 3, 3),
        ("maze", 0, 0),
    ],
)
def test_default_spillover_follows_the_measure_kind_unless_given(measure, given, expected):
    frame = pd.DataFrame({"story": 1, "position": [1, 2], "word": ["a", "b"], "rt": 300.0})
    corpus = ReadingTimeCorpus("toy", frame, measure=measure, default_spillover=given)
    assert corpus.default_spillover == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"measure": "maze"}, r"kind 'maze' has no default spillover; pass `default_spillover=`"),
        ({"default_spillover": -1}, r"`default_spillover` must be an int >= 0.*got -1"),
        ({"default_spillover": 2.0}, r"`default_spillover` must be an int >= 0.*got 2\.0"),
    ],
)
def test_a_corpus_without_a_usable_default_spillover_is_refused(options, message):
    frame = pd.DataFrame({"story": 1, "position": [1], "word": ["a"], "rt": 300.0})
    with pytest.raises(ValueError, match=message):
        ReadingTimeCorpus("toy", frame, **options)


def test_both_data_dir_layouts_give_the_same_corpus(corpus):
    parent = load("naturalstories", data_dir=DATA_ROOT)
    itself = load("naturalstories", data_dir=NS_DIR)
    pd.testing.assert_frame_equal(parent.frame, corpus.frame)
    pd.testing.assert_frame_equal(itself.frame, corpus.frame)


def test_phasewatch_data_is_used_for_a_corpus_folder_it_holds(tmp_path, monkeypatch):
    folder = tmp_path / "naturalstories" / "naturalstories_RTS"
    folder.mkdir(parents=True)
    shutil.copy(NS_DIR / ns.TOKENS_PATH, folder)
    monkeypatch.setenv("PHASEWATCH_DATA", str(tmp_path))
    assert data_file("naturalstories", ns.TOKENS_PATH) == folder / "all_stories.tok"


def test_a_verified_file_is_hashed_once_per_process():
    path = NS_DIR / ns.WORDINFO_PATH
    verify.sha256_of(path)
    before = verify._sha256_of_version.cache_info()
    assert data_file("naturalstories", ns.WORDINFO_PATH, data_dir=DATA_ROOT) == path
    after = verify._sha256_of_version.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_unknown_corpus_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"`name` must be one of the registered .*got 'dundee'"):
        load("dundee")


def test_unknown_relpath_lists_the_manifest():
    with pytest.raises(ValueError, match=r"naturalstories_RTS/all_stories\.tok.*got 'x\.tsv'"):
        data_file("naturalstories", "x.tsv")


def test_missing_file_in_data_dir_says_what_and_how_to_fix(tmp_path):
    with pytest.raises(CorpusDataError, match=r"all_stories\.tok: file not found") as caught:
        load("naturalstories", data_dir=tmp_path)
    message = str(caught.value)
    assert "expected: 119005 bytes with sha256 0e4e9bd4" in message
    assert "has no naturalstories/ folder" in message
    assert "PHASEWATCH_DATA" in message


def test_data_dir_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(CorpusDataError, match=r"nowhere: `data_dir` is not a folder"):
        load("naturalstories", data_dir=tmp_path / "nowhere")


# --- dependencies ---------------------------------------------------------------------------


def _conllx_sentences() -> list[list[list[str]]]:
    text = (NS_DIR / ns.PARSES_PATH).read_text(encoding="utf-8")
    return [[t.split("\t") for t in block.splitlines()] for block in text.strip().split("\n\n")]


def _word_of(token: list[str]) -> tuple[int, int]:
    story, word = token[9].removeprefix("TokenId=").split(".")[:2]
    return int(story), int(word)


def test_one_arc_per_corpus_word(corpus, arcs):
    assert list(arcs.columns) == ["story", "position", "head_position", "relation"]
    assert len(arcs) == len(corpus)
    pd.testing.assert_frame_equal(arcs[["story", "position"]], corpus.frame[["story", "position"]])


def test_heads_lie_in_the_story_and_are_never_the_word_itself(corpus, arcs):
    story_length = corpus.frame.groupby("story").size()
    limit = arcs["story"].map(story_length)
    assert arcs["head_position"].between(0, limit).all()
    assert (arcs["head_position"] != arcs["position"]).all()
    assert (arcs["relation"].str.len() > 0).all()


def test_one_root_per_sentence_and_no_cycles(arcs):
    assert (arcs["head_position"] == 0).sum() == len(_conllx_sentences())
    for _, story in arcs.groupby("story"):
        head = dict(zip(story["position"], story["head_position"], strict=True))
        for start in head:
            seen, node = set(), start
            while node != 0:
                assert node not in seen, f"cycle through word {start}"
                seen.add(node)
                node = head[node]


def test_single_token_words_keep_their_ud_arc(arcs):
    by_word = {
        (row.story, row.position): (row.head_position, row.relation)
        for row in arcs.itertuples(index=False)
    }
    checked = 0
    for sentence in _conllx_sentences():
        words = Counter(_word_of(t) for t in sentence)
        for token in sentence:
            word = _word_of(token)
            if words[word] != 1:
                continue
            head = int(token[6])
            expected_head = 0 if head == 0 else _word_of(sentence[head - 1])[1]
            assert by_word[word] == (expected_head, token[7])
            checked += 1
    assert checked > 8000


def test_words_with_letters_take_a_non_punctuation_arc(corpus, arcs):
    # 'The = `` + The: the quote's punct arc would hide the det arc of the word.
    merged = arcs.merge(corpus.frame, on=["story", "position"])
    has_letter = merged["word"].str.contains(r"[A-Za-z0-9]")
    assert (merged.loc[has_letter, "relation"] != "punct").all()
    england = merged[(merged["story"] == 1) & (merged["word"] == "England,")].iloc[0]
    assert (
        merged.set_index(["story", "position"]).loc[(1, england.head_position), "word"] == "North"
    )


def test_misaligned_parse_reports_word_counts_per_story(corpus, arcs, tmp_path):
    words = corpus.frame[["story", "position", "word"]]
    with pytest.raises(CorpusDataError, match=r"story 3: 1040 vs 1039"):
        ns._check_alignment(arcs.drop(index=arcs.index[arcs["story"] == 3][-1]), words, tmp_path)


def test_malformed_conllx_line_is_named(tmp_path):
    path = tmp_path / "bad.conllx"
    path.write_text("1\tIf\t_\tIN\tIN\t_\t0\troot\t_\tTokenId=1.1\n2\tyou\t_\tPRP\n", "utf-8")
    with pytest.raises(CorpusDataError, match=r"line 2 is not a CoNLL-X token line: 4 fields"):
        ns._read_conllx(path)


# --- load_tsv -------------------------------------------------------------------------------


def test_load_tsv_reads_own_column_names_and_sorts(corpus, tmp_path):
    part = corpus.frame[corpus.frame["story"].isin([2, 7])]
    shuffled = part.sample(frac=1.0, random_state=1)
    own = shuffled.rename(
        columns={"story": "text_id", "position": "idx", "word": "form", "rt": "RT"}
    )
    own["text_id"] = "story-" + own["text_id"].astype(str)
    path = tmp_path / "mine.tsv"
    own.to_csv(path, sep="\t", index=False)
    mine = load_tsv(
        path, story="text_id", position="idx", word="form", rt="RT", n_readers="n_readers"
    )
    assert mine.name == "mine"
    assert mine.stories == ["story-2", "story-7"]
    np.testing.assert_allclose(mine.frame["rt"], part["rt"])
    assert mine.frame["word"].tolist() == part["word"].tolist()
    assert mine.texts["story-2"] == corpus.texts[2]


def test_load_tsv_eye_tracking_corpus_defaults_to_2_previous_words(tmp_path):
    path = tmp_path / "et.tsv"
    path.write_text("story\tposition\tword\trt\ns\t1\tThe\t210\ns\t2\tcat\t250\n", "utf-8")
    assert load_tsv(path, measure="eye tracking: gaze duration").default_spillover == 2
    assert load_tsv(path).default_spillover == 4
    assert load_tsv(path, measure="maze", default_spillover=1).default_spillover == 1


def test_load_tsv_keeps_null_and_quotes_as_words(tmp_path):
    path = tmp_path / "words.tsv"
    words = ["null", "NA", '"Yes,"', "'What", "nan", "''"]
    rows = [f"s\t{i}\t{w}\t{300 + i}" for i, w in enumerate(words, start=1)]
    path.write_text("story\tposition\tword\trt\n" + "\n".join(rows) + "\n", "utf-8")
    mine = load_tsv(path)
    assert mine.frame["word"].tolist() == words
    assert mine.texts["s"] == " ".join(words)


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        ("story\tposition\tword\trt\n1\t1\ta\t300\n", {"rt": "RT"}, r"lacks the columns \['RT'\]"),
        (
            "story\tposition\tword\trt\n1\t1\ta\t300\n1\t2\tb\tslow\n",
            {},
            r"column 'rt' has 1 values that are not finite numbers(.|\n)*line 3: 'slow'",
        ),
        (
            "story\tposition\tword\trt\n1\t1\ta\t300\n1\t3\tb\t310\n",
            {},
            r"positions are not 1\.\.n(.|\n)*story 1",
        ),
        ("story\tposition\tword\trt\n1\t1\t\t300\n", {}, r"has 1 empty words(.|\n)*line 2"),
        ("", {}, r"cannot be parsed as a table"),
    ],
)
def test_load_tsv_errors_name_the_problem(tmp_path, body, kwargs, message):
    path = tmp_path / "mine.tsv"
    path.write_text(body, "utf-8")
    with pytest.raises(CorpusDataError, match=re.compile(message)) as caught:
        load_tsv(path, **kwargs)
    assert str(caught.value).startswith(str(path))


def test_novels_resolve_through_their_manifest():
    novels_dir = DATA_ROOT / "english-novels-pd"
    if not novels_dir.is_dir():
        pytest.skip("PHASEWATCH_DATA holds no english-novels-pd/")
    files = data_files("english-novels-pd")
    on_disk = {str(p.relative_to(novels_dir)) for p in (novels_dir / "corpus").glob("*.txt")}
    assert set(files) == on_disk
    assert len(files) == 25
    assert all(path == novels_dir / relpath for relpath, path in files.items())


# --- load_tsv: bad values and line numbers (issue 9) ----------------------------------------

_HEADER = "story\tposition\tword\trt\n"


def _load_error(tmp_path: Path, body: bytes | str, **kwargs) -> str:
    path = tmp_path / "mine.tsv"
    if isinstance(body, str):
        path.write_text(body, "utf-8")
    else:
        path.write_bytes(body)
    with pytest.raises(CorpusDataError) as caught:
        load_tsv(path, **kwargs)
    assert str(caught.value).startswith(str(path))
    return str(caught.value)


def test_load_tsv_refuses_negative_reading_times_naming_their_lines(tmp_path):
    body = _HEADER + "s\t1\tThe\t310\ns\t2\tcat\t-12\ns\t3\tsat.\t-0.5\ns\t4\tOn\t300\n"
    message = _load_error(tmp_path, body)
    assert "column 'rt' has 2 negative values" in message
    assert "line 3: -12; line 4: -0.5" in message
    assert "ms" in message


def test_load_tsv_keeps_a_zero_reading_time_and_the_regression_drops_it(tmp_path):
    from phasewatch.measures.delta_loglik import delta_loglik

    rng = np.random.default_rng(0)
    n = 120
    surprisal = rng.gamma(2.0, 2.0, n)
    rt = 300 + 12 * surprisal + rng.normal(0, 5, n)
    rt[[30, 77]] = 0.0  # two skipped words
    rows = [f"s\t{i + 1}\tw{i % 7}\t{float(rt[i])!r}" for i in range(n)]
    path = tmp_path / "zeros.tsv"
    path.write_text(_HEADER + "\n".join(rows) + "\n", "utf-8")
    mine = load_tsv(path)
    assert len(mine) == n and (mine.frame["rt"] == 0).sum() == 2
    frame = mine.frame.assign(surprisal=surprisal)
    result = delta_loglik(frame, spillover=0, baseline=(), return_per_word=True)
    assert result.n == n - 2
    assert 30 not in result.per_word.index and 77 not in result.per_word.index


def test_load_tsv_line_numbers_count_blank_lines(tmp_path):
    body = _HEADER + "s\t1\tThe\t310\n\n\ns\t2\tcat\tslow\n"  # the bad row is line 5
    message = _load_error(tmp_path, body)
    assert "line 5: 'slow'" in message


def test_load_tsv_line_numbers_count_blank_lines_with_crlf_and_a_blank_first_line(tmp_path):
    body = "\r\n" + _HEADER.replace("\n", "\r\n") + "s\t1\tThe\t310\r\n \r\ns\t2\t\t300\r\n"
    message = _load_error(tmp_path, body)
    assert "has 1 empty words" in message and "line 5" in message


def test_load_tsv_names_the_lines_of_a_repeated_position(tmp_path):
    body = _HEADER + "s\t1\tThe\t310\ns\t2\tcat\t320\n\ns\t2\tsat.\t330\nt\t1\tA\t300\n"
    message = _load_error(tmp_path, body)
    assert "story 's': position 2 on lines 3 and 5" in message


def test_load_tsv_names_the_lines_around_a_gap(tmp_path):
    body = _HEADER + "s\t1\tThe\t310\ns\t2\tcat\t320\ns\t5\tsat.\t330\n"
    message = _load_error(tmp_path, body)
    assert "story 's': no position 3, 4 (line 3 has 2, line 4 has 5)" in message


def test_load_tsv_names_positions_below_1(tmp_path):
    body = _HEADER + "s\t0\tThe\t310\ns\t1\tcat\t320\n"
    message = _load_error(tmp_path, body)
    assert "story 's': position 0 on line 2 (positions start at 1)" in message


def test_load_tsv_names_the_line_and_bytes_that_are_not_utf8(tmp_path):
    body = (_HEADER + "s\t1\tThe\t310\n\ns\t2\tcaf\xe9\t320\n").encode("latin-1")
    message = _load_error(tmp_path, body)
    assert "not UTF-8" in message
    assert "line 4, byte 8: 0xe9" in message
    assert "encoding=" in message
    mine = load_tsv(tmp_path / "mine.tsv", encoding="latin-1")
    assert mine.frame["word"].tolist() == ["The", "café"]


def test_load_tsv_names_a_row_with_the_wrong_number_of_fields(tmp_path):
    body = _HEADER + "s\t1\tThe\t310\n\ns\t2\tcat\t320\textra\ns\t3\tsat.\n"
    message = _load_error(tmp_path, body)
    assert "line 4: 5 fields; line 5: 3 fields" in message
    assert "4 fields" in message  # the header's count


def test_load_tsv_refuses_a_repeated_column_name_and_an_unknown_encoding(tmp_path):
    body = "story\tposition\tword\trt\trt\ns\t1\tThe\t310\t311\n"
    message = _load_error(tmp_path, body)
    assert "repeats the column names ['rt']" in message
    with pytest.raises(ValueError, match=r"`encoding` 'no-such-codec' is not a codec"):
        load_tsv(tmp_path / "mine.tsv", encoding="no-such-codec")

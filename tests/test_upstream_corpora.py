"""Loaders of public corpora in their upstream layout (Provo, UCL, Brown SPR), on small fixtures.

Expected numbers are recomputed from the fixture files with the csv module (independently of the
loaders), and a few are checked by hand.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path
from statistics import mean

import pytest

import phasewatch.corpora as corpora
from phasewatch.corpora import CorpusDataError, brown, geco, provo, registry, ucl
from phasewatch.corpora.schema import READER_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures"
PROVO_EYE = FIXTURES / "provo" / provo.EYE_FILE
UCL_EYE = FIXTURES / "ucl" / ucl.EYE_FILE
UCL_SPR = FIXTURES / "ucl" / ucl.SPR_FILE
BROWN = FIXTURES / "brown" / brown.FILE


def independent_means(
    path: Path,
    *,
    story: str,
    position: str,
    rt: str,
    sep: str = ",",
    encoding: str = "utf-8",
    offset: int = 0,
    bounds: tuple[float, float] | None = None,
) -> dict[tuple[int, int], tuple[float, int]]:
    """(story, position) -> (mean of the readings > 0 within bounds, their number)."""
    readings: dict[tuple[int, int], list[float]] = {}
    with open(path, encoding=encoding, newline="") as f:
        for row in csv.DictReader(f, delimiter=sep):
            if row[position] in ("", "NA"):
                continue
            key = (int(row[story]) + offset, int(row[position]) + offset)
            value = 0.0 if row[rt] in ("", "NA") else float(row[rt])
            kept = value > 0 and (bounds is None or bounds[0] <= value <= bounds[1])
            readings.setdefault(key, [])
            if kept:
                readings[key].append(value)
    return {k: (mean(v) if v else 0.0, len(v)) for k, v in readings.items()}


def by_word(corpus) -> dict[tuple[int, int], tuple[float, int]]:
    f = corpus.frame
    return {
        (int(s), int(p)): (float(r), int(n))
        for s, p, r, n in zip(f["story"], f["position"], f["rt"], f["n_readers"], strict=True)
    }


def assert_same(got: dict, expected: dict) -> None:
    """Same words; rt equal to 1e-9 ms, n_readers equal."""
    assert sorted(got) == sorted(expected)
    for key, (rt, n) in expected.items():
        assert got[key][0] == pytest.approx(rt, abs=1e-9) and got[key][1] == n, key


def copy_fixture(tmp_path: Path, corpus: str) -> Path:
    target = tmp_path / corpus
    shutil.copytree(FIXTURES / corpus, target)
    return target


# --- Provo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", list(provo.MEASURES))
def test_provo_means_match_an_independent_computation(measure):
    corpus = provo.load(data_dir=FIXTURES, measure=measure)
    expected = independent_means(
        PROVO_EYE,
        story="Text_ID",
        position="Word_Number",
        rt=provo.MEASURES[measure],
        encoding="latin-1",
    )
    got = by_word(corpus)
    assert len(got) == 20  # every word of the two passages, with or without readings
    assert got.pop((2, 1)) == (0.0, 0)  # 'Rain': no reader has a row for it
    assert_same(got, expected)
    assert corpus.measure == f"eye tracking: {measure}"
    assert corpus.default_spillover == 2 and corpus.language == "en"


def test_provo_hand_computed_first_pass_means():
    corpus = provo.load(data_dir=FIXTURES / "provo")  # the corpus folder itself works too
    got = by_word(corpus)
    assert got[(1, 1)] == (240.0, 3)  # (210 + 240 + 270) / 3
    assert got[(1, 7)] == (300.0, 2)  # reader 2 skipped: (270 + 330) / 2, not / 3
    assert got[(1, 12)] == (335.0, 2)  # reader 3's row has no Word_Number: dropped
    assert got[(2, 4)] == (0.0, 0)  # nobody fixated it: rt 0, left out of the regression
    assert corpus.extras["rows_without_ids"] == 1
    assert corpus.extras["word_mismatches"] == []
    assert corpus.texts[1] == "The old dog doesn't bark, but the young cat sleeps all day."


def test_provo_measure_choice_changes_the_numbers():
    first = by_word(provo.load(data_dir=FIXTURES, measure="first fixation"))
    total = by_word(provo.load(data_dir=FIXTURES, measure="Eye-tracking: total reading time"))
    assert first[(1, 1)] == (220.0, 3)  # first fixation = first run - 20 ms in the fixture
    # Skipped in the first pass but read on a regression: total reading time counts 120 ms.
    assert total[(1, 7)] == (240.0, 3)  # (270 + 120 + 330) / 3


def test_provo_bounds_and_min_readers():
    got = by_word(provo.load(data_dir=FIXTURES, min_rt=80, max_rt=2000))
    assert got[(1, 3)] == (275.0, 2)  # 40 ms dropped: (260 + 290) / 2
    assert got[(1, 9)] == (305.0, 2)  # 2500 ms dropped: (290 + 320) / 2
    unbounded = by_word(provo.load(data_dir=FIXTURES))
    assert unbounded[(1, 9)][0] == pytest.approx((290 + 320 + 2500) / 3)
    strict = by_word(provo.load(data_dir=FIXTURES, min_readers=3))
    assert strict[(1, 7)] == (0.0, 2) and strict[(1, 1)] == (240.0, 3)


def test_provo_keeps_the_per_reader_rows():
    corpus = provo.load(data_dir=FIXTURES)
    readers = corpus.readers
    assert list(readers.columns) == [*READER_COLUMNS, "kept"]
    assert len(readers) == 56  # 57 data rows, one without a Word_Number
    row = readers[(readers["story"] == 1) & (readers["position"] == 7)].sort_values("rt")
    assert row["rt"].tolist() == [0.0, 270.0, 330.0]  # the skip is kept, as 0 ms
    assert row["kept"].tolist() == [False, True, True]  # and left out of the mean
    bounded = provo.load(data_dir=FIXTURES, max_rt=2000).readers
    assert int((~bounded["kept"]).sum()) == int((~readers["kept"]).sum()) + 1  # the 2500 ms


def test_provo_reads_the_latin1_apostrophe_as_the_paper_does():
    assert b"doesn\xd5t" in PROVO_EYE.read_bytes()  # the fixture has the upstream byte
    words = provo.load(data_dir=FIXTURES).frame["word"].tolist()
    assert "doesn't" in words and not any("\u00d5" in w for w in words)


def test_provo_warns_where_the_two_files_disagree_on_a_word(tmp_path):
    folder = copy_fixture(tmp_path, "provo")
    path = folder / provo.EYE_FILE
    path.write_bytes(path.read_bytes().replace(b",1_5,1,5,1,5,bark,", b",1_5,1,5,1,5,cat,"))
    with pytest.warns(UserWarning, match=r"at 1 places.*\(1, 5, 'cat', 'bark,'\)"):
        corpus = provo.load(data_dir=folder)
    assert corpus.extras["word_mismatches"] == [(1, 5, "cat", "bark,")]
    assert by_word(corpus)[(1, 5)] == by_word(provo.load(data_dir=FIXTURES))[(1, 5)]


def test_provo_fixture_words_agree_without_a_warning(recwarn):
    provo.load(data_dir=FIXTURES)
    assert not [w for w in recwarn if "Provo" in str(w.message)]


def test_provo_unknown_measure_lists_the_columns():
    with pytest.raises(ValueError, match=r"Provo provides.*IA_FIRST_RUN_DWELL_TIME.*go-past"):
        provo.load(data_dir=FIXTURES, measure="go-past time")


def test_provo_missing_file_says_where_to_get_and_put_it(tmp_path):
    with pytest.raises(CorpusDataError, match=r"(?s)file not found.*osf\.io/sjefs.*data_dir"):
        provo.load(data_dir=tmp_path)


def test_provo_without_data_dir_or_environment_says_what_to_set(monkeypatch):
    monkeypatch.delenv("PHASEWATCH_DATA", raising=False)
    with pytest.raises(CorpusDataError, match=r"(?s)neither data_dir= nor \$PHASEWATCH_DATA"):
        provo.load()


def test_provo_found_under_phasewatch_data(tmp_path, monkeypatch):
    copy_fixture(tmp_path, "provo")
    monkeypatch.setenv("PHASEWATCH_DATA", str(tmp_path))
    assert by_word(corpora.load("provo"))[(1, 1)] == (240.0, 3)


def test_provo_missing_column_names_it(tmp_path):
    folder = copy_fixture(tmp_path, "provo")
    path = folder / provo.EYE_FILE
    path.write_bytes(path.read_bytes().replace(b"IA_FIRST_RUN_DWELL_TIME", b"IA_FIRST_RUN", 1))
    with pytest.raises(CorpusDataError, match=r"lacks the columns \['IA_FIRST_RUN_DWELL_TIME'\]"):
        provo.load(data_dir=folder)


def test_provo_bad_reading_names_line_and_column(tmp_path):
    folder = copy_fixture(tmp_path, "provo")
    path = folder / provo.EYE_FILE
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",220,220,", b",22O,220,")  # letter O, line 3 of the file
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusDataError, match=r"line 3, column 'IA_FIRST_RUN_DWELL_TIME': '22O'"):
        provo.load(data_dir=folder)


# --- UCL -------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", [m for m in ucl.MEASURES if m != "self-paced reading"])
def test_ucl_eye_tracking_means_match_an_independent_computation(measure):
    corpus = ucl.load(data_dir=FIXTURES, measure=measure)
    expected = independent_means(
        UCL_EYE, story="sent_nr", position="word_pos", rt=ucl.MEASURES[measure], sep="\t"
    )
    assert_same(by_word(corpus), expected)
    assert corpus.measure == f"eye tracking: {measure}" and corpus.default_spillover == 2


def test_ucl_hand_computed_and_skips():
    got = by_word(ucl.load(data_dir=FIXTURES))
    assert got[(2, 1)] == (205.0, 3)  # RTfirstpass 195, 205, 215
    assert got[(2, 4)] == (260.0, 2)  # subject 2 did not fixate it (0 ms): (240 + 280) / 2
    assert got[(5, 7)] == (0.0, 0)  # nobody fixated 'a'


def test_ucl_self_paced_reading_uses_the_other_file_and_natural_stories_bounds():
    corpus = corpora.load("ucl-spr", data_dir=FIXTURES)
    expected = independent_means(
        UCL_SPR, story="sent_nr", position="word_pos", rt="RT", sep="\t", bounds=(100, 3000)
    )
    assert_same(by_word(corpus), expected)
    got = by_word(corpus)
    assert got[(2, 3)] == (371.0, 2)  # 60 ms dropped: (361 + 381) / 2
    assert got[(5, 2)] == (344.0, 2)  # 3500 ms dropped: (334 + 354) / 2
    assert corpus.measure == "self-paced reading" and corpus.default_spillover == 4
    assert corpus.name == "ucl-spr"


def test_ucl_has_no_total_reading_time():
    with pytest.raises(ValueError, match=r"UCL provides.*RTfirstpass.*got 'total reading time'"):
        ucl.load(data_dir=FIXTURES, measure="total reading time")
    with pytest.raises(ValueError, match="must be 'self-paced reading'"):
        ucl.load_spr(data_dir=FIXTURES, measure="first fixation")


def test_ucl_readers_disagreeing_on_a_word_is_an_error(tmp_path):
    folder = copy_fixture(tmp_path, "ucl")
    path = folder / ucl.EYE_FILE
    text = path.read_text().split("\n")
    text[2] = text[2].replace("\tman\t", "\tmen\t")  # subject 1, sentence 2, word 2
    path.write_text("\n".join(text))
    with pytest.raises(
        CorpusDataError, match=r"(?s)differs between readers.*'man'.*'men'|'men'.*'man'"
    ):
        ucl.load(data_dir=folder)


def test_ucl_file_not_in_its_encoding_names_the_line(tmp_path):
    folder = copy_fixture(tmp_path, "ucl")
    path = folder / ucl.EYE_FILE
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"\tsaw\t", b"\ts\xe5w\t")  # Latin-1 å in a UTF-8 file
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusDataError, match=r"(?s)is not utf-8 text.*line 4, byte \d+: 0xe5"):
        ucl.load(data_dir=folder)


# --- Brown SPR -------------------------------------------------------------------------------


def test_brown_means_match_an_independent_computation():
    corpus = brown.load(data_dir=FIXTURES)
    expected = independent_means(
        BROWN, story="text_id", position="text_pos", rt="time", offset=1, bounds=(100, 3000)
    )
    assert_same(by_word(corpus), expected)
    assert corpus.measure == "self-paced reading" and corpus.default_spillover == 4


def test_brown_hand_computed_ids_bounds_and_spaces():
    corpus = brown.load(data_dir=FIXTURES / "brown")
    got = by_word(corpus)
    assert got[(1, 1)] == (305.0, 3)  # text_id 0, text_pos 0: (280 + 305 + 330) / 3
    assert got[(1, 3)] == (329.5, 2)  # 50 ms dropped: (317 + 342) / 2
    assert got[(2, 5)] == (316.5, 2)  # 4000 ms dropped: (304 + 329) / 2
    assert corpus.texts[1] == "In 1960 the town of Hanover, N.H. voted for the new road."
    assert corpus.extras["words_with_spaces"] == 1
    unbounded = by_word(brown.load(data_dir=FIXTURES, min_rt=None, max_rt=None))
    assert unbounded[(1, 3)] == pytest.approx(((50 + 317 + 342) / 3, 3))


def test_brown_gap_in_positions_is_an_error(tmp_path):
    folder = copy_fixture(tmp_path, "brown")
    path = folder / brown.FILE
    lines = path.read_text().split("\n")
    kept = [line for line in lines if ",0,4," not in line]  # 'of' (text 0, position 4) for all
    path.write_text("\n".join(kept))
    with pytest.raises(CorpusDataError, match=r"story 1: no position 5"):
        brown.load(data_dir=folder)


# --- GECO ------------------------------------------------------------------------------------


def geco_independent_means(path: Path, column: str) -> dict[tuple[int, int], tuple[float, int]]:
    """Per (part, place in part) mean of the non-'.' readings > 0, straight from the workbook."""
    openpyxl = pytest.importorskip("openpyxl")
    rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(values_only=True))
    data = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    places = sorted({(r["PART"], r["TRIAL"], r["WORD_ID_WITHIN_TRIAL"]) for r in data})
    rank = {}
    for part, trial, within in places:
        rank[(part, trial, within)] = sum(1 for p, *_ in rank if p == part) + 1
    readings: dict[tuple[int, int], list[float]] = {}
    for r in data:
        key = (r["PART"], rank[(r["PART"], r["TRIAL"], r["WORD_ID_WITHIN_TRIAL"])])
        readings.setdefault(key, [])
        if r[column] != "." and r[column] > 0:
            readings[key].append(float(r[column]))
    return {k: (mean(v) if v else 0.0, len(v)) for k, v in readings.items()}


@pytest.mark.parametrize("measure", list(geco.MEASURES))
def test_geco_means_match_an_independent_computation(measure):
    corpus = geco.load(data_dir=FIXTURES, measure=measure)
    path = FIXTURES / "geco" / "MonolingualReadingData.xlsx"
    assert_same(by_word(corpus), geco_independent_means(path, geco.MEASURES[measure]))
    assert corpus.measure == f"eye tracking: {measure}" and corpus.language == "en"


def test_geco_hand_computed_places_and_skips():
    corpus = geco.load(data_dir=FIXTURES)
    got = by_word(corpus)
    assert got[(1, 6)] == (330.0, 3)  # 'John', first word of the part's second screen
    assert got[(1, 7)] == (350.0, 2)  # reader pp01 did not fixate it ('.'): (340 + 360) / 2
    assert got[(2, 2)] == (0.0, 0)  # nobody fixated 'smiled.'
    assert corpus.texts[1] == "It was a fine morning. John had gone out early."
    assert corpus.texts[2] == "Poirot smiled."  # part 2 starts at position 1 (its trial is 7)


def test_geco_dutch_readers_are_dutch_text():
    corpus = corpora.load("geco-nl", data_dir=FIXTURES)
    assert corpus.language == "nl" and corpus.name == "geco-nl"
    assert corpus.texts[1] == "Het was een mooie ochtend."
    with pytest.raises(ValueError, match=r"`group` must be one of \['monolingual'"):
        geco.load(data_dir=FIXTURES, group="dutch")


def test_each_geco_group_has_its_own_name_so_two_can_be_measured_together():
    # the L2 group was also named "geco": CorporaPPP refuses two corpora of one name
    l2 = corpora.load("geco-l2", data_dir=FIXTURES)
    assert l2.name == "geco-l2" and l2.language == "en"
    assert geco.load(data_dir=FIXTURES, group="bilingual-l2").name == "geco-l2"
    english = corpora.load("geco", data_dir=FIXTURES)
    assert {english.name, l2.name} == {"geco", "geco-l2"}


def test_geco_without_openpyxl_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(ImportError, match=r"pip install 'phasewatch\[corpora\]'"):
        geco.load(data_dir=FIXTURES)


def test_geco_missing_column_names_it(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    folder = copy_fixture(tmp_path, "geco")
    path = folder / "MonolingualReadingData.xlsx"
    book = openpyxl.load_workbook(path)
    header = next(book.worksheets[0].iter_rows(min_row=1, max_row=1))
    next(c for c in header if c.value == "WORD_GAZE_DURATION").value = "GAZE"
    book.save(path)
    with pytest.raises(CorpusDataError, match=r"lacks the columns \['WORD_GAZE_DURATION'\]"):
        geco.load(data_dir=folder)


def test_geco_not_a_workbook_is_a_clear_error(tmp_path):
    (tmp_path / "MonolingualReadingData.xlsx").write_text("PP_NR,PART\n")
    with pytest.raises(CorpusDataError, match="is not an Excel workbook"):
        geco.load(data_dir=tmp_path)


# --- Registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "spillover"),
    [("provo", 2), ("ucl", 2), ("ucl-spr", 4), ("brown", 4), ("geco", 2), ("geco-nl", 2)],
)
def test_upstream_corpora_are_registered_without_a_manifest(name, spillover):
    entry = corpora.corpus_entry(name)
    assert entry.default_spillover == spillover and not entry.manifest
    assert name in corpora.reading_time_corpora() and name not in corpora.known_corpora()
    corpus = corpora.load(name, data_dir=FIXTURES)
    assert corpus.default_spillover == spillover == entry.default_spillover
    assert corpus.license and corpus.citation


# --- At scale: Natural Stories written in each upstream layout ----------------------------------


def _write_ns_layout(corpus: str, ns, folder: Path) -> None:
    """Natural Stories as two readers (mean ± 10 ms) in the upstream layout of ``corpus``."""
    f = ns.frame
    rows = [
        (reader, int(s), int(p), w, float(rt) + delta)
        for reader, delta in (("r1", -10.0), ("r2", 10.0))
        for s, p, w, rt in zip(f["story"], f["position"], f["word"], f["rt"], strict=True)
    ]
    folder.mkdir()
    if corpus == "provo":
        with open(folder / provo.NORMS_FILE, "w", newline="", encoding="latin-1") as out:
            w = csv.writer(out)
            w.writerow(["Word_Unique_ID", "Text_ID", "Text", "Word_Number", "Word"])
            w.writerows((f"{s}_1", s, t, 1, "x") for s, t in ns.texts.items())
        with open(folder / provo.EYE_FILE, "w", newline="", encoding="latin-1") as out:
            w = csv.writer(out)
            w.writerow(
                ["Participant_ID", "Text_ID", "Word_Number", "Word", "IA_FIRST_RUN_DWELL_TIME"]
            )
            w.writerows((r, s, p, word, rt) for r, s, p, word, rt in rows)
    elif corpus == "ucl":
        with open(folder / ucl.EYE_FILE, "w", newline="") as out:
            w = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
            w.writerow(["subj_nr", "sent_nr", "word_pos", "word", "RTfirstpass"])
            w.writerows((int(r[1]), s, p, word, rt) for r, s, p, word, rt in rows)
    else:
        with open(folder / brown.FILE, "w", newline="") as out:
            w = csv.writer(out, lineterminator="\n")
            w.writerow(["", "subject", "text_id", "text_pos", "word", "time"])
            w.writerows(
                (i, r, s - 1, p - 1, word, rt) for i, (r, s, p, word, rt) in enumerate(rows)
            )


@pytest.mark.parametrize("name", ["provo", "ucl", "brown"])
def test_natural_stories_in_each_upstream_layout_loads_back_exactly(name, ns_corpus, tmp_path):
    _write_ns_layout(name, ns_corpus, tmp_path / name)
    loaded = corpora.load(name, data_dir=tmp_path, min_rt=None, max_rt=None)
    ns = ns_corpus.frame
    assert loaded.frame["word"].tolist() == ns["word"].tolist()  # quotes, commas, all 10,256
    assert loaded.frame["story"].tolist() == ns["story"].tolist()
    assert (loaded.frame["rt"] - ns["rt"]).abs().max() < 1e-9
    assert set(loaded.frame["n_readers"]) == {2}
    assert loaded.texts == ns_corpus.texts


# --- The recipes page's examples ---------------------------------------------------------------

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "corpora-recipes.md"


def recipe_code(section: str) -> str:
    """The python blocks of one ``## `` section of docs/corpora-recipes.md."""
    text = RECIPES.read_text(encoding="utf-8")
    part = re.split(r"^## ", text, flags=re.M)
    body = next(p for p in part if p.startswith(section))
    return "\n".join(re.findall(r"```python\n(.*?)```", body, flags=re.S))


@pytest.mark.parametrize("section", ["Provo", "GECO", "UCL", "Brown self-paced reading"])
def test_the_recipes_loader_examples_run_on_the_fixtures(section, monkeypatch):
    monkeypatch.setenv("PHASEWATCH_DATA", str(FIXTURES))
    code = recipe_code(section)
    assert "load(" in code
    scope: dict = {}
    exec(compile(code, f"docs/corpora-recipes.md ({section})", "exec"), scope)
    loaded = [v for v in scope.values() if isinstance(v, corpora.ReadingTimeCorpus)]
    assert loaded and all(len(c) > 0 for c in loaded)


def test_the_meco_recipe_loads_its_tsv_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.chdir(tmp_path)
    # What the R step writes (write.table, quote = FALSE, na = ""): two readers, one skip.
    rows = ["story\tposition\tword\treader\trt"] + [
        f"1\t{p}\t{w}\t{r}\t{rt}"
        for r, times in (("en_1", (250, 0, 300)), ("en_2", (270, "", 320)))
        for p, (w, rt) in enumerate(zip(("The", "old", "dog."), times, strict=True), start=1)
    ]
    (tmp_path / "meco_en.tsv").write_text("\n".join(rows) + "\n")
    exec(compile(recipe_code("MECO"), "docs/corpora-recipes.md (MECO)", "exec"), {})
    corpus = corpora.load("meco-en")
    assert corpus.frame["rt"].tolist() == [260.0, 0.0, 310.0]  # skips (0, empty) left out
    assert corpus.default_spillover == 2 and corpus.language == "en"


def test_the_dundee_recipe_converts_per_text_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dundee").mkdir()
    (tmp_path / "dundee" / "tx01wrdp_avg.txt").write_text("The\t201.5\ncat\t250\n\n")
    (tmp_path / "dundee" / "tx02wrdp_avg.txt").write_text("Dogs\t300\n")
    scope: dict = {}
    exec(compile(recipe_code("Dundee"), "docs/corpora-recipes.md (Dundee)", "exec"), scope)
    dundee = scope["dundee"]
    assert dundee.texts == {1: "The cat", 2: "Dogs"}
    assert dundee.frame["rt"].tolist() == [201.5, 250.0, 300.0]
    assert dundee.default_spillover == 2

"""Offline analysis: which checkpoints, which steps, which corpus arcs, what is written."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import sys

import pandas as pd
import pytest
import torch
from tiny_models import tiny_gpt2

from phasewatch import keys
from phasewatch.analysis import (
    TABLE_CSV,
    TABLE_PARQUET,
    analyze_checkpoints,
    checkpoint_sources,
    read_table,
    step_from_name,
)
from phasewatch.cli import main as cli_main
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.syntactic import syntactic_scores
from phasewatch.models import as_probe_model


@pytest.mark.parametrize(
    "name, step",
    [
        ("step=100.ckpt", 100),
        ("epoch=0-step=100.ckpt", 100),
        ("epoch=3-step=2500-val_loss=1.23.ckpt", 2500),
        ("checkpoint-100", 100),
        ("step1000", 1000),
        ("global_step1000", 1000),
        ("step_7", 7),
        ("last.ckpt", None),
        ("epoch=3.ckpt", None),
    ],
)
def test_the_step_is_read_from_the_checkpoint_name(name, step):
    assert step_from_name(name) == step


def _model_folder(path, vocab_size=300, seed=0):
    model = tiny_gpt2(vocab_size)
    with torch.no_grad():  # each checkpoint its own weights
        for p in model.parameters():
            p.add_(seed * 0.01)
    model.save_pretrained(path)
    return path


def test_a_folder_of_checkpoints_is_listed_in_training_order(tmp_path):
    for step in (1000, 20, 300):
        _model_folder(tmp_path / "run" / f"checkpoint-{step}")
    (tmp_path / "run" / "notes.txt").write_text("not a checkpoint")
    sources = checkpoint_sources([tmp_path / "run"])
    assert [s.step for s in sources] == [20, 300, 1000]  # as numbers, not "1000" < "20"
    assert [s.kind for s in sources] == ["pretrained"] * 3

    _model_folder(tmp_path / "bare" / "final")
    with pytest.raises(ValueError, match=r"training step of .*final.*give `steps=` \(--steps\)"):
        checkpoint_sources([tmp_path / "bare"])
    assert [s.step for s in checkpoint_sources([tmp_path / "bare"], steps=[7])] == [7]
    with pytest.raises(ValueError, match="`steps` has 2 values but the series has 1"):
        checkpoint_sources([tmp_path / "bare"], steps=[1, 2])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        checkpoint_sources([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint_sources([tmp_path / "missing"])
    with pytest.raises(ValueError, match="need both `repo`"):
        checkpoint_sources(revisions=["step1000"])


def _own_corpus(ns_corpus, with_arcs: bool) -> ReadingTimeCorpus:
    """Ten stories numbered 1..10 like Natural Stories' but with other text (each story's words
    reversed) and, optionally, its own arcs (each word headed by the word before it, two
    relations)."""
    frames = []
    for _, story in ns_corpus.frame.groupby("story", sort=True):
        story = story.iloc[::-1].reset_index(drop=True)
        story["position"] = range(1, len(story) + 1)
        frames.append(story[["story", "position", "word", "rt"]])
    frame = pd.concat(frames, ignore_index=True)
    arcs = None
    if with_arcs:
        arcs = frame[["story", "position"]].assign(
            head_position=frame["position"] - 1,
            relation=["root" if p == 1 else ("dep", "nmod")[p % 2] for p in frame["position"]],
        )
    return ReadingTimeCorpus("reversed", frame, dependencies=arcs)


def test_analyze_with_another_corpus_never_reads_the_natural_stories_parses(
    tmp_path, ns_corpus, ns_tokenizer, monkeypatch, caplog
):
    from phasewatch.corpora import naturalstories

    def refuse(*args, **kwargs):
        raise AssertionError("the Natural Stories parses were read for another corpus")

    monkeypatch.setattr(naturalstories, "_read_conllx", refuse)
    monkeypatch.setattr(naturalstories, "load_dependencies", refuse)
    folder = _model_folder(tmp_path / "checkpoint-5")
    corpus = _own_corpus(ns_corpus, with_arcs=True)
    result = analyze_checkpoints([folder], corpus=corpus, tokenizer=ns_tokenizer, ppp=False)
    (row,) = result.table.to_dict("records")
    assert row["step"] == 5 and pd.isna(row["tokens"])  # tokens unknown: left empty

    probe = as_probe_model(tiny_gpt2(300))
    own = syntactic_scores(probe, ns_tokenizer, corpus, corpus.dependencies, max_stories=2)
    parses = syntactic_scores(probe, ns_tokenizer, corpus, ns_corpus.dependencies, max_stories=2)
    assert row[keys.HEADS_SAS] == pytest.approx(float(own.sas), abs=1e-12)
    assert row[keys.HEADS_SAS] != pytest.approx(float(parses.sas), abs=1e-3)

    # a corpus without arcs: no syntactic score, one warning that says why and what to do
    caplog.set_level(logging.WARNING, logger="phasewatch")
    bare = _own_corpus(ns_corpus, with_arcs=False)
    result = analyze_checkpoints([folder], corpus=bare, tokenizer=ns_tokenizer, ppp=False)
    assert keys.HEADS_SAS not in result.table and keys.HEADS_SYNTACTIC_MAX not in result.table
    assert keys.HEADS_INDUCTION_MAX in result.table
    warned = [r.getMessage() for r in caplog.records if "dependency arcs" in r.getMessage()]
    assert len(warned) == 1 and "'reversed'" in warned[0] and "syntactic=False" in warned[0]


def test_the_command_writes_the_tidy_table_beside_the_history(tmp_path, ns_tokenizer, capsys):
    for step, seed in ((10, 0), (20, 1)):
        _model_folder(tmp_path / "run" / f"step{step}", seed=seed)
        ns_tokenizer.save_pretrained(tmp_path / "run" / f"step{step}")
    out = tmp_path / "out"
    args = ["analyze", str(tmp_path / "run"), "--out", str(out), "--quiet", "--no-syntactic"]
    args += ["--folds", "2", "--tokens-per-step", "100", "--corpus", "naturalstories"]
    assert cli_main(args) == 0
    printed = capsys.readouterr()
    assert "2 checkpoints analysed (2 measured now)" in printed.out
    table = read_table(out / TABLE_CSV)
    assert list(table.columns) == ["checkpoint", "step", "tokens", "metric", "value"]
    assert list(table["step"].unique()) == [10, 20]
    assert list(table["tokens"].unique()) == [1000, 2000]
    ppp = table[table["metric"] == keys.PPP_DELTA_LL]["value"]
    history = [json.loads(line) for line in (out / "phasewatch_history.jsonl").open()]
    measured = [r["values"][keys.PPP_DELTA_LL] for r in history if r["kind"] == "measurement"]
    assert list(ppp) == measured  # same numbers in both files, exactly
    assert (out / TABLE_PARQUET).exists() == (importlib.util.find_spec("pyarrow") is not None)

    assert cli_main([*args, "--quiet"]) == 0  # resumed: nothing new to measure
    assert "2 checkpoints analysed (0 measured now)" in capsys.readouterr().out
    assert read_table(out / TABLE_CSV).equals(table)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_the_parquet_table_equals_the_csv(tmp_path, ns_tokenizer):
    _model_folder(tmp_path / "checkpoint-3")
    result = analyze_checkpoints(
        [tmp_path / "checkpoint-3"], tokenizer=ns_tokenizer, ppp=False, out_dir=tmp_path / "o"
    )
    parquet = read_table(tmp_path / "o" / TABLE_PARQUET)
    assert parquet.equals(read_table(tmp_path / "o" / TABLE_CSV))
    assert parquet.equals(result.tidy)


def test_an_unavailable_device_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="`device` must be a torch device"):
        analyze_checkpoints([tmp_path], device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"no CUDA device .*device='cpu' \(--device cpu\)"):
            analyze_checkpoints([tmp_path], device="cuda")


def test_corpus_and_corpora_together_are_refused(tmp_path):
    _model_folder(tmp_path / "checkpoint-1")
    with pytest.raises(ValueError, match=r"give `corpus` .* or `corpora` .*, not both"):
        analyze_checkpoints([tmp_path / "checkpoint-1"], corpus="a", corpora=["a", "b"])


def test_several_corpora_give_each_corpus_its_own_keys_and_their_mean(
    tmp_path, ns_corpus, ns_tokenizer
):
    """Each corpus's keys equal an analysis of that corpus alone (its own default spillover);
    the mean and its SE are recomputed here; a resumed analysis replays the mean's paired test."""
    frame = ns_corpus.frame
    spr = ReadingTimeCorpus("spr", frame[frame["story"].isin([1, 2])].reset_index(drop=True))
    eye = ReadingTimeCorpus(
        "eye",
        frame[frame["story"].isin([3, 4])].reset_index(drop=True),
        measure="eye tracking: gaze duration",
    )
    for step, seed in ((10, 0), (20, 3)):
        _model_folder(tmp_path / "run" / f"step{step}", seed=seed)
    options = dict(tokenizer=ns_tokenizer, syntactic=False, folds=3, quiet=True)
    both = analyze_checkpoints([tmp_path / "run"], corpora=[spr, eye], **options).table
    alone = {
        c.name: analyze_checkpoints([tmp_path / "run"], corpus=c, **options).table
        for c in (spr, eye)
    }
    assert alone["eye"]["ppp/n_words"].iloc[0] > 0
    for name, table in alone.items():
        for key in (keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_SE, keys.PPP_DECLINE, keys.PPP_RISE):
            assert list(both[keys.with_prefix(key, name)]) == list(table[key]), (name, key)
    mean = (alone["spr"][keys.PPP_DELTA_LL] + alone["eye"][keys.PPP_DELTA_LL]) / 2
    se = (alone["spr"][keys.PPP_DELTA_LL_SE] ** 2 + alone["eye"][keys.PPP_DELTA_LL_SE] ** 2) ** 0.5
    assert list(both[keys.PPP_DELTA_LL]) == pytest.approx(list(mean), abs=1e-15)
    assert list(both[keys.PPP_DELTA_LL_SE]) == pytest.approx(list(se / 2), abs=1e-15)
    # the mean series' paired decline at step 20: mean of the two corpora's paired declines
    decline = (alone["spr"][keys.PPP_DECLINE] + alone["eye"][keys.PPP_DECLINE]) / 2
    assert list(both[keys.PPP_DECLINE]) == pytest.approx(list(decline), abs=1e-15)

    # resumed one checkpoint at a time: the mean's paired test replayed from the cache
    out = tmp_path / "resumed"
    analyze_checkpoints([tmp_path / "run" / "step20"], corpora=[spr, eye], out_dir=out, **options)
    resumed = analyze_checkpoints(
        [tmp_path / "run" / "step10"], corpora=[spr, eye], out_dir=out, **options
    )
    assert resumed.measured == 1
    pd.testing.assert_frame_equal(
        resumed.table.drop(columns="checkpoint"), both.drop(columns="checkpoint")
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet, shown", [(False, True), (True, False)])
def test_the_progress_bar_shows_on_a_terminal_unless_quiet(monkeypatch, quiet, shown):
    from phasewatch.analysis.run import _progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    for _ in _progress(["a", "b"], quiet):
        pass
    assert ("phasewatch analyze" in terminal.getvalue()) == shown
    assert "2/2" in terminal.getvalue() or not shown


def test_the_progress_bar_is_silent_without_a_terminal(monkeypatch):
    from phasewatch.analysis.run import _progress

    pipe = io.StringIO()  # isatty() is False, as for a log file or CI
    monkeypatch.setattr(sys, "stderr", pipe)
    for _ in _progress(["a"], quiet=False):
        pass
    assert pipe.getvalue() == ""

"""Offline analysis reproduces the online numbers; the report says what the history shows."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning_helpers import TinyLM, token_loader

from phasewatch import keys
from phasewatch.analyze import analyze_checkpoints
from phasewatch.callbacks import PPPMonitor
from phasewatch.cli import main as cli_main
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.detect import PeakEvent
from phasewatch.report import load_history, summarize_run, write_report
from phasewatch.report.history import HISTORY_FILE


def test_offline_analysis_of_checkpoints_matches_the_online_monitor(
    tmp_path, ns_corpus, ns_tokenizer, ns_token_ids
):
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    corpus = ReadingTimeCorpus("story 1", frame)
    online = PPPMonitor(corpus, steps=[3, 6], folds=5, strict=True)
    saver = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}"
    )
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_steps=6,
        callbacks=[online, saver],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(
        TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer), token_loader(ns_token_ids)
    )
    paths = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert len(paths) == 2

    result = analyze_checkpoints(
        paths[::-1],
        module=TinyLM,
        tokenizer=ns_tokenizer,
        corpus=corpus,
        folds=5,
        syntactic=False,
        out_dir=tmp_path / "offline",
    )
    assert list(result.table["step"]) == [3, 6]
    assert list(result.table["tokens"]) == [3 * 8 * 64, 6 * 8 * 64]
    online_ppp = [row[2] for row in online.history["ppp/delta_ll"]]
    assert list(result.table["ppp/delta_ll"]) == pytest.approx(online_ppp, abs=1e-12)
    for key in keys.PAIRED_KEYS[keys.PPP_DELTA_LL]:  # the paired peak test, offline = online
        online_values = [row[2] for row in online.history[key]]
        assert list(result.table[key]) == pytest.approx(online_values, abs=1e-12), key
    history = load_history(tmp_path / "offline")
    assert list(history.series["ppp/delta_ll"]["step"]) == [3, 6]
    assert len(history.heads) == 2 and history.heads[0][2]["induction"].shape == (2, 2)


def _write_history(path, ppp, se=0.002, transition_at=None, final_paired=None, tokctrl=None):
    """A run's history; ``final_paired`` = (decline, decline SE, rise, rise SE) of the last one."""
    records = [
        {
            "kind": "config",
            "monitor": "PPPMonitor",
            "corpus": "naturalstories",
            "spillover": 4,
            "spillover_meaning": "current + 4 previous words",
            "folds": 10,
            "baseline": ["length", "log_freq"],
        }
    ]
    for i, value in enumerate(ppp):
        step = 100 * i
        values = {
            keys.PPP_DELTA_LL: value,
            keys.PPP_DELTA_LL_SE: se,
            keys.HEADS_INDUCTION_MAX: 0.9 if i >= 3 else 0.01,
            keys.LOSS: 5.0 - 0.1 * i,
        }
        if tokctrl is not None:
            values[keys.PPP_DELTA_LL_TOKCTRL] = tokctrl[i]
            values[keys.PPP_DELTA_LL_TOKCTRL_SE] = se
        if final_paired is not None:
            paired = final_paired if i == len(ppp) - 1 else (0.0, 0.0, 0.0, 0.0)
            values.update(zip(keys.PAIRED_KEYS[keys.PPP_DELTA_LL], paired, strict=True))
        records.append(
            {"kind": "measurement", "step": step, "tokens": 1000 * step, "values": values}
        )
        records.append(
            {
                "kind": "heads",
                "step": step,
                "tokens": 1000 * step,
                "per_head": {
                    "induction": [[0.01, 0.02], [0.01, 0.9 if i >= 3 else 0.01]],
                    "previous_token": [[0.5, 0.1], [0.1, 0.1]],
                },
            }
        )
    if transition_at is not None:
        records.append(
            {
                "kind": "transition",
                "step": transition_at,
                "metric": "heads/induction_max",
                "before": 0.01,
                "after": 0.9,
                "threshold": 0.1,
                "direction": "rise",
                "tokens": 1000 * transition_at,
                "confirmed_step": transition_at + 100,
                "heads": [[1, 1]],
            }
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / HISTORY_FILE).write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_summary_calls_a_peak_only_on_a_significant_paired_decline_after_a_rise(tmp_path):
    curve = [0.01, 0.02, 0.03, 0.02, 0.015]
    _write_history(
        tmp_path / "peaked", curve, transition_at=300, final_paired=(0.015, 0.003, 0.02, 0.002)
    )
    summary = summarize_run(load_history(tmp_path / "peaked"))
    assert summary.ppp_peaked and summary.ppp_max.step == 200
    assert summary.ppp_final.delta_ll == pytest.approx(0.015)
    text = str(summary)
    assert "highest: +0.0300 ± 0.0020 nats/word at step 200 (200,000 tokens)" in text
    assert "PPP peaked at step 200" in text and "z = 5.0" in text and "at step 300" in text
    assert "10-fold CV, spillover 4 = current + 4 previous words, baseline length" in text

    # the same curve, but the decline is within the paired noise: no peak, and it says why
    _write_history(tmp_path / "noisy", curve, final_paired=(0.015, 0.01, 0.02, 0.002))
    summary = summarize_run(load_history(tmp_path / "noisy"))
    assert not summary.ppp_peaked and "decline since the highest value" in str(summary)
    assert "(paired, z = 1.50), is below z = 2" in str(summary)

    # PeakMonitor confirmed it online earlier: the summary says both, as measured
    event = PeakEvent(
        "confirmed",
        keys.PPP_DELTA_LL,
        200,
        0.03,
        0.03,
        200_000,
        2,
        0.01,
        0.004,
        0.02,
        0.002,
        2.0,
        400,
    )
    with open(tmp_path / "noisy" / HISTORY_FILE, "a") as f:
        f.write(json.dumps({"kind": "peak", "event": event.to_dict()}) + "\n")
    text = str(summarize_run(load_history(tmp_path / "noisy")))
    assert "PeakMonitor confirmed the peak of step 200 at step 400" in text
    assert "z = 2.50); at the final evaluation the decline does not pass" in text

    # no paired values (a history from phasewatch 0.1): the peak is not called
    _write_history(tmp_path / "old", curve)
    history = load_history(tmp_path / "old")
    history.configs[0].pop("spillover_meaning")  # as phasewatch 0.1 wrote it
    summary = summarize_run(history)
    assert not summary.ppp_peaked and "no paired test" in str(summary)
    assert "spillover 4 as phasewatch 0.1 counted it = current + 3 previous words" in str(summary)


def test_summary_never_calls_the_first_or_last_evaluation_a_peak(tmp_path):
    _write_history(tmp_path / "init", [0.03, 0.02, 0.01, 0.01], final_paired=(0.02, 0.001, 0, 0))
    summary = summarize_run(load_history(tmp_path / "init"))
    assert not summary.ppp_peaked and "the highest value is the first one" in str(summary)
    _write_history(tmp_path / "rising", [0.01, 0.02, 0.03], final_paired=(0, 0, 0.02, 0.001))
    summary = summarize_run(load_history(tmp_path / "rising"))
    assert not summary.ppp_peaked and "still rising" in str(summary)
    assert "transition: none detected" in str(summary)


def test_summary_and_report_show_the_tokens_per_word_controlled_curve(tmp_path, capsys):
    _write_history(tmp_path / "both", [0.02, 0.03, 0.025], tokctrl=[0.001, 0.012, 0.011])
    summary = summarize_run(load_history(tmp_path / "both"))
    assert [c.key for c in summary.curves] == [keys.PPP_DELTA_LL, keys.PPP_DELTA_LL_TOKCTRL]
    text = str(summary)
    assert "PPP, tokens per word controlled:" in text
    assert "first:   +0.0010 ± 0.0020 nats/word at step 0" in text
    assert "(+ tokens per word for the controlled curve)" in text
    assert cli_main(["report", str(tmp_path / "both")]) == 0
    assert "tokens per word controlled" in capsys.readouterr().out


def test_report_command_writes_png_and_html(tmp_path, capsys):
    _write_history(
        tmp_path / "run",
        [0.01, 0.02, 0.03, 0.02, 0.015],
        transition_at=300,
        final_paired=(0.015, 0.003, 0.02, 0.002),
    )
    assert cli_main(["report", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "PPP peaked at step 200" in out and "report.png" in out
    png = (tmp_path / "run" / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (
        "phase transition in heads/induction_max" in (tmp_path / "run" / "report.html").read_text()
    )


def test_report_of_a_folder_without_history_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no phasewatch_history\.jsonl"):
        write_report(tmp_path)


def test_a_bare_tokenizer_json_gets_its_one_special_token_as_bos(tmp_path, ns_tokenizer):
    from phasewatch.models import load_tokenizer

    ns_tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert loaded.bos_token_id == loaded.eos_token_id == ns_tokenizer.bos_token_id
    assert loaded("a test")["input_ids"] == ns_tokenizer("a test")["input_ids"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "missing.json")


def test_report_threshold_is_an_argument(tmp_path, capsys):
    curve = [0.01, 0.02, 0.03, 0.02, 0.015]
    _write_history(tmp_path / "run", curve, final_paired=(0.015, 0.01, 0.02, 0.002))  # z = 1.5
    assert cli_main(["report", str(tmp_path / "run")]) == 0
    assert "is below z = 2" in capsys.readouterr().out
    assert cli_main(["report", str(tmp_path / "run"), "--min-z", "1.4"]) == 0
    assert "PPP peaked at step 200" in capsys.readouterr().out

"""``analyze_checkpoints(..., ablate=)`` and ``phasewatch analyze --ablate``: the numbers are those
of the model measured inside ``ablate_heads``, and the table, history and cache say so."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import tiny_gpt2

import phasewatch.analyze
from phasewatch import keys
from phasewatch.analysis import analyze_checkpoints, read_table
from phasewatch.cli import main as cli_main
from phasewatch.control.ablation import ablate_heads
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.ppp_corpora import CorporaPPP
from phasewatch.models import as_probe_model
from phasewatch.report.history import HISTORY_FILE


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("ablate") / "checkpoint-10"
    tiny_gpt2(300).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def two_stories(ns_corpus):
    frame = ns_corpus.frame
    return ReadingTimeCorpus("spr", frame[frame["story"].isin([1, 2])].reset_index(drop=True))


def _per_head(out_dir):
    with open(out_dir / HISTORY_FILE, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    (heads,) = [r for r in records if r["kind"] == "heads"]
    config = next(r for r in records if r["kind"] == "config")
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in heads["per_head"].items()}, config


def test_ablated_analysis_measures_the_model_without_the_heads(
    folder, two_stories, ns_tokenizer, tmp_path
):
    options = dict(corpus=two_stories, tokenizer=ns_tokenizer, syntactic=False, folds=3, quiet=True)
    plain = analyze_checkpoints([folder], out_dir=tmp_path / "plain", **options)
    ablated = analyze_checkpoints([folder], out_dir=tmp_path / "ablated", ablate="L1H0", **options)
    # PPP: the same numbers as measuring the model inside ablate_heads by hand
    model = type(tiny_gpt2(300)).from_pretrained(folder)
    with ablate_heads(model, [(1, 0)]):
        by_hand, _ = CorporaPPP([two_stories], folds=3).measure(as_probe_model(model), ns_tokenizer)
    row, plain_row = ablated.table.iloc[0], plain.table.iloc[0]
    assert row[keys.PPP_DELTA_LL] == by_hand[keys.PPP_DELTA_LL]
    assert row[keys.PPP_DELTA_LL] != plain_row[keys.PPP_DELTA_LL]
    # Ablating the last layer's head changes no attention pattern: the other heads' scores are
    # the plain run's, the ablated head's is NaN, and the max is over the others.
    plain_heads, _ = _per_head(tmp_path / "plain")
    heads, config = _per_head(tmp_path / "ablated")
    for name, scores in plain_heads.items():
        assert torch.isnan(heads[name][1, 0]), name
        others = torch.ones_like(scores, dtype=torch.bool)
        others[1, 0] = False
        assert torch.equal(heads[name][others], scores[others]), name
    induction = plain_heads["induction"].clone()
    induction[1, 0] = -1.0
    assert row[keys.HEADS_INDUCTION_MAX] == float(induction.max())
    assert row[keys.ATTN_ENTROPY_MEAN] == pytest.approx(
        float(plain_heads["entropy"][induction > -1].mean()),
        rel=1e-6,  # float32 mean
    )
    # the table, its CSV and the history say which heads were ablated
    assert set(ablated.table["ablated"]) == {"L1H0 (zero)"} and "ablated" not in plain.table
    assert set(read_table(tmp_path / "ablated")["ablated"]) == {"L1H0 (zero)"}
    assert config["ablated"] == "L1H0 (zero)"
    assert "ablated heads: L1H0 (zero)" in str(ablated)
    # the cache's settings include the ablation: resuming without it is refused
    with pytest.raises(ValueError, match="other settings"):
        analyze_checkpoints([folder], out_dir=tmp_path / "ablated", **options)


def test_cli_passes_ablate_on_and_rejects_unreadable_heads(folder, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(
        phasewatch.analyze, "analyze_checkpoints", lambda *a, **kw: seen.update(kw) or "done"
    )
    argv = ["analyze", str(folder), "--ablate", "L1H0,L1H1", "--ablate-mode", "mean"]
    assert cli_main(argv) == 0
    assert (seen["ablate"], seen["ablate_mode"]) == ("L1H0,L1H1", "mean")
    monkeypatch.undo()
    assert cli_main(["analyze", str(folder), "--ablate", "L1-0", "--quiet"]) == 2
    assert "'L<layer>H<head>'" in capsys.readouterr().err


def test_out_of_range_heads_and_modes_are_named(folder, two_stories, ns_tokenizer):
    options = dict(corpus=two_stories, tokenizer=ns_tokenizer, ppp=False, syntactic=False)
    with pytest.raises(ValueError, match="has 2 layers"):
        analyze_checkpoints([folder], ablate="L2H0", quiet=True, **options)
    with pytest.raises(ValueError, match="`ablate_mode` must be one of zero, mean"):
        analyze_checkpoints([folder], ablate="L1H0", ablate_mode="resample", **options)

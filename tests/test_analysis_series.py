"""Offline analysis of a checkpoint series in three layouts equals what the callbacks logged."""

from __future__ import annotations

import json
import shutil

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning_helpers import TinyLM, token_loader

from phasewatch import keys
from phasewatch.analysis import TABLE_CSV, analyze_checkpoints, read_table
from phasewatch.callbacks import AttentionMonitor, PPPMonitor
from phasewatch.cli import main as cli_main

STEPS = [2, 4, 6]
BATCH, LENGTH = 8, 64  # token_loader's batches: 8 sequences of 64 tokens


class SavePretrained(Callback):
    """At ``steps``, what a Hugging Face Trainer leaves: ``checkpoint-<step>/`` with the model, the
    tokenizer and a ``trainer_state.json`` (global_step, num_input_tokens_seen counted here)."""

    def __init__(self, folder, steps, tokenizer) -> None:
        self.folder, self.steps, self.tokenizer, self.tokens = folder, steps, tokenizer, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.tokens += batch[0].numel()
        step = trainer.global_step
        if step in self.steps:
            target = self.folder / f"checkpoint-{step}"
            pl_module.model.save_pretrained(target)
            self.tokenizer.save_pretrained(target)
            state = {"global_step": step, "num_input_tokens_seen": self.tokens}
            (target / "trainer_state.json").write_text(json.dumps(state))


def _hub_cache(cache, repo, folders):
    """The layout ``huggingface_hub`` keeps: refs/<revision> holds a commit hash naming
    snapshots/<hash>/ (Pythia's revisions: step2, step4, ...; no trainer state)."""
    root = cache / f"models--{repo.replace('/', '--')}"
    for i, (revision, folder) in enumerate(folders.items()):
        commit = f"{i + 1:040x}"
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / revision).write_text(commit)
        shutil.copytree(folder, root / "snapshots" / commit)
        (root / "snapshots" / commit / "trainer_state.json").unlink()


@pytest.fixture(scope="module")
def trained_series(tmp_path_factory, ns_corpus, ns_tokenizer, ns_token_ids):
    """A short real run: the monitors measure at STEPS, where the checkpoints are saved."""
    root = tmp_path_factory.mktemp("series")
    ppp = PPPMonitor(steps=STEPS, folds=5, strict=True)
    heads = AttentionMonitor(steps=STEPS, heatmap_every=0, strict=True)
    saver = ModelCheckpoint(
        dirpath=root / "ckpt", every_n_train_steps=2, save_top_k=-1, filename="{step}"
    )
    folders = SavePretrained(root / "pretrained", STEPS, ns_tokenizer)
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_steps=STEPS[-1],
        callbacks=[ppp, heads, saver, folders],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=root,
    )
    model = TinyLM(vocab_size=len(ns_tokenizer), tokenizer=ns_tokenizer)
    trainer.fit(model, token_loader(ns_token_ids, BATCH, LENGTH))
    _hub_cache(
        root / "hub",
        "local/tiny",
        {f"step{s}": root / "pretrained" / f"checkpoint-{s}" for s in STEPS},
    )
    online = {**ppp.history, **heads.history}
    return root, online


def _assert_same_as_online(result, online):
    table = result.tidy
    assert sorted(set(table["step"])) == STEPS
    for key, rows in online.items():
        offline = table[table["metric"] == key].sort_values("step")
        assert list(offline["step"]) == [r[0] for r in rows], key
        assert list(offline["tokens"]) == [r[1] for r in rows], key
        assert list(offline["value"]) == pytest.approx([r[2] for r in rows], abs=1e-9), key
    assert set(table["metric"]) == set(online)  # every logged scalar, nothing else


@pytest.mark.slow
def test_three_layouts_give_the_table_the_callbacks_logged(trained_series, ns_tokenizer, tmp_path):
    root, online = trained_series
    assert {keys.PPP_DECLINE, keys.HEADS_SAS, keys.ATTN_ENTROPY_MEAN} <= set(online)
    common = dict(folds=5, quiet=True)
    # Lightning .ckpt files, as a folder in training order (names step=2.ckpt, ...)
    ckpt = analyze_checkpoints(
        [root / "ckpt"], module=TinyLM, tokenizer=ns_tokenizer, out_dir=tmp_path / "a", **common
    )
    _assert_same_as_online(ckpt, online)
    # save_pretrained folders with the HF Trainer's state; tokenizer read from each folder
    folders = sorted((root / "pretrained").iterdir(), reverse=True)  # any order
    pretrained = analyze_checkpoints(folders, out_dir=tmp_path / "b", **common)
    _assert_same_as_online(pretrained, online)
    # hub revisions from a local cache; the steps from the names, tokens from tokens per step
    hub = analyze_checkpoints(
        repo="local/tiny",
        revisions=[f"step{s}" for s in STEPS],
        cache_dir=root / "hub",
        local_files_only=True,
        tokens_per_step=BATCH * LENGTH,
        out_dir=tmp_path / "c",
        **common,
    )
    _assert_same_as_online(hub, online)
    assert list(hub.tidy["checkpoint"].unique()) == [f"local/tiny@step{s}" for s in STEPS]
    # the table on disk is the returned one, floats exactly
    on_disk = read_table(tmp_path / "c" / TABLE_CSV)
    assert on_disk.equals(hub.tidy)
    # the same from the command line (revisions repeated and comma-separated)
    args = ["analyze", "--repo", "local/tiny", "--revisions", "step2,step4", "--revisions", "step6"]
    args += ["--cache-dir", str(root / "hub"), "--local-files-only", "--tokens-per-step", "512"]
    assert cli_main([*args, "--folds", "5", "--quiet", "--out", str(tmp_path / "d")]) == 0
    assert read_table(tmp_path / "d").equals(hub.tidy)


@pytest.mark.slow
def test_a_resumed_analysis_equals_one_pass(trained_series, ns_tokenizer, tmp_path, monkeypatch):
    """The paired test depends on every earlier checkpoint: a resume that measures only the new
    one still gives the numbers of one pass (the sequential part is replayed in step order)."""
    root, online = trained_series
    paths = sorted((root / "ckpt").glob("*.ckpt"), key=lambda p: int(p.stem.split("=")[1]))
    common = dict(module=TinyLM, tokenizer=ns_tokenizer, folds=5, quiet=True)
    analyze_checkpoints([paths[0], paths[2]], out_dir=tmp_path, **common)
    loads = []
    real_load = TinyLM.load_from_checkpoint.__func__

    def counting(cls, path, **kwargs):
        loads.append(path)
        return real_load(cls, path, **kwargs)

    monkeypatch.setattr(TinyLM, "load_from_checkpoint", classmethod(counting))
    resumed = analyze_checkpoints([paths[1]], out_dir=tmp_path, **common)
    assert loads == [str(paths[1])] and resumed.measured == 1  # the others were not loaded
    _assert_same_as_online(resumed, online)  # the step-6 paired keys now see step 4
    assert read_table(tmp_path).equals(resumed.tidy)
    with pytest.raises(ValueError, match=r"other settings \(.*folds: 5 then, 10 now.*--no-resume"):
        analyze_checkpoints([paths[1]], out_dir=tmp_path, **{**common, "folds": 10})

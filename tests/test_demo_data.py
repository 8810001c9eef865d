"""The demo's training data: paragraphs, tokenizer, repeated-span mixing, determinism."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import torch

from phasewatch.demo.data import (
    MixedSequences,
    NovelsDataModule,
    ValidationSequences,
    is_repeated,
    repeated_span,
)
from phasewatch.demo.novels import (
    Novel,
    NovelSplits,
    detect_layout,
    read_novel,
    split_paragraphs,
    split_train_validation,
)
from phasewatch.demo.tokenizer import (
    MIN_VOCAB_SIZE,
    load_or_train_tokenizer,
    tokenizer_cache_path,
    train_bpe_tokenizer,
)

PARAGRAPHS = [
    "It was a dark and stormy night; the rain fell in torrents, except at occasional "
    "intervals, when it was checked by a violent gust of wind which swept up the streets.",
    '"Who is there?" said the old man, and he lifted the lamp to look at the door.',
    "Nobody answered. The wind went on, and the lamp went out, and the night was long.",
]

TEXTS = [
    " ".join(PARAGRAPHS * 3),
    "The quick brown fox jumps over the lazy dog. Café, naïve, £5 and 3 dashes - yes.",
]


def _wrap(paragraph: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in paragraph.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def _file_bytes(lines: list[str]) -> bytes:
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def test_blank_separated_hard_wrapped_file_with_bom_and_crlf(tmp_path):
    lines: list[str] = []
    for paragraph in PARAGRAPHS:
        lines += [*_wrap(paragraph, 40), ""]
    path = tmp_path / "Author_Title_1900.txt"
    path.write_bytes(_file_bytes(lines))
    novel = read_novel(path)
    assert novel.layout == "blank"
    assert novel.name == "Author_Title_1900"
    assert list(novel.paragraphs) == PARAGRAPHS
    assert not any("\r" in p or "\ufeff" in p for p in novel.paragraphs)


def test_one_paragraph_per_line_without_blank_lines(tmp_path):
    long = [p + " " + p for p in PARAGRAPHS]  # lines longer than any hard wrap
    path = tmp_path / "novel.txt"
    path.write_bytes(_file_bytes(long))
    novel = read_novel(path)
    assert novel.layout == "line"
    assert list(novel.paragraphs) == long


def test_hard_wrapped_paragraphs_without_separators_are_reflowed():
    paragraphs = PARAGRAPHS * 4
    lines = [line for p in paragraphs for line in _wrap(p, 60)]
    assert detect_layout(lines) == "wrapped"
    found, layout = split_paragraphs("\ufeff" + "\r\n".join(lines))
    assert layout == "wrapped"
    assert found == paragraphs


def test_indented_line_starts_a_paragraph_in_wrapped_layout():
    text = "\n".join(
        [
            "a" * 58 + " b",
            "ends here and this line is long enough to look filled up ok.",
            " Next paragraph starts with a space even though the line above",
            "was full; it ends here.",
        ]
    )
    found, _ = split_paragraphs(text, layout="wrapped")
    assert len(found) == 2
    assert found[1].startswith("Next paragraph")


def test_unknown_layout_is_rejected():
    with pytest.raises(ValueError, match="`layout` can be one of"):
        split_paragraphs("text", layout="columns")


def test_validation_split_holds_out_the_last_paragraphs_of_each_novel():
    novels = [
        Novel("a", "line", tuple(f"a{i}" for i in range(20))),
        Novel("b", "line", tuple(f"b{i}" for i in range(3))),
    ]
    splits = split_train_validation(novels, val_fraction=0.1)
    assert splits.train == ("\n".join(f"a{i}" for i in range(18)), "b0\nb1")
    assert splits.validation == ("a18\na19", "b2")
    assert splits.fingerprint() != split_train_validation(novels, 0.2).fingerprint()


def test_bpe_tokenizer_round_trips_and_offsets_cover_the_text():
    tokenizer = train_bpe_tokenizer(TEXTS, vocab_size=300)
    assert len(tokenizer) == 300
    assert tokenizer.bos_token_id == tokenizer.eos_token_id == 0
    for text in [*TEXTS, "Unseen words: Zyxwvut ÆØÅ 東京!"]:
        encoded = tokenizer(text, return_offsets_mapping=True)
        assert tokenizer.decode(encoded["input_ids"]) == text
        offsets = encoded["offset_mapping"]
        assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
        for (_, end), (start, _) in itertools.pairwise(offsets):
            assert start in (end, end - 1)  # contiguous; a multi-byte char's later bytes repeat it
        for token_id, (start, end) in zip(encoded["input_ids"], offsets, strict=True):
            if text[start:end].isascii():
                assert tokenizer.decode([token_id]) == text[start:end]


def test_bpe_merges_shorten_the_text():
    tokenizer = train_bpe_tokenizer(TEXTS, vocab_size=400)
    n_bytes = len(TEXTS[0].encode("utf-8"))
    assert len(tokenizer(TEXTS[0])["input_ids"]) < 0.6 * n_bytes


def test_tokenizer_cache_is_reused(tmp_path):
    first = load_or_train_tokenizer(TEXTS, 300, tmp_path, corpus_key="k")
    path = tokenizer_cache_path(tmp_path, 300, "k")
    assert path.exists()
    os.utime(path, (0, 0))
    second = load_or_train_tokenizer(TEXTS, 300, tmp_path, corpus_key="k")
    assert path.stat().st_mtime == 0  # loaded, not rewritten
    assert second.get_vocab() == first.get_vocab()
    assert second(TEXTS[1])["input_ids"] == first(TEXTS[1])["input_ids"]


def test_vocab_size_below_the_byte_alphabet_is_rejected():
    with pytest.raises(ValueError, match=f"`vocab_size` must be an integer >= {MIN_VOCAB_SIZE}"):
        train_bpe_tokenizer(TEXTS, vocab_size=256)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0])
def test_repeat_fraction_is_exact_in_every_window(fraction):
    flags = np.array([is_repeated(i, fraction) for i in range(3000)])
    assert flags.sum() == math.floor(3000 * fraction)
    for start in (0, 17, 1234):
        window = flags[start : start + 32].sum()
        assert abs(window - 32 * fraction) <= 1


def _dataset(fraction=0.25, style="tile", seed=0, vocab=97):
    ids = np.arange(10_000, dtype=np.int32) % 1000 + 1000  # natural text: ids >= vocab
    return MixedSequences(
        ids, 64, vocab, repeat_fraction=fraction, style=style, span_lengths=(5, 20), seed=seed
    )


def test_repeated_share_of_batches_matches_the_fraction():
    dataset = _dataset(fraction=0.25)
    loader = torch.utils.data.DataLoader(dataset, batch_size=16)
    counted, per_batch = 0, []
    for i, batch in enumerate(loader):
        # natural crops come from ids >= 1000; synthetic tokens are < vocab_size = 97
        synthetic = (batch["input_ids"] < 97).all(dim=1)
        assert torch.equal(synthetic, batch["is_repeated"])
        per_batch.append(int(synthetic.sum()))
        counted += len(synthetic)
        if i == 49:
            break
    assert sum(per_batch) == counted // 4
    assert set(per_batch) == {4}


@pytest.mark.parametrize("style", ["tile", "twice"])
def test_repeated_sequences_really_repeat(style):
    dataset = _dataset(fraction=1.0, style=style)
    for i in range(20):
        ids = dataset[i]["input_ids"]
        assert dataset[i]["is_repeated"]
        assert ((ids >= 1) & (ids < 97)).all()
        if style == "twice":
            period = 32
        else:  # smallest shift under which the sequence is periodic
            period = next(p for p in range(1, 64) if torch.equal(ids[p:], ids[:-p]))
        assert 5 <= period <= 32
        assert torch.equal(ids[period : 2 * period], ids[:period])


def test_natural_sequences_are_contiguous_crops():
    dataset = _dataset(fraction=0.0)
    for i in range(10):
        ids = dataset[i]["input_ids"].numpy()
        start = np.flatnonzero(dataset.token_ids == ids[0])
        assert any(np.array_equal(dataset.token_ids[s : s + 64], ids) for s in start)


def test_sequences_are_deterministic_under_a_seed():
    a, b, c = _dataset(seed=3), _dataset(seed=3), _dataset(seed=4)
    for i in (0, 1, 2, 3, 500):
        assert torch.equal(a[i]["input_ids"], b[i]["input_ids"])
    assert any(not torch.equal(a[i]["input_ids"], c[i]["input_ids"]) for i in range(8))


def test_repeated_span_rejects_unknown_style():
    with pytest.raises(ValueError, match="`style` can be one of"):
        repeated_span(np.random.default_rng(0), 10, 50, (2, 4), style="thrice")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repeat_fraction": 1.5}, "`repeat_fraction` must be in"),
        ({"repeat_fraction": 0.5, "span_lengths": (5, 64)}, "`span_lengths` must be"),
        ({"repeat_fraction": 0.5, "style": "x"}, "`repeat_style` can be one of"),
    ],
)
def test_mixed_sequences_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixedSequences(np.zeros(100, dtype=np.int32), 64, 50, **kwargs)


def test_validation_windows_are_disjoint_and_spread():
    ids = np.arange(1000)
    dataset = ValidationSequences(ids, 10, max_sequences=5)
    starts = [int(dataset[i]["input_ids"][0]) for i in range(len(dataset))]
    assert starts == [0, 250, 500, 740, 990]
    assert len(ValidationSequences(ids, 10, max_sequences=1000)) == 100


def test_data_module_batches_and_cache(tmp_path):
    documents = NovelSplits(train=(TEXTS[0], TEXTS[1]), validation=(TEXTS[0],), val_fraction=0.1)
    module = NovelsDataModule(
        vocab_size=300,
        context_length=32,
        batch_size=8,
        repeat_fraction=0.25,
        span_lengths=(5, 12),
        cache_dir=tmp_path,
        documents=documents,
    )
    module.prepare_data()
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["input_ids"].shape == (8, 32)
    assert batch["is_repeated"].tolist() == [False, False, False, True] * 2
    val = next(iter(module.val_dataloader()))
    assert not val["is_repeated"].any()
    eos = module.tokenizer.eos_token_id
    ids = module.token_ids["train"]
    assert (ids == eos).sum() == 2 and ids[-1] == eos
    assert module.tokenizer.decode(ids[:-1].tolist()).startswith(TEXTS[0])
    cached = sorted(p.name for p in tmp_path.iterdir())
    key = documents.fingerprint()
    assert cached == [f"bpe-300-{key}.json", f"ids-300-{key}.npz"]
    again = NovelsDataModule(vocab_size=300, cache_dir=tmp_path, documents=documents)
    assert np.array_equal(again.token_ids["train"], ids)


@pytest.mark.skipif("PHASEWATCH_DATA" not in os.environ, reason="needs PHASEWATCH_DATA")
def test_novels_load_with_their_word_count_and_layouts():
    from phasewatch.demo.novels import count_words, load_novels

    novels = load_novels()
    assert len(novels) == 25
    words = sum(count_words(n.paragraphs) for n in novels)
    assert words == 2_051_120  # the corpus README's str.split() count: nothing lost or added
    layouts = {n.name: n.layout for n in novels}
    assert layouts["Kipling_Kim_1901"] == "wrapped"
    assert layouts["Burnett_Garden_1911"] == "line"
    assert layouts["Haggard_She_1887"] == "blank"
    # no paragraph swallows a whole novel: every novel splits into hundreds of them
    assert min(len(n.paragraphs) for n in novels) > 500


def test_tiny_gpt2_loss_is_the_models_own_next_token_loss():
    from phasewatch.demo.model import TinyGPT2

    module = TinyGPT2(vocab_size=50, n_layer=1, n_head=2, n_embd=16, n_inner=32, context_length=12)
    ids = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(0))
    per_sequence = module._sequence_losses(ids)
    assert per_sequence.shape == (3,)
    reference = module.model(ids, labels=ids).loss  # Hugging Face's shifted cross-entropy
    torch.testing.assert_close(per_sequence.mean(), reference)


def test_tiny_gpt2_learning_rate_schedule():
    from phasewatch.demo.model import TinyGPT2

    shape = {"vocab_size": 50, "n_layer": 1, "n_head": 2, "n_embd": 16, "context_length": 8}
    constant = TinyGPT2(**shape, warmup_steps=10)
    assert constant.lr_factor(0) == pytest.approx(0.1)
    assert constant.lr_factor(9) == pytest.approx(1.0)
    assert constant.lr_factor(5000) == 1.0
    cosine = TinyGPT2(**shape, warmup_steps=10, lr_schedule="cosine", max_steps=110)
    assert cosine.lr_factor(60) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway: cos(pi/2) = 0
    assert cosine.lr_factor(110) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="`max_steps` must exceed"):
        TinyGPT2(**shape, lr_schedule="cosine", max_steps=5)


def test_demo_config_builds_matching_model_and_data(tmp_path):
    from phasewatch.demo.config import DemoConfig

    config = DemoConfig().with_(vocab_size=300, context_length=32, span_lengths=(5, 12))
    documents = NovelSplits(train=tuple(TEXTS), validation=(TEXTS[0],), val_fraction=0.1)
    data = config.data_module(cache_dir=tmp_path, documents=documents)
    data.setup("fit")
    model = config.model(data.tokenizer)
    assert model.model.config.vocab_size == len(data.tokenizer) == 300
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape == (config.batch_size, 32)
    share = batch["is_repeated"].float().mean().item()
    assert abs(share - config.synthetic_share) <= 1 / config.batch_size
    assert f"{config.repeat_fraction:.0%}" in config.describe()


def test_tiny_gpt2_trains_and_logs_its_metrics(tmp_path):
    import lightning as L

    from phasewatch.demo.config import DemoConfig

    config = DemoConfig().with_(
        vocab_size=300,
        n_embd=16,
        n_inner=32,
        context_length=32,
        batch_size=4,
        span_lengths=(5, 12),
        repeat_fraction=0.5,
        max_steps=3,
        val_check_interval=3,
    )
    documents = NovelSplits(train=tuple(TEXTS), validation=(TEXTS[0],), val_fraction=0.1)
    data = config.data_module(cache_dir=tmp_path, documents=documents)
    model = config.model(data.tokenizer)
    trainer = L.Trainer(
        **config.trainer_kwargs(),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
    )
    trainer.fit(model, datamodule=data)
    metrics = trainer.callback_metrics
    for key in ("train/loss", "train/loss_natural", "train/loss_repeated", "val/loss"):
        assert 0.0 < float(metrics[key]) < 10.0, key
    assert int(model.tokens_seen) == 3 * 4 * 32
    assert float(metrics["train/tokens"]) == 3 * 4 * 32

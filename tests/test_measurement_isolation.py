"""A measurement must never change training; own models and raw tokenizers in the real callbacks.

The acceptance test of issue 9: with a frozen eval-mode sub-module and dropout on, the final
weights of a run with every monitor are bit-identical to those of a run without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning_helpers import quiet_trainer, token_loader
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from phasewatch import keys
from phasewatch.callbacks import AttentionMonitor, PeakMonitor, PPPMonitor, TransitionMonitor
from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.measures.surprisal import word_surprisal
from phasewatch.models import as_probe_model

MAX_STEPS = 6
TOY_STORY = "The old cat sat on the mat and watched the dog run past the house twice ."
MEASURE_AT = (2, 4, 6)


class FrozenBlockLM(L.LightningModule):
    """A user's own module: GPT-2 with dropout 0.1, its first block frozen in eval mode."""

    def __init__(self, vocab_size: int, tokenizer) -> None:
        super().__init__()
        config = GPT2Config(
            vocab_size=vocab_size,
            n_layer=2,
            n_head=2,
            n_embd=32,
            n_positions=128,
            resid_pdrop=0.1,
            embd_pdrop=0.1,
            attn_pdrop=0.1,
        )
        self.model = GPT2LMHeadModel(config)
        self.tokenizer = tokenizer
        frozen = self.model.transformer.h[0]
        frozen.requires_grad_(False)
        frozen.eval()  # its dropout stays off for the whole run

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        return self.model(input_ids=ids, labels=ids).loss

    def configure_optimizers(self):
        return torch.optim.AdamW((p for p in self.parameters() if p.requires_grad), lr=3e-3)


def _fit(tmp_path, module, callbacks, ids) -> L.Trainer:
    trainer = quiet_trainer(tmp_path, callbacks, max_steps=MAX_STEPS)
    trainer.fit(module, token_loader(ids, batch_size=4, length=64))
    return trainer


@pytest.fixture(scope="module")
def one_story(ns_corpus):
    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].reset_index(drop=True)
    return ReadingTimeCorpus("story 1", frame)


def _modes(module: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in module.named_modules()}


def test_every_monitor_leaves_the_final_weights_bit_identical(
    tmp_path, one_story, ns_tokenizer, ns_token_ids
):
    L.seed_everything(0)
    plain = FrozenBlockLM(len(ns_tokenizer), ns_tokenizer)
    modes_before = _modes(plain)
    _fit(tmp_path / "plain", plain, [], ns_token_ids)

    L.seed_everything(0)
    watched = FrozenBlockLM(len(ns_tokenizer), ns_tokenizer)
    monitors = [
        PPPMonitor(one_story, steps=MEASURE_AT, folds=2),
        AttentionMonitor(
            steps=MEASURE_AT,
            seq_len=20,
            probe_batch=4,
            entropy_stories=1,
            syntactic=False,  # its probe pass is entropy's; 20 s slower here
            heatmap_every=0,
        ),
        TransitionMonitor(),
        PeakMonitor(dirpath=str(tmp_path / "peak")),
    ]
    trainer = _fit(tmp_path / "watched", watched, monitors, ns_token_ids)

    assert monitors[0].history[keys.PPP_DELTA_LL]  # it measured,
    assert len(monitors[1].history[keys.HEADS_INDUCTION_MAX]) == len(MEASURE_AT)  # every time
    assert keys.PPP_DELTA_LL in trainer.callback_metrics
    plain_state, watched_state = plain.state_dict(), watched.state_dict()
    assert plain_state.keys() == watched_state.keys()
    differ = [k for k in plain_state if not torch.equal(plain_state[k], watched_state[k])]
    assert differ == []
    assert _modes(watched) == _modes(plain) == modes_before  # the frozen block is still eval
    assert not watched.model.transformer.h[0].training


# --- a nanoGPT-style own model ----------------------------------------------------------------


@dataclass
class NanoConfig:
    block_size: int = 128
    vocab_size: int = 300
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32


class NanoGPT(nn.Module):
    """nanoGPT's shape: a ``config``; ``forward(idx)`` returns only the last position's logits.

    It implements phasewatch's protocol (``num_layers``, ``num_heads``, ``max_length``,
    ``forward_with_attentions`` with the logits of every position), as docs/models.md asks.
    """

    def __init__(self, config: NanoConfig) -> None:
        super().__init__()
        self.config = config
        self.num_layers, self.num_heads = config.n_layer, config.n_head
        self.vocab_size, self.max_length = config.vocab_size, config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(0.1)
        self.qkv = nn.ModuleList(
            nn.Linear(config.n_embd, 3 * config.n_embd) for _ in range(config.n_layer)
        )
        self.proj = nn.ModuleList(
            nn.Linear(config.n_embd, config.n_embd) for _ in range(config.n_layer)
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward_with_attentions(self, idx):
        batch, tokens = idx.shape
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(tokens, device=idx.device)))
        causal = torch.ones(tokens, tokens, dtype=torch.bool, device=idx.device).tril()
        attentions = []
        for qkv, proj in zip(self.qkv, self.proj, strict=True):
            q, k, v = qkv(x).view(batch, tokens, 3, self.num_heads, -1).unbind(2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
            probs = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
            attentions.append(probs)
            x = x + self.drop(proj((probs @ v).transpose(1, 2).reshape(batch, tokens, -1)))
        return self.lm_head(x), attentions

    def forward(self, idx, targets=None):
        logits, _ = self.forward_with_attentions(idx)
        if targets is None:  # nanoGPT's inference-time optimization
            return logits[:, [-1], :], None
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


class NanoLM(L.LightningModule):
    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.model = NanoGPT(NanoConfig(vocab_size=len(tokenizer)))
        self.tokenizer = tokenizer

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        return self.model(ids[:, :-1], ids[:, 1:])[1]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=3e-3)


def _nll_bits_by_hand(model: NanoGPT, ids: list[int]) -> float:
    """Independent: one forward over BOS + tokens, −log2 P of every next token, summed."""
    model.eval()
    with torch.no_grad():
        logits, _ = model.forward_with_attentions(torch.tensor([ids]))
    logp = torch.log_softmax(logits[0, :-1].double(), dim=-1)
    return float(-logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum() / np.log(2))


def test_ppp_monitor_measures_a_nanogpt_style_model_through_the_protocol(
    tmp_path, ns_tokenizer, ns_token_ids
):
    # A corpus of two short "stories" that fit one 128-token window: the hand check is one pass.
    words = TOY_STORY.split(" ")
    frame = ReadingTimeCorpus(
        "toy",
        pd.DataFrame(
            {
                "story": [1] * len(words) + [2] * len(words),
                "position": list(range(1, len(words) + 1)) * 2,
                "word": words + words[::-1],
                "rt": np.linspace(250.0, 420.0, 2 * len(words)),
            }
        ),
    )
    L.seed_everything(0)
    module = NanoLM(ns_tokenizer)
    monitor = PPPMonitor(frame, steps=(MAX_STEPS,), folds=2, spillover=1)
    _fit(tmp_path, module, [monitor], ns_token_ids)
    assert module.model.training  # its own mode, restored after the measurement

    (logged,) = monitor.history[keys.PPP_SURPRISAL_MEAN]
    bos = ns_tokenizer.bos_token_id
    by_hand = sum(
        _nll_bits_by_hand(module.model, [bos, *ns_tokenizer(" ".join(story))["input_ids"]])
        for story in (words, words[::-1])
    ) / (2 * len(words))
    assert logged[-1] == pytest.approx(by_hand, rel=1e-5)


# --- a raw tokenizers.Tokenizer in the callbacks ----------------------------------------------


def test_callbacks_take_a_raw_tokenizer_with_bos_token_id(
    tmp_path, one_story, ns_tokenizer, ns_token_ids
):
    raw = ns_tokenizer.backend_tokenizer  # a tokenizers.Tokenizer: no bos_token_id of its own
    bos = ns_tokenizer.bos_token_id
    L.seed_everything(0)
    module = FrozenBlockLM(len(ns_tokenizer), tokenizer=None)
    ppp = PPPMonitor(one_story, steps=(MAX_STEPS,), folds=2, tokenizer=raw, bos_token_id=bos)
    heads = AttentionMonitor(
        steps=(MAX_STEPS,),
        entropy_stories=1,
        syntactic=False,
        heatmap_every=0,
        tokenizer=raw,
        bos_token_id=bos,
    )
    _fit(tmp_path, module, [ppp, heads], ns_token_ids)

    expected = word_surprisal(module.model, ns_tokenizer, one_story)  # HF tokenizer: BOS known
    (logged,) = ppp.history[keys.PPP_SURPRISAL_MEAN]
    assert logged[-1] == pytest.approx(float(expected.mean()), rel=1e-6)
    reference = HeadMeasure(corpus=heads._measure.corpus, entropy_stories=1)
    scalars, _ = reference.measure(as_probe_model(module.model), ns_tokenizer)
    (entropy,) = heads.history[keys.ATTN_ENTROPY_MEAN]
    assert entropy[-1] == pytest.approx(scalars[keys.ATTN_ENTROPY_MEAN], rel=1e-6)


@pytest.mark.parametrize("bos_token_id", ["0", 1.5, -1, True])
def test_callbacks_reject_a_bad_bos_token_id_at_construction(bos_token_id):
    for callback in (PPPMonitor, AttentionMonitor):
        with pytest.raises(ValueError, match="`bos_token_id` must be None"):
            callback(bos_token_id=bos_token_id)


def test_head_measures_use_the_surprisal_bos_rule(ns_corpus, ns_tokenizer):
    """A tokenizer with only an EOS: surprisal, entropy and syntactic probes all start with it."""
    eos_only = PreTrainedTokenizerFast(
        tokenizer_object=ns_tokenizer.backend_tokenizer, eos_token="<|endoftext|>"
    )
    assert eos_only.bos_token_id is None and eos_only.eos_token_id is not None
    probe_ids = HeadMeasure(corpus=ns_corpus, entropy_stories=2).entropy_probe(eos_only, 64)
    assert probe_ids[:, 0].tolist() == [eos_only.eos_token_id] * 2
    text = ns_corpus.texts[ns_corpus.stories[0]]
    assert probe_ids[0, 1:].tolist() == ns_tokenizer(text)["input_ids"][:63]

    from phasewatch.measures.syntactic import syntactic_scores

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(ns_tokenizer), n_layer=2, n_head=2, n_embd=32, n_positions=128)
    )
    auto = syntactic_scores(model, eos_only, ns_corpus, max_stories=1)
    given = syntactic_scores(
        model, eos_only, ns_corpus, max_stories=1, bos_token_id=eos_only.eos_token_id
    )
    none = syntactic_scores(model, eos_only, ns_corpus, max_stories=1, bos_token_id=None)
    assert torch.equal(auto.per_head, given.per_head)
    assert not torch.equal(auto.per_head, none.per_head)  # the BOS does change the numbers

"""ProbeModel / as_probe_model: attention out of HF and custom models, state restored afterwards."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from tiny_models import tiny_gpt2, tiny_llama, tiny_neox
from torch import nn

from phasewatch.models import (
    AttentionModel,
    LogitsFunction,
    ProbeModel,
    as_probe_model,
    find_tokenizer,
)
from phasewatch.models._huggingface import huggingface_forward

DOCS = Path(__file__).resolve().parents[1] / "docs"
VOCAB = 64


class TinyTransformer(nn.Module):
    """The minimal custom model of docs/models.md: implements AttentionModel."""

    def __init__(self, vocab_size=100, d_model=32, num_heads=2, num_layers=2, max_length=64):
        super().__init__()
        self.num_layers, self.num_heads = num_layers, num_heads
        self.vocab_size, self.max_length = vocab_size, max_length
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_length, d_model)
        self.qkv = nn.ModuleList(nn.Linear(d_model, 3 * d_model) for _ in range(num_layers))
        self.out = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(num_layers))
        self.dropout = nn.Dropout(0.5)
        self.unembed = nn.Linear(d_model, vocab_size)

    def forward_with_attentions(self, input_ids):
        batch, tokens = input_ids.shape
        x = self.embed(input_ids) + self.pos(torch.arange(tokens, device=input_ids.device))
        causal = torch.ones(tokens, tokens, dtype=torch.bool, device=x.device).tril()
        attentions = []
        for qkv, out in zip(self.qkv, self.out, strict=True):
            q, k, v = qkv(x).view(batch, tokens, 3, self.num_heads, -1).unbind(2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
            probs = self.dropout(scores.masked_fill(~causal, float("-inf")).softmax(dim=-1))
            attentions.append(probs)
            x = x + out((probs @ v).transpose(1, 2).reshape(batch, tokens, -1))
        return self.unembed(x), attentions

    def forward(self, input_ids):
        return self.forward_with_attentions(input_ids)[0]


gpt2 = partial(tiny_gpt2, VOCAB, n_positions=64)
neox = partial(tiny_neox, VOCAB, max_positions=64)
llama = partial(tiny_llama, VOCAB, max_positions=64)

HF_BUILDERS = {"gpt2": gpt2, "neox": neox, "llama": llama}


def hook_counts(model: nn.Module) -> list[tuple[int, int]]:
    return [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]


@pytest.mark.parametrize("name", sorted(HF_BUILDERS))
def test_huggingface_probe_returns_probabilities_and_restores_everything(name):
    model = HF_BUILDERS[name]()
    assert model.config._attn_implementation == "sdpa"
    model.train()
    model.lm_head.eval()  # a mixed train/eval state must come back exactly
    modes_before = [m.training for m in model.modules()]
    probe = as_probe_model(model)
    ids = torch.randint(0, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))

    logits, attentions = probe.forward(ids)

    assert logits.shape == (3, 12, VOCAB)
    assert len(attentions) == probe.num_layers == 2
    assert attentions[0].shape == (3, probe.num_heads, 12, 12)
    rows = torch.stack(attentions).sum(dim=-1)
    torch.testing.assert_close(rows, torch.ones_like(rows), atol=1e-5, rtol=0)
    assert torch.stack(attentions).triu(diagonal=1).abs().max() == 0  # causal
    assert not logits.requires_grad
    assert model.config._attn_implementation == "sdpa"
    assert [m.training for m in model.modules()] == modes_before
    assert all(counts == (0, 0) for counts in hook_counts(model))
    assert not any("_output_capturing_hooks_installed" in vars(m) for m in model.modules())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, logits, atol=1e-5, rtol=0)


def test_probe_keeps_hooks_the_user_installed():
    model = gpt2()
    calls = []
    model.transformer.h[0].register_forward_hook(lambda *args: calls.append(1))
    before = hook_counts(model)
    as_probe_model(model).forward(torch.arange(8))
    assert calls == [1]
    assert hook_counts(model) == before


def test_eager_model_stays_eager_and_logits_only_pass_does_not_switch():
    model = gpt2(attn_implementation="eager")
    probe = as_probe_model(model)
    _, attentions = probe.forward(torch.arange(8), attention=True)
    assert len(attentions) == 2 and model.config._attn_implementation == "eager"
    sdpa = gpt2()
    logits, none = as_probe_model(sdpa).forward(torch.arange(8), attention=False)
    assert none is None and logits.shape == (1, 8, VOCAB)


def test_logits_false_skips_the_head_but_gives_the_same_attention():
    probe = as_probe_model(gpt2())
    ids = torch.arange(10)
    _, full = probe.forward(ids)
    logits, backbone = probe.forward(ids, logits=False)
    assert logits is None
    torch.testing.assert_close(torch.stack(full), torch.stack(backbone))


def test_probing_context_switches_once_around_several_passes():
    model = gpt2()
    probe = as_probe_model(model)
    with probe.probing():
        assert model.config._attn_implementation == "eager" and not model.training
        probe.forward(torch.arange(5))
        assert model.config._attn_implementation == "eager"
        probe.forward(torch.arange(7))
    assert model.config._attn_implementation == "sdpa" and model.training


def test_dimensions_from_configs():
    for name, builder in HF_BUILDERS.items():
        probe = as_probe_model(builder())
        heads = 2 if name == "gpt2" else 4
        assert (probe.num_layers, probe.num_heads, probe.vocab_size, probe.max_length) == (
            2,
            heads,
            VOCAB,
            64,
        )


def test_sdpa_without_switch_raises_an_error_that_says_what_to_do():
    model = gpt2().eval()
    with pytest.raises(RuntimeError, match=r"attentions=\(\).*sdpa.*attn_implementation='eager'"):
        huggingface_forward(
            model, torch.arange(6)[None], attention=True, attention_mask=None, logits=False
        )


def test_class_that_cannot_switch_raises_and_model_is_left_as_it_was():
    model = gpt2()
    model.set_attn_implementation = lambda implementation: None  # only warns in transformers
    with pytest.raises(RuntimeError, match=r"stayed on attn_implementation='sdpa'.*AttentionModel"):
        as_probe_model(model).forward(torch.arange(6))
    assert model.training and model.config._attn_implementation == "sdpa"


def test_protocol_model_runs_in_eval_without_dropout_and_mode_is_restored():
    model = TinyTransformer(vocab_size=VOCAB)
    assert isinstance(model, AttentionModel)
    model.train()
    probe = as_probe_model(model)
    _, attentions = probe.forward(torch.arange(10))
    rows = torch.stack(attentions).sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows))  # no dropout during the probe
    assert model.training
    assert (probe.num_layers, probe.num_heads, probe.vocab_size, probe.max_length) == (
        2,
        2,
        VOCAB,
        64,
    )
    with pytest.raises(ValueError, match="takes no attention_mask"):
        probe.forward(torch.arange(4), attention_mask=torch.ones(4))


def test_logits_pass_restores_every_module_mode_and_matches_the_attention_pass():
    model = tiny_gpt2(VOCAB)
    model.train()
    model.transformer.h[0].eval()  # a frozen part the user keeps in eval mode
    modes = [m.training for m in model.modules()]
    probe = as_probe_model(model)
    ids = torch.arange(12).unsqueeze(0)
    full, _ = probe.forward(ids)
    with probe.probing(attention=False):
        kept = probe.logits(ids, keep=5)
        _, attentions = probe.forward(ids)  # nested: switches to eager for this pass only
    assert [m.training for m in model.modules()] == modes
    torch.testing.assert_close(kept, full[:, -5:])
    assert len(attentions) == probe.num_layers
    assert model.config._attn_implementation == "sdpa"


def test_protocol_logits_come_from_forward_with_attentions_and_are_checked():
    class LastOnly(TinyTransformer):
        def forward_with_attentions(self, input_ids):
            logits, attentions = super().forward_with_attentions(input_ids)
            return logits[:, -1:], attentions

    model = TinyTransformer(vocab_size=VOCAB)
    probe = as_probe_model(model)
    ids = torch.arange(9).unsqueeze(0)
    expected = model.eval().forward_with_attentions(ids)[0]
    torch.testing.assert_close(probe.logits(ids), expected)
    torch.testing.assert_close(probe.logits(ids, keep=3), expected[:, -3:])
    with pytest.raises(ValueError, match=r"logits of shape \[1, 1, 64\].*logits at every position"):
        as_probe_model(LastOnly(vocab_size=VOCAB)).logits(ids)


def test_a_logits_function_gives_logits_and_refuses_attention():
    model = TinyTransformer(vocab_size=VOCAB).train()
    probe = as_probe_model(LogitsFunction(model, max_length=64))
    assert (probe.max_length, probe.has_attention, probe.module.function) == (64, False, model)
    ids = torch.arange(6).unsqueeze(0)
    torch.testing.assert_close(probe.logits(ids), model.eval().forward(ids))
    model.train()
    probe.logits(ids)
    assert model.training  # its mode is saved and restored like any other model's
    with pytest.raises(TypeError, match="gives logits only, no attention"):
        probe.forward(ids)


def test_protocol_model_with_wrong_attention_shapes_is_reported():
    class Broken(TinyTransformer):
        def forward_with_attentions(self, input_ids):
            logits, attentions = super().forward_with_attentions(input_ids)
            return logits, attentions[:1]

    with pytest.raises(RuntimeError, match="returned 1 attention tensors for num_layers=2"):
        as_probe_model(Broken()).forward(torch.arange(4))


class HoldsModel(pl.LightningModule):
    def __init__(self, **children):
        super().__init__()
        for name, child in children.items():
            setattr(self, name, child)


def test_as_probe_model_finds_the_model_in_a_lightning_module():
    hf, custom = gpt2(), TinyTransformer()
    assert as_probe_model(HoldsModel(model=hf)).module is hf
    assert as_probe_model(HoldsModel(net=custom)).module is custom
    # `model` wins over the documented list, which wins over the search
    assert as_probe_model(HoldsModel(backbone=custom, model=hf)).module is hf
    nested = HoldsModel(parts=nn.ModuleDict({"encoder": nn.Linear(2, 2), "lm": nn.Sequential(hf)}))
    assert as_probe_model(nested).module is hf
    existing = ProbeModel(hf)
    assert as_probe_model(existing) is existing
    assert as_probe_model(torch.compile(hf)).module is hf


def test_as_probe_model_errors_list_what_was_looked_for():
    with pytest.raises(TypeError, match=r"model, net, network, lm.*self\.model"):
        as_probe_model(HoldsModel(head=nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="cannot find a model"):
        as_probe_model("gpt2")
    two = HoldsModel(teacher=nn.Sequential(gpt2()), student=nn.Sequential(TinyTransformer()))
    with pytest.raises(ValueError, match=r"several models.*teacher\.0.*student\.0"):
        as_probe_model(two)


def test_find_tokenizer_looks_on_the_module_then_the_datamodule():
    module = HoldsModel()
    module.tokenizer = "tok"
    assert find_tokenizer(module) == "tok"
    other = HoldsModel()
    other._trainer = SimpleNamespace(datamodule=SimpleNamespace(tokenizer="dm-tok"))
    assert find_tokenizer(other) == "dm-tok"
    assert find_tokenizer(HoldsModel(), required=False) is None
    with pytest.raises(AttributeError, match=r"set `self\.tokenizer = tokenizer`"):
        find_tokenizer(HoldsModel())


def _python_blocks(path: Path) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))


@pytest.mark.parametrize(
    "page",
    [
        "models.md",
        "measures/attention_entropy.md",
        "measures/head_scores.md",
        "measures/syntactic.md",
    ],
)
def test_docs_examples_run_as_written(page):
    code = _python_blocks(DOCS / page)
    assert code.strip(), f"no python example in docs/{page}"
    exec(compile(code, f"docs/{page}", "exec"), {"__name__": "docs_example"})


# --- attentions against Hugging Face's own eager output, and the docs' printed numbers ---------


@pytest.mark.parametrize("name", sorted(HF_BUILDERS))
def test_probe_attentions_equal_the_models_own_eager_output_attentions(name):
    """Llama (grouped-query, rotary), NeoX (rotary) and GPT-2, each built as SDPA: the probe's
    attention equals ``output_attentions=True`` of the same weights loaded into an eager model."""
    model = HF_BUILDERS[name]()
    with torch.no_grad():  # sharpen the attention: at init every head is near uniform
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(10.0)
    assert model.config._attn_implementation == "sdpa"
    eager = type(model)._from_config(model.config, attn_implementation="eager")
    eager.load_state_dict(model.state_dict())
    eager.eval()
    ids = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = eager(ids, output_attentions=True)
    logits, attentions = as_probe_model(model).forward(ids)
    assert len(attentions) == len(reference.attentions) == 2
    expected_heads = {"gpt2": 2, "neox": 4, "llama": 4}[name]  # Llama: 4 query heads, 2 KV heads
    for ours, theirs in zip(attentions, reference.attentions, strict=True):
        assert ours.shape == theirs.shape == (2, expected_heads, 16, 16)
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits, reference.logits, atol=1e-5, rtol=0)
    # far from uniform (1 / (i + 1) on row i), so the equality says something
    stacked = torch.stack(attentions)
    uniform = torch.ones(16, 16).tril() / torch.arange(1, 17).unsqueeze(1)
    assert (stacked - uniform).abs().amax() > 0.5


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _print_comments(code: str) -> dict[int, str]:
    """Line of a ``print`` → its comment: on the same line, or alone on the next line."""
    import io
    import tokenize

    comments, lines = {}, code.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.string[1:].strip(), tok.line.strip().startswith("#"))
    out = {}
    for number, line in enumerate(lines, 1):
        if "print(" not in line:
            continue
        same, below = comments.get(number), comments.get(number + 1)
        if same is not None and not same[1]:
            out[number] = same[0]
        elif below is not None and below[1]:
            out[number] = below[0]
    return out


def _says_the_same(printed: str, comment: str) -> bool:
    """The comment's claim (before any ``": "`` gloss) agrees with what was printed.

    Equal text; or "all ones" and every printed number is 1; or the comment's numbers appear in
    the printed ones in order, each to the comment's own precision.
    """
    claim = comment.split(": ")[0].strip()
    if printed.strip() == claim:
        return True
    found = [float(n) for n in _NUMBER.findall(printed)]
    if claim == "all ones":
        return bool(found) and all(n == 1 for n in found)
    wanted = _NUMBER.findall(claim)
    if not wanted:
        return False
    i = 0
    for n in found:
        decimals = len(wanted[i].partition(".")[2])
        if round(n, decimals) == float(wanted[i]):
            i += 1
            if i == len(wanted):
                return True
    return False


@pytest.mark.parametrize(
    "page",
    [
        "models.md",
        "measures/attention_entropy.md",
        "measures/head_scores.md",
        "measures/syntactic.md",
        "corpus.md",
    ],
)
def test_docs_examples_print_what_their_comments_say(page):
    code = _python_blocks(DOCS / page)
    claims = _print_comments(code)
    printed = []

    def recording_print(*args, sep=" ", **_):
        import sys

        printed.append((sys._getframe(1).f_lineno, sep.join(str(a) for a in args)))

    exec(
        compile(code, f"docs/{page}", "exec"),
        {"__name__": "docs_example", "print": recording_print},
    )
    checked = [(line, text, claims[line]) for line, text in printed if line in claims]
    assert checked, f"docs/{page}: no print with a comment saying what it prints"
    wrong = [
        (line, text, claim) for line, text, claim in checked if not _says_the_same(text, claim)
    ]
    assert wrong == [], f"docs/{page}: printed vs the comment: {wrong}"


def test_the_docs_print_check_can_fail():
    assert _says_the_same("10256", "10256: one arc per word")
    assert not _says_the_same("10255", "10256: one arc per word")
    assert not _says_the_same("HeadSummary(max=0.5 at L1H0)", "HeadSummary(max=1 at L1H0)")
    assert not _says_the_same("tensor([[1., 0.9]])", "all ones: uniform heads")
    assert _says_the_same("x 2 torch.Size([1, 2, 10, 10])", "2 × [1, 2, 10, 10]")
    assert not _says_the_same("x 2 torch.Size([1, 2, 10, 12])", "2 × [1, 2, 10, 10]")
    assert not _says_the_same("The dog sat.", "The cat sat.")

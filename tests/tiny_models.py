"""Tiny Hugging Face causal LMs built from configs (seeded) and tiny byte-level BPE tokenizers,
shared by the measure tests."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)


def tiny_gpt2(
    vocab_size: int,
    zero_queries_and_keys: bool = False,
    *,
    n_positions: int = 128,
    **overrides,
) -> GPT2LMHeadModel:
    """GPT-2, 2 layers × 2 heads × 32 dims; ``zero_queries_and_keys`` makes attention uniform."""
    torch.manual_seed(0)
    config = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=vocab_size, n_positions=n_positions)
    config.update(bos_token_id=0, eos_token_id=0, **overrides)
    model = GPT2LMHeadModel(GPT2Config(**config))
    if zero_queries_and_keys:
        with torch.no_grad():
            for block in model.transformer.h:
                width = block.attn.embed_dim
                block.attn.c_attn.weight[:, : 2 * width] = 0.0  # Conv1D: [in, 3·out]
                block.attn.c_attn.bias[: 2 * width] = 0.0
    return model


def tiny_neox(vocab_size: int, *, max_positions: int = 128) -> GPTNeoXForCausalLM:
    """GPT-NeoX, 2 layers × 4 heads × 32 dims."""
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        num_hidden_layers=2,
        num_attention_heads=4,
        hidden_size=32,
        intermediate_size=64,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
    )
    return GPTNeoXForCausalLM(config)


def tiny_llama(vocab_size: int, *, max_positions: int = 128) -> LlamaForCausalLM:
    """Llama, 2 layers × 4 heads (2 key-value heads) × 32 dims."""
    torch.manual_seed(0)
    config = LlamaConfig(
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_size=32,
        intermediate_size=64,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
    )
    return LlamaForCausalLM(config)


def byte_level_bpe(
    training: list[str], *, vocab_size: int = 300, trim_offsets: bool | None = None
) -> Tokenizer:
    """A GPT-2-style byte-level BPE trained on ``training`` in a fraction of a second, with
    ``<|endoftext|>`` as its one special token; ``trim_offsets`` sets a ByteLevel post-processor."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tok.train_from_iterator(training, trainer)
    if trim_offsets is not None:
        tok.post_processor = processors.ByteLevel(trim_offsets=trim_offsets)
    return tok


def as_transformers_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """``tok`` as a transformers tokenizer with ``<|endoftext|>`` as BOS and EOS."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )

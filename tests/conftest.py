import os
from pathlib import Path

import pytest
import torch

# Tests read the shared corpora; CI sets this too. Fall back to ../shared/corpora beside the repo.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
if "PHASEWATCH_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["PHASEWATCH_DATA"] = str(_SHARED)

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def ns_corpus():
    from phasewatch.corpora import load

    return load("naturalstories")


@pytest.fixture(scope="session")
def ns_tokenizer(ns_corpus):
    """A byte-level BPE tokenizer (vocab 300) trained on the Natural Stories texts in a second."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(ns_corpus.texts.values()), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def ns_token_ids(ns_corpus, ns_tokenizer):
    """All Natural Stories texts as one stream of token ids."""
    text = " ".join(ns_corpus.texts.values())
    return torch.tensor(ns_tokenizer(text)["input_ids"], dtype=torch.long)

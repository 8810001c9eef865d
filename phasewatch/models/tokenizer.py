"""Loading a tokenizer from disk (a ``tokenizer.json`` file or a saved directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_tokenizer(path: str | Path) -> Any:
    """A Hugging Face fast tokenizer from a ``tokenizer.json`` file or a saved directory.

    A bare ``tokenizer.json`` with exactly one special token gets it as BOS and EOS.
    """
    from transformers import PreTrainedTokenizerFast  # deferred: heavy import

    path = Path(path)
    if path.is_dir():
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    if path.is_file():
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
        specials = [t.content for t in tokenizer.added_tokens_decoder.values() if t.special]
        if tokenizer.bos_token is None and len(specials) == 1:
            # A bare tokenizer.json names no BOS/EOS; its one special token (e.g. <|endoftext|>)
            # is what a GPT-2-style model sees at the start of a text.
            tokenizer.bos_token = tokenizer.eos_token = specials[0]
        return tokenizer
    raise FileNotFoundError(
        f"tokenizer_path {str(path)!r} does not exist; give a tokenizer.json file or a directory "
        "saved with `tokenizer.save_pretrained(...)`"
    )

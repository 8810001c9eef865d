"""Finding the model and tokenizer a callback measures, on the LightningModule or by path."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule

from phasewatch.callbacks.sharding import led
from phasewatch.measures.tokenization import TextTokenizer, as_text_tokenizer
from phasewatch.models import ProbeModel, as_probe_model, find_tokenizer, load_tokenizer


def resolve_model(pl_module: LightningModule, model_attr: str | None) -> ProbeModel:
    """The probe adapter of the model inside ``pl_module`` (attribute ``model_attr`` if given);
    while rank zero leads a sharded measurement, one that sends its passes to the other ranks
    (:func:`phasewatch.callbacks.sharding.led`)."""
    if model_attr is None:
        return led(as_probe_model(pl_module))
    if not hasattr(pl_module, model_attr):
        raise AttributeError(
            f"{type(pl_module).__name__} has no attribute {model_attr!r} (the callback's "
            "`model_attr`); set it to the attribute holding your Hugging Face model, or leave it "
            "None to search the module"
        )
    return led(as_probe_model(getattr(pl_module, model_attr)))


def check_token_id(name: str, value: Any) -> None:
    """A callback's ``bos_token_id``: ``None`` or an int >= 0 (checked at construction)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(
            f"`{name}` must be None (the tokenizer's BOS, else its EOS) or an int >= 0, "
            f"got {value!r}"
        )


def resolve_tokenizer(
    pl_module: LightningModule,
    tokenizer: Any,
    tokenizer_path: str | None,
    tokenizer_attr: str,
    bos_token_id: int | None = None,
) -> TextTokenizer:
    """The tokenizer given, loaded from ``tokenizer_path``, or found on ``pl_module``, as a
    :class:`~phasewatch.measures.tokenization.TextTokenizer` whose BOS is ``bos_token_id`` if
    given (else the tokenizer's BOS, else its EOS): every measure uses that one BOS."""
    if tokenizer is not None:
        return as_text_tokenizer(tokenizer, bos_token_id=bos_token_id)
    if tokenizer_path is not None:
        return as_text_tokenizer(load_tokenizer(tokenizer_path), bos_token_id=bos_token_id)
    found = getattr(pl_module, tokenizer_attr, None)
    if found is None and tokenizer_attr == "tokenizer":
        found = find_tokenizer(pl_module, required=False)  # also looks on the datamodule
    if found is None:
        raise AttributeError(
            f"no tokenizer: {type(pl_module).__name__} has no attribute {tokenizer_attr!r}; set "
            "`self.tokenizer` on your LightningModule, or pass `tokenizer=` / `tokenizer_path=` "
            "(a tokenizer.json file or a Hugging Face tokenizer directory) to the callback"
        )
    return as_text_tokenizer(found, bos_token_id=bos_token_id)

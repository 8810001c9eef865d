"""Finding the model and tokenizer a callback measures, on the LightningModule or by path."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule

from phasewatch.models import ProbeModel, as_probe_model, find_tokenizer, load_tokenizer


def resolve_model(pl_module: LightningModule, model_attr: str | None) -> ProbeModel:
    """The probe adapter of the model inside ``pl_module`` (attribute ``model_attr`` if given)."""
    if model_attr is None:
        return as_probe_model(pl_module)
    if not hasattr(pl_module, model_attr):
        raise AttributeError(
            f"{type(pl_module).__name__} has no attribute {model_attr!r} (the callback's "
            "`model_attr`); set it to the attribute holding your Hugging Face model, or leave it "
            "None to search the module"
        )
    return as_probe_model(getattr(pl_module, model_attr))


def resolve_tokenizer(
    pl_module: LightningModule, tokenizer: Any, tokenizer_path: str | None, tokenizer_attr: str
) -> Any:
    """A tokenizer object given, loaded from ``tokenizer_path``, or found on ``pl_module``."""
    if tokenizer is not None:
        return tokenizer
    if tokenizer_path is not None:
        return load_tokenizer(tokenizer_path)
    found = getattr(pl_module, tokenizer_attr, None)
    if found is None and tokenizer_attr == "tokenizer":
        found = find_tokenizer(pl_module, required=False)  # also looks on the datamodule
    if found is None:
        raise AttributeError(
            f"no tokenizer: {type(pl_module).__name__} has no attribute {tokenizer_attr!r}; set "
            "`self.tokenizer` on your LightningModule, or pass `tokenizer=` / `tokenizer_path=` "
            "(a tokenizer.json file or a Hugging Face tokenizer directory) to the callback"
        )
    return found

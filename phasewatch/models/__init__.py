"""How phasewatch talks to a model: logits and attention probabilities for a probe batch."""

from phasewatch.models.logits_function import LogitsFunction
from phasewatch.models.probe import CONTAINER_ATTRIBUTES, ProbeModel, as_probe_model, find_tokenizer
from phasewatch.models.protocol import AttentionModel
from phasewatch.models.reference import (
    HandBuiltTransformer,
    induction_circuit_model,
    uniform_attention_model,
)
from phasewatch.models.tokenizer import load_tokenizer

__all__ = [
    "CONTAINER_ATTRIBUTES",
    "AttentionModel",
    "HandBuiltTransformer",
    "LogitsFunction",
    "ProbeModel",
    "as_probe_model",
    "find_tokenizer",
    "induction_circuit_model",
    "load_tokenizer",
    "uniform_attention_model",
]

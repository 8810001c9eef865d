"""How phasewatch talks to a model: logits and attention probabilities for a probe batch."""

from typing import TYPE_CHECKING

from phasewatch._lazy import lazy_exports

if TYPE_CHECKING:
    from phasewatch.models.logits_function import LogitsFunction
    from phasewatch.models.probe import (
        CONTAINER_ATTRIBUTES,
        ProbeModel,
        as_probe_model,
        find_tokenizer,
    )
    from phasewatch.models.protocol import AttentionModel
    from phasewatch.models.reference import (
        HandBuiltTransformer,
        induction_circuit_model,
        uniform_attention_model,
    )
    from phasewatch.models.tokenizer import load_tokenizer

# imported on first use (PEP 562): `import phasewatch.models.<module>` loads only that module
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "phasewatch.models.logits_function": ["LogitsFunction"],
        "phasewatch.models.probe": [
            "CONTAINER_ATTRIBUTES",
            "ProbeModel",
            "as_probe_model",
            "find_tokenizer",
        ],
        "phasewatch.models.protocol": ["AttentionModel"],
        "phasewatch.models.reference": [
            "HandBuiltTransformer",
            "induction_circuit_model",
            "uniform_attention_model",
        ],
        "phasewatch.models.tokenizer": ["load_tokenizer"],
    },
)

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

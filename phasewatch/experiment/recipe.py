"""The recipe of the causal experiment: model, data, schedule and regularizer weight.

The demo's pieces (:class:`~phasewatch.demo.config.DemoConfig`: BPE tokenizer trained on the
novels, a share of random token spans tiled to the context length, a 2-layer GPT-2) at a scale
where the induction transition comes within ~1-2 minutes on 2 CPU threads: a larger synthetic
share than the demo's 30 % and fewer steps. PPP needs English text and a tokenizer, so the pure
random-token recipe of the tests is not enough alone. Measured (induction max, no monitors but
the attention one, 2 loaded CPU threads): 80 % synthetic with spans of 20-50 tokens at learning
rate 1e-3 rises 0.027 → 0.706 between steps 800 and 1100; with the demo's spans of 5-50 tokens
and learning rate 3e-3 it stayed below 0.04 for 2,000 steps. :meth:`ControlRecipe.demo` is the
demo's own scale (transition at step ~2600 of 4500).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from phasewatch.demo.config import DemoConfig

#: The short recipe's data/model settings (measured: docs/control.md, "The causal experiment").
SHORT_CONFIG = DemoConfig().with_(
    repeat_fraction=0.8,
    span_lengths=(20, 50),
    learning_rate=1e-3,
    max_steps=1400,
    val_check_interval=1400,
)


@dataclass(frozen=True)
class ControlRecipe:
    """Both runs of the experiment: the same configuration and seed, λ = 0 and λ = ``weight``.

    Attributes:
        config: model, data and optimisation (a :class:`DemoConfig`; ``seed`` seeds both runs).
        weight: λ of the copying regularizer in the treated run (unitless; the penalty is an
            attention probability, so λ weighs it against the loss in nats/token).
        every_n_steps, per_decade: measurement schedule of every monitor (the same in both runs,
            so the runs are compared at the same steps).
        name: recipe name, printed.
        ppp_options, attention_options: further arguments of the :class:`PPPMonitor` (e.g.
            ``corpus=``) and :class:`AttentionMonitor` (e.g. ``syntactic=False``) of both runs.
    """

    config: DemoConfig = field(default_factory=lambda: SHORT_CONFIG)
    weight: float = 1.0
    every_n_steps: int = 100
    per_decade: int = 6
    name: str = "short"
    ppp_options: dict[str, Any] = field(default_factory=dict)
    attention_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(
                f"`weight` (λ of the treated run) must be > 0, got {self.weight}; the baseline "
                "run already has λ = 0"
            )
        if self.every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be >= 1, got {self.every_n_steps}")

    @classmethod
    def short(cls, **changes: Any) -> ControlRecipe:
        """The default recipe: transition within ~1-2 minutes on 2 CPU threads."""
        return replace(cls(), **changes)

    @classmethod
    def demo(cls, **changes: Any) -> ControlRecipe:
        """The demo's scale (:class:`DemoConfig` defaults: 4,500 steps, transition ~step 2600)."""
        return replace(cls(config=DemoConfig(), name="demo"), **changes)

    def with_(self, **changes: Any) -> ControlRecipe:
        """A copy with some fields changed; ``max_steps`` etc. go to the config."""
        config_fields = set(DemoConfig.__dataclass_fields__)
        config_changes = {k: v for k, v in changes.items() if k in config_fields}
        own = {k: v for k, v in changes.items() if k not in config_fields}
        return replace(self, config=self.config.with_(**config_changes), **own)

    def describe(self) -> str:
        """One line: the recipe, the model and data, λ."""
        return (
            f"recipe {self.name!r}: {self.config.describe()} "
            f"Copying regularizer λ = {self.weight:g}."
        )

    def to_dict(self) -> dict[str, Any]:
        options = {f"ppp_{k}": str(v) for k, v in self.ppp_options.items()}
        options.update({f"attention_{k}": str(v) for k, v in self.attention_options.items()})
        return {**asdict(self.config), "weight": self.weight, "recipe": self.name, **options}

"""Experiments that act on training: ``phasewatch experiment control`` (the causal experiment)."""

from phasewatch.experiment.per_word import keep_per_word, load_per_word, save_per_word
from phasewatch.experiment.recipe import ControlRecipe
from phasewatch.experiment.run import (
    ExperimentResult,
    run_control_experiment,
    summarize_experiment,
)
from phasewatch.experiment.summary import ExperimentSummary, StepDifference, paired_between_runs

__all__ = [
    "ControlRecipe",
    "ExperimentResult",
    "ExperimentSummary",
    "StepDifference",
    "keep_per_word",
    "load_per_word",
    "paired_between_runs",
    "run_control_experiment",
    "save_per_word",
    "summarize_experiment",
]

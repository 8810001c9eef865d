"""phasewatch: Lightning callbacks that watch a language model's fit to human reading times
(psychometric predictive power, ΔLL) and the attention-head phase transition during training."""

from phasewatch.callbacks import (
    AttentionMonitor,
    MeasureSchedule,
    PeakMonitor,
    PhaseTransitionWarning,
    PhasewatchMonitor,
    PPPMonitor,
    TransitionMonitor,
)
from phasewatch.corpora import CorpusDataError, ReadingTimeCorpus, load, load_tsv
from phasewatch.detect import (
    PeakEvent,
    PeakTracker,
    TransitionDetector,
    TransitionEvent,
    detect_transitions,
)
from phasewatch.measures import (
    PPPResult,
    all_head_scores,
    attention_entropy,
    delta_loglik,
    head_scores,
    syntactic_scores,
    word_surprisal,
)
from phasewatch.models import AttentionModel, ProbeModel, as_probe_model

__version__ = "0.1.0"

__all__ = [
    "AttentionModel",
    "AttentionMonitor",
    "CorpusDataError",
    "MeasureSchedule",
    "PPPMonitor",
    "PPPResult",
    "PeakEvent",
    "PeakMonitor",
    "PeakTracker",
    "PhaseTransitionWarning",
    "PhasewatchMonitor",
    "ProbeModel",
    "ReadingTimeCorpus",
    "TransitionDetector",
    "TransitionEvent",
    "TransitionMonitor",
    "__version__",
    "all_head_scores",
    "as_probe_model",
    "attention_entropy",
    "delta_loglik",
    "detect_transitions",
    "head_scores",
    "load",
    "load_tsv",
    "syntactic_scores",
    "word_surprisal",
]

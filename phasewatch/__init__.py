"""phasewatch: Lightning callbacks that watch a language model's fit to human reading times
(psychometric predictive power, ΔLL) and the attention-head phase transition during training.

Public names are imported on first use (PEP 562), so ``import phasewatch.detect`` or
``phasewatch.corpora`` does not load Lightning, transformers or torch.
"""

from typing import TYPE_CHECKING

from phasewatch._lazy import lazy_exports

if TYPE_CHECKING:
    from phasewatch.callbacks import (
        AttentionMonitor,
        MeasureSchedule,
        PeakMonitor,
        PhaseTransitionWarning,
        PhasewatchMonitor,
        PPPMonitor,
        TransitionMonitor,
        WebhookNotifier,
        WebhookWarning,
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

# name -> the module that defines it (not the subpackage: only that module is imported)
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "phasewatch.callbacks.attention": ["AttentionMonitor"],
        "phasewatch.callbacks.base": ["PhasewatchMonitor"],
        "phasewatch.callbacks.notify": ["WebhookNotifier", "WebhookWarning"],
        "phasewatch.callbacks.peak": ["PeakMonitor"],
        "phasewatch.callbacks.ppp": ["PPPMonitor"],
        "phasewatch.callbacks.schedule": ["MeasureSchedule"],
        "phasewatch.callbacks.transition": ["PhaseTransitionWarning", "TransitionMonitor"],
        "phasewatch.corpora": ["CorpusDataError", "ReadingTimeCorpus", "load", "load_tsv"],
        "phasewatch.detect.events": ["PeakEvent", "TransitionEvent"],
        "phasewatch.detect.peak": ["PeakTracker"],
        "phasewatch.detect.transition": ["TransitionDetector", "detect_transitions"],
        "phasewatch.measures.delta_loglik": ["PPPResult", "delta_loglik"],
        "phasewatch.measures.entropy": ["attention_entropy"],
        "phasewatch.measures.head_scores": ["all_head_scores", "head_scores"],
        "phasewatch.measures.surprisal": ["word_surprisal"],
        "phasewatch.measures.syntactic": ["syntactic_scores"],
        "phasewatch.models.probe": ["ProbeModel", "as_probe_model"],
        "phasewatch.models.protocol": ["AttentionModel"],
    },
)

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
    "WebhookNotifier",
    "WebhookWarning",
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

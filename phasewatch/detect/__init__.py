"""Detectors over a metric's history: plain numbers in, typed events out."""

from phasewatch.detect.events import PeakEvent, TransitionEvent
from phasewatch.detect.peak import PeakTracker, find_peak
from phasewatch.detect.transition import TransitionDetector, detect_transitions
from phasewatch.detect.watch import DEFAULT_WATCH, PAPER_WATCH

__all__ = [
    "DEFAULT_WATCH",
    "PAPER_WATCH",
    "PeakEvent",
    "PeakTracker",
    "TransitionDetector",
    "TransitionEvent",
    "detect_transitions",
    "find_peak",
]

"""Detectors over a metric's history: plain numbers in, typed events out."""

from phasewatch.detect.events import PeakEvent, TransitionEvent
from phasewatch.detect.peak import PeakTracker, find_peak
from phasewatch.detect.transition import TransitionDetector, detect_transitions

__all__ = [
    "PeakEvent",
    "PeakTracker",
    "TransitionDetector",
    "TransitionEvent",
    "detect_transitions",
    "find_peak",
]

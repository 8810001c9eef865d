"""Lightning callbacks: thin shells that schedule the measures, log them, and act on events."""

from phasewatch.callbacks.attention import AttentionMonitor
from phasewatch.callbacks.base import MeasurementListener, PhasewatchMonitor
from phasewatch.callbacks.notify import WebhookNotifier, WebhookWarning
from phasewatch.callbacks.peak import PeakMonitor
from phasewatch.callbacks.ppp import PPPMonitor
from phasewatch.callbacks.schedule import MeasureSchedule
from phasewatch.callbacks.transition import PhaseTransitionWarning, TransitionMonitor

__all__ = [
    "AttentionMonitor",
    "MeasureSchedule",
    "MeasurementListener",
    "PPPMonitor",
    "PeakMonitor",
    "PhaseTransitionWarning",
    "PhasewatchMonitor",
    "TransitionMonitor",
    "WebhookNotifier",
    "WebhookWarning",
]

"""Figures and the run report: TensorBoard heatmaps, ``report.png``/``report.html``, summaries."""

from phasewatch.report.history import RunHistory, load_history
from phasewatch.report.summary import RunSummary, summarize_run

#: Names that need matplotlib, imported on first use (the training path draws without it).
_WITH_MATPLOTLIB = {
    "head_heatmaps": "phasewatch.report.heatmaps",
    "report_figure": "phasewatch.report.figure",
    "write_report": "phasewatch.report.write",
}


def __getattr__(name: str):
    if name in _WITH_MATPLOTLIB:
        import importlib

        return getattr(importlib.import_module(_WITH_MATPLOTLIB[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RunHistory",
    "RunSummary",
    "head_heatmaps",
    "load_history",
    "report_figure",
    "summarize_run",
    "write_report",
]

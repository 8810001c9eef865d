"""Figures and the run report: TensorBoard heatmaps, ``report.png``/``report.html``, summaries."""

from phasewatch.report.figure import report_figure
from phasewatch.report.heatmaps import head_heatmaps
from phasewatch.report.history import RunHistory, load_history
from phasewatch.report.summary import RunSummary, summarize_run
from phasewatch.report.write import write_report

__all__ = [
    "RunHistory",
    "RunSummary",
    "head_heatmaps",
    "load_history",
    "report_figure",
    "summarize_run",
    "write_report",
]

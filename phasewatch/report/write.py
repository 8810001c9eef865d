"""Write ``report.png`` and ``report.html`` for a run directory."""

from __future__ import annotations

import html
from pathlib import Path

from phasewatch import keys
from phasewatch.detect.peak import DEFAULT_MIN_Z
from phasewatch.report.figure import report_figure
from phasewatch.report.history import load_history
from phasewatch.report.summary import summarize_run


def write_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    dpi: int = 90,
    min_z: float = DEFAULT_MIN_Z,
    key: str = keys.PPP_DELTA_LL,
) -> dict:
    """Regenerate the report of a run from its history; returns the paths written.

    ``out_dir`` defaults to the folder holding the history file. Writes ``report.png`` (curves
    against tokens with transition and peak marked, per-head heatmaps) and ``report.html`` (the
    figure and the summary text). ``min_z``: threshold of the paired tests that call a PPP peak
    (standard errors, default 2). ``key``: the ΔLL series the peak is decided on (default
    ``ppp/delta_ll``, with several corpora their mean; e.g. ``"ppp/dundee/delta_ll"``); every
    series is plotted whichever is chosen.
    """
    history = load_history(run_dir)
    out = Path(out_dir) if out_dir is not None else history.path.parent
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_run(history, min_z=min_z, key=key)
    png = out / "report.png"
    report_figure(history, min_z=min_z, key=key).savefig(png, dpi=dpi)
    page = out / "report.html"
    events = (
        "".join(f"<li>{html.escape(str(e))}</li>" for e in history.transitions) or "<li>none</li>"
    )
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>phasewatch report</title>"
        "<h1>phasewatch report</h1>"
        f"<p>history: <code>{html.escape(str(history.path))}</code></p>"
        f"<pre>{html.escape(str(summary))}</pre>"
        f"<h2>Transition events</h2><ul>{events}</ul>"
        "<img src='report.png' style='max-width:100%'>",
        encoding="utf-8",
    )
    return {"png": png, "html": page, "summary": summary, "history": history}

"""The run report figure: PPP, head maxima and loss against tokens, with per-head heatmaps."""

from __future__ import annotations

from matplotlib.figure import Figure

from phasewatch import keys
from phasewatch.detect.peak import DEFAULT_MIN_Z
from phasewatch.head_kinds import head_series
from phasewatch.report.heatmaps import head_heatmaps, panel_title
from phasewatch.report.history import RunHistory
from phasewatch.report.summary import curve_label, ppp_series, summarize_run

#: Head series drawn in the report (key → legend): each kind's max over heads, then SAS.
HEAD_SERIES = head_series()
LOSS_KEYS = keys.LOSS_KEYS


def report_figure(
    history: RunHistory,
    title: str = "phasewatch run report",
    *,
    min_z: float = DEFAULT_MIN_Z,
    key: str = keys.PPP_DELTA_LL,
) -> Figure:
    """Curves on one token axis (transition: red dashed, PPP peak: green) and heatmaps below.

    Every ΔLL series is drawn: ``ppp/delta_ll`` (with several corpora their mean) and the
    tokens-controlled one bold with ± SE bands, each corpus's ``ppp/<corpus>/delta_ll`` thinner.
    A PPP peak is marked only when the summary's paired tests on ``key`` pass at ``min_z``
    standard errors.
    """
    summary = summarize_run(history, min_z=min_z, key=key)
    fig = Figure(figsize=(11, 11))
    grid = fig.add_gridspec(
        5,
        4,
        height_ratios=[1.2, 1.0, 0.8, 0.9, 0.9],
        hspace=0.75,
        wspace=0.55,
        left=0.09,
        right=0.97,
        top=0.95,
        bottom=0.05,
    )
    ax_ppp = fig.add_subplot(grid[0, :])
    ax_heads = fig.add_subplot(grid[1, :], sharex=ax_ppp)
    ax_loss = fig.add_subplot(grid[2, :], sharex=ax_ppp)

    x = history.axis  # tokens, or steps when the run did not record tokens
    several = summary.several_corpora
    for number, series in enumerate(ppp_series(history)):
        ppp, se = history.get(series), history.get(keys.se_key(series))
        own = keys.split_prefix(series)[1] is not None  # a corpus's (or prefixed monitor's)
        label = _curve_legend(series, several)
        style = dict(ms=2, lw=0.9, alpha=0.8) if own and series != key else dict(ms=3, lw=1.6)
        line = ax_ppp.plot(ppp[x], ppp["value"], "o-" if not own else "s--", label=label, **style)[
            0
        ]
        line.set_gid(series)  # the key a line draws, for readers of the figure (and tests)
        if se is not None and len(se) == len(ppp):
            low, high = ppp["value"] - se["value"], ppp["value"] + se["value"]
            alpha = 0.1 if own else 0.25
            ax_ppp.fill_between(ppp[x], low, high, color=f"C{number}", alpha=alpha)
        line.set_color(f"C{number}")
    if ppp_series(history):
        ax_ppp.axhline(0, color="grey", lw=0.5)
        ax_ppp.legend(fontsize=7, loc="lower right")
    else:
        ax_ppp.text(0.5, 0.5, "PPP not measured", ha="center", transform=ax_ppp.transAxes)
    ax_ppp.set_ylabel("PPP: ΔLL\n(nats/word ± SE)")

    for head_key, label in HEAD_SERIES.items():
        frame = history.get(head_key)
        if frame is not None:
            ax_heads.plot(frame[x], frame["value"], "o-", ms=2, label=label)
    ax_heads.set_ylabel("head score\n(0–1)")
    ax_heads.set_ylim(-0.02, 1.02)
    ax_heads.legend(fontsize=7, loc="upper left")

    loss = next((history.get(k) for k in LOSS_KEYS if history.get(k) is not None), None)
    if loss is not None:
        ax_loss.plot(loss[x], loss["value"], "-", color="C3")
    ax_loss.set_ylabel("train loss\n(nats/token)")
    ax_loss.set_xlabel("tokens seen" if x == "tokens" else "step (tokens not recorded)")

    for ax in (ax_ppp, ax_heads, ax_loss):
        for event in summary.transitions:
            at = event.tokens if x == "tokens" else event.step
            if at is not None:
                ax.axvline(at, color="red", ls="--", lw=1)
        if summary.ppp_peaked:
            peak = summary.ppp_max
            ax.axvline(peak.tokens if x == "tokens" else peak.step, color="green", ls=":", lw=1.5)
        ax.grid(alpha=0.3)
    marks = [] if key == keys.PPP_DELTA_LL else [f"peak decided on {key}"]
    if summary.transitions:
        marks.append("red dashed: transition")
    if summary.ppp_peaked:
        marks.append("green dotted: PPP peak")
    elif summary.ppp_max is not None:
        marks.append("no PPP peak")
    ax_ppp.set_title(f"{title}  ({'; '.join(marks) or 'no transition detected'})", fontsize=10)

    positive = [t for f in history.series.values() for t in f[x] if t > 0]
    if positive and max(positive) / min(positive) > 100:  # dense early evaluations: log axis
        ax_loss.set_xscale("symlog", linthresh=min(positive))
        ax_loss.set_xlim(left=0)
        ax_loss.set_xlabel(
            f"{'tokens seen' if x == 'tokens' else 'step'} (log scale above the first evaluation)"
        )
    _heatmap_rows(fig, grid, history, summary)
    return fig


def _curve_legend(series: str, several: bool) -> str:
    """Legend of a ΔLL curve: its words, baseline and key."""
    label = curve_label(series, several_corpora=several)
    tokctrl = keys.split_prefix(series)[0] == keys.PPP_DELTA_LL_TOKCTRL
    baseline = "tokens per word in the baseline too" if tokctrl else "baseline: length, log freq"
    return f"{label.replace(', tokens per word controlled', '')} ({baseline}) [{series}]"


def _heatmap_rows(fig: Figure, grid, history: RunHistory, summary) -> None:
    if not history.heads:
        return
    moments = [("start", history.heads[0][0])]
    if summary.transitions:
        moments.append(("transition", summary.transitions[0].step))
    if summary.ppp_peaked:
        moments.append(("PPP peak", summary.ppp_max.step))
    moments.append(("end", history.heads[-1][0]))
    moments = moments[:4]
    for column, (label, step) in enumerate(moments):
        step, _, arrays = history.heads_near(step)
        for row, name in enumerate(("induction", "previous_token")):
            if name not in arrays:
                continue
            ax = fig.add_subplot(grid[3 + row, column])
            head_heatmaps({name: arrays[name]}, axes=[ax])
            ax.set_title(f"{label}: {panel_title(name)}\nstep {step}", fontsize=7)

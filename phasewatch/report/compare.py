"""Two runs on shared axes: induction max, PPP with and without the tokens-per-word control, loss.

Used by ``phasewatch experiment control`` (baseline vs copying-regularized run); any two or more
runs' histories (:func:`~phasewatch.report.history.load_history`) can be drawn this way.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from phasewatch import keys
from phasewatch.report.history import RunHistory
from phasewatch.report.summary import curve_label

#: Panels of the comparison, top to bottom: (metric keys, y label).
PANELS = (
    ((keys.HEADS_INDUCTION_MAX,), "induction score,\nmax over heads (0–1)"),
    ((keys.PPP_DELTA_LL,), "PPP: ΔLL\n(nats/word ± SE)"),
    ((keys.PPP_DELTA_LL_TOKCTRL,), "PPP, tokens per word\ncontrolled (nats/word ± SE)"),
    (keys.LOSS_KEYS, "training loss as returned\n(nats/token; with a\nregularizer: + λ·penalty)"),
)


def compare_figure(runs: dict[str, RunHistory], title: str = "phasewatch: runs compared") -> Figure:
    """One figure, one panel per quantity, every run a colour on the same step axis.

    ``runs`` maps a label (legend) to a run's history. Each line's ``gid`` is
    ``"<label>:<key>"`` (for readers of the figure and tests); ± SE bands on the ΔLL panels;
    each run's induction transition (``heads/induction_max`` event) a dashed line in its colour.
    """
    if not runs:
        raise ValueError("`runs` is empty: pass {label: RunHistory} for at least one run")
    fig = Figure(figsize=(10, 10))
    axes = fig.subplots(len(PANELS), 1, sharex=True)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.95, bottom=0.06, hspace=0.25)
    for colour, (label, history) in enumerate(runs.items()):
        for ax, (candidates, _) in zip(axes, PANELS, strict=True):
            key = next((k for k in candidates if history.get(k) is not None), None)
            if key is None:
                continue
            frame = history.get(key)
            (line,) = ax.plot(
                frame["step"], frame["value"], "o-", ms=2.5, lw=1.2, color=f"C{colour}", label=label
            )
            line.set_gid(f"{label}:{key}")
            se = history.get(keys.se_key(key)) if key.startswith("ppp/") else None
            if se is not None and len(se) == len(frame):
                ax.fill_between(
                    frame["step"],
                    frame["value"] - se["value"],
                    frame["value"] + se["value"],
                    color=f"C{colour}",
                    alpha=0.2,
                )
            for event in history.transitions:
                if event.metric == keys.HEADS_INDUCTION_MAX:
                    ax.axvline(event.step, color=f"C{colour}", ls="--", lw=1)
    for ax, (candidates, ylabel) in zip(axes, PANELS, strict=True):
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        if candidates[0].startswith("ppp/"):
            ax.set_title(curve_label(candidates[0]), fontsize=8, loc="left")
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
    axes[0].set_ylim(-0.02, 1.02)
    axes[-1].set_xlabel("optimizer step (same data order and tokens per step in every run)")
    axes[0].set_title(f"{title}  (dashed: induction transition)", fontsize=10)
    return fig

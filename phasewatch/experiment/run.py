"""``phasewatch experiment control``: the same seed twice, without and with the copying regularizer.

Both runs see the same data in the same order from the same initial weights, with every monitor
(PPP with and without the tokens-per-word control, attention heads, transition, PPP peak) on the
same schedule; only the regularizer differs. Each run writes its own history and report; the
experiment writes one comparison report (:func:`phasewatch.report.compare.compare_figure`) and
the summary (:class:`~phasewatch.experiment.summary.ExperimentSummary`) with paired ΔLL
differences at matched steps, from per-word ΔLL kept during training
(:func:`~phasewatch.experiment.per_word.keep_per_word`).
"""

from __future__ import annotations

import html
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phasewatch import keys
from phasewatch.detect.peak import DEFAULT_MIN_Z
from phasewatch.experiment.per_word import (
    PER_WORD_FILE,
    keep_per_word,
    load_per_word,
    save_per_word,
)
from phasewatch.experiment.recipe import ControlRecipe
from phasewatch.experiment.summary import ExperimentSummary, RunOutcome, paired_between_runs

#: The two runs, in order: (label, regularized?).
RUNS = (("baseline", False), ("regularized", True))


@dataclass
class RunRecord:
    """One run: its label, λ, log directory, steps, wall-clock seconds and kept per-word ΔLL."""

    label: str
    weight: float
    log_dir: Path
    steps: int
    seconds: float
    per_word: dict = field(repr=False, default_factory=dict)


@dataclass
class ExperimentResult:
    """What :func:`run_control_experiment` wrote and measured."""

    summary: ExperimentSummary
    runs: list[RunRecord]
    report_png: Path
    report_html: Path
    environment: str

    def __str__(self) -> str:
        lines = [str(self.summary)]
        for run in self.runs:
            lines.append(
                f"{run.label}: {run.steps} steps in {run.seconds / 60:.1f} min, logs {run.log_dir}"
            )
        lines.append(f"machine: {self.environment}")
        lines.append(f"report: {self.report_png}  {self.report_html}")
        return "\n".join(lines)


def run_control_experiment(
    out_dir: str | os.PathLike = "runs/control",
    recipe: ControlRecipe | None = None,
    *,
    progress: bool = True,
    data_options: dict[str, Any] | None = None,
) -> ExperimentResult:
    """Train the recipe twice (λ = 0, then λ = ``recipe.weight``) and write the comparison.

    Writes ``<out_dir>/baseline`` and ``<out_dir>/regularized`` (each: TensorBoard logs, the
    phasewatch history, ``per_word_delta_ll.csv.gz``, its own report) and ``<out_dir>/report.png``
    / ``report.html`` (both runs on shared axes and the summary). ``data_options`` go to
    :meth:`DemoConfig.data_module` (e.g. ``documents=`` or ``cache_dir=`` for a small test).
    """
    from phasewatch.demo.run import _default_data_dir, _quiet_known_noise
    from phasewatch.report import load_history, write_report
    from phasewatch.report.compare import compare_figure

    recipe = recipe or ControlRecipe.short()
    _quiet_known_noise()
    _default_data_dir()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs, environment = [], ""
    for label, regularized in RUNS:
        weight = recipe.weight if regularized else 0.0
        record, environment = _train(label, weight, recipe, out, progress, data_options or {})
        write_report(record.log_dir, out / label)
        runs.append(record)
    summary = summarize_experiment(out, recipe.weight)
    histories = {run.label: load_history(run.log_dir) for run in runs}
    png, page = out / "report.png", out / "report.html"
    title = f"copying regularizer λ = {recipe.weight:g} vs none, same seed"
    compare_figure({r.label: histories[r.label] for r in runs}, title=title).savefig(png, dpi=90)
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>phasewatch experiment control</title>"
        "<h1>phasewatch experiment control</h1>"
        f"<p>{html.escape(recipe.describe())}</p><p>machine: {html.escape(environment)}</p>"
        f"<pre>{html.escape(str(summary))}</pre>"
        "<img src='report.png' style='max-width:100%'>"
        + "".join(
            f"<h2>{r.label}</h2><img src='{r.label}/report.png' style='max-width:100%'>"
            for r in runs
        ),
        encoding="utf-8",
    )
    return ExperimentResult(summary, runs, png, page, environment)


def summarize_experiment(
    out_dir: str | os.PathLike, weight: float, *, min_z: float = DEFAULT_MIN_Z
) -> ExperimentSummary:
    """The summary of a finished experiment, from its files (histories and kept per-word ΔLL).

    ``out_dir`` holds ``baseline/`` and ``regularized/`` as :func:`run_control_experiment` wrote
    them; ``weight`` is the λ it used (printed); ``min_z``: paired z that calls PPP changed.
    """
    from phasewatch.report import load_history

    out = Path(out_dir)
    (base, _), (treated, _) = RUNS
    histories = {label: load_history(out / label) for label in (base, treated)}
    per_word = {
        label: load_per_word(histories[label].path.parent / PER_WORD_FILE) for label in histories
    }
    return ExperimentSummary(
        baseline=RunOutcome.of(base, histories[base]),
        regularized=RunOutcome.of(treated, histories[treated]),
        weight=weight,
        differences=paired_between_runs(per_word[base], per_word[treated]),
        min_z=min_z,
    )


def _train(
    label: str,
    weight: float,
    recipe: ControlRecipe,
    out: Path,
    progress: bool,
    data_options: dict[str, Any],
) -> tuple[RunRecord, str]:
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from phasewatch.callbacks import AttentionMonitor, PeakMonitor, PPPMonitor, TransitionMonitor
    from phasewatch.control import CopyingRegularizer
    from phasewatch.demo.reproducibility import make_reproducible
    from phasewatch.experiment.model import RegularizedTinyGPT2

    config = recipe.config
    environment = make_reproducible(config.seed, config.num_threads)
    data = config.data_module(**data_options)
    data.prepare_data()
    data.setup("fit")
    model = RegularizedTinyGPT2.like(config.model(data.tokenizer))
    schedule = {"every_n_steps": recipe.every_n_steps, "per_decade": recipe.per_decade}
    ppp = PPPMonitor(**{"control_tokens": "both", **recipe.ppp_options}, **schedule)
    kept = keep_per_word(ppp)
    callbacks = [
        ppp,
        AttentionMonitor(**recipe.attention_options, **schedule),
        TransitionMonitor(**schedule),
        PeakMonitor(keys.PPP_DELTA_LL, patience=5),
    ]
    if weight:
        callbacks.append(CopyingRegularizer(weight, strict=True))
    logger = TensorBoardLogger(str(out), name=label, version="", default_hp_metric=False)
    logger.log_hyperparams({**recipe.to_dict(), "weight": weight, **environment.to_dict()})
    trainer = L.Trainer(
        **config.trainer_kwargs(),
        callbacks=callbacks,
        logger=logger,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        limit_val_batches=0,
        log_every_n_steps=10,
        default_root_dir=str(out / label),
    )
    if progress:
        print(f"{label}: λ = {weight:g}; {recipe.describe()}", flush=True)
    started = time.time()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        trainer.fit(model, datamodule=data)
    seconds = time.time() - started
    per_word = {series: dict(steps) for series, steps in kept.items()}
    save_per_word(per_word, Path(logger.log_dir) / PER_WORD_FILE)
    record = RunRecord(label, weight, Path(logger.log_dir), trainer.global_step, seconds, per_word)
    return record, environment.describe()

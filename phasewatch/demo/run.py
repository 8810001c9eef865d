"""The demo: train a tiny GPT-2 from scratch on public-domain novels with every phasewatch callback.

Run with ``make demo``, ``phasewatch demo`` or ``python examples/demo.py``. It prints what it is
doing, trains with a progress bar, then prints a summary computed from the run's own history and
writes ``report.png`` / ``report.html`` and TensorBoard logs into the run directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from phasewatch.report import write_report


def _default_data_dir() -> None:
    """``PHASEWATCH_DATA`` defaults to ``../shared/corpora`` when that folder exists."""
    if "PHASEWATCH_DATA" not in os.environ:
        for candidate in (
            Path.cwd() / ".." / "shared" / "corpora",
            Path.cwd() / "shared" / "corpora",
        ):
            if candidate.is_dir():
                os.environ["PHASEWATCH_DATA"] = str(candidate.resolve())
                return


def _quiet_known_noise() -> None:
    """The demo prints its own story; silence library chatter that says nothing about the run."""
    import warnings

    from transformers.utils import logging as hf_logging

    from phasewatch.callbacks import PhaseTransitionWarning

    hf_logging.set_verbosity_error()  # e.g. "we strongly recommend passing an attention_mask"
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=PhaseTransitionWarning)  # the log line says it


def main(out_dir: str | os.PathLike = "runs/demo", minutes: float | None = None) -> int:
    """Train, report, summarize. ``minutes`` caps the training time (the run stops cleanly)."""
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from phasewatch import keys
    from phasewatch.callbacks import AttentionMonitor, PeakMonitor, PPPMonitor, TransitionMonitor
    from phasewatch.demo.config import DemoConfig
    from phasewatch.demo.reproducibility import make_reproducible

    _quiet_known_noise()
    _default_data_dir()
    out = Path(out_dir)
    config = DemoConfig()
    environment = make_reproducible(config.seed, config.num_threads)
    print(f"phasewatch demo: {config.describe()}")
    print(f"running on: {environment.describe()}")
    print(f"data: {os.environ.get('PHASEWATCH_DATA', 'user cache (verified download)')}")

    data = config.data_module()
    data.prepare_data()
    data.setup("fit")
    out.mkdir(parents=True, exist_ok=True)
    data.tokenizer.save_pretrained(str(out / "tokenizer"))  # for `phasewatch analyze --tokenizer`
    model = config.model(data.tokenizer)
    schedule = {"every_n_steps": 100, "per_decade": 6}
    callbacks = [
        # both PPP curves from one surprisal pass: how much of each value is tokenization
        PPPMonitor(control_tokens="both", **schedule),
        AttentionMonitor(**schedule),
        TransitionMonitor(checkpoint=True, **schedule),
        PeakMonitor(keys.PPP_DELTA_LL, patience=5, dirpath=str(out)),
    ]
    logger = TensorBoardLogger(str(out.parent), name=out.name, version="", default_hp_metric=False)
    logger.log_hyperparams({**config.to_dict(), **environment.to_dict()})
    max_time = None if minutes is None else {"minutes": minutes}
    trainer = L.Trainer(
        **config.trainer_kwargs(),
        callbacks=callbacks,
        logger=logger,
        max_time=max_time,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        default_root_dir=str(out),
    )
    started = time.time()
    trainer.fit(model, datamodule=data)
    elapsed = time.time() - started

    written = write_report(logger.log_dir, out)
    print()
    print(
        f"trained {trainer.global_step} steps ({callbacks[0].tokens_seen:,} tokens) "
        f"in {elapsed / 60:.1f} min"
    )
    print(written["summary"])
    peak = callbacks[3]
    if peak.peak_path:
        confirmed = [e for e in peak.events if e.kind == "confirmed"]
        status = (
            f"confirmed as a peak online at step {confirmed[-1].confirmed_step}; the summary above "
            "tests it again at the final evaluation"
            if confirmed
            else f"not a confirmed peak, waiting for {peak.waiting_for}"
        )
        print(f"best-PPP checkpoint: {peak.peak_path} (step {peak.best_step}; {status})")
    for path in callbacks[2].checkpoints:
        print(f"transition checkpoint: {path}")
    print(
        f"synthetic share of the training stream: {config.synthetic_share:.0%} "
        "repeated random spans"
    )
    if minutes is None:
        print(
            f"reproducible: a rerun prints the same numbers on {environment.describe()}; "
            "another CPU, torch build or thread count rounds differently and drifts after the "
            "transition (docs/demo.md, Reproducibility)"
        )
    else:
        print(
            f"not reproducible: --minutes {minutes:g} stopped training on wall-clock time, at a "
            "step that depends on this machine's speed and load"
        )
    print(f"TensorBoard logs: {logger.log_dir}  (tensorboard --logdir {logger.log_dir})")
    tokenizer_dir = out / "tokenizer"
    print(f"tokenizer: {tokenizer_dir}  (for phasewatch analyze {out} --tokenizer {tokenizer_dir})")
    print(f"report: {written['png']}  {written['html']}")
    return 0

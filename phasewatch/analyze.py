"""Offline analysis of a saved checkpoint series: the same measures and detectors as online."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from phasewatch import keys
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.corpora.naturalstories import load_dependencies
from phasewatch.detect import DEFAULT_WATCH, PeakTracker, TransitionDetector, TransitionEvent
from phasewatch.measures.delta_loglik import spillover_meaning
from phasewatch.measures.paired import PairedPeakTest
from phasewatch.measures.snapshot import HeadMeasure, PPPMeasure
from phasewatch.models import as_probe_model
from phasewatch.report.history import HISTORY_FILE


@dataclass
class Analysis:
    """Per-checkpoint scalars (``table``: one row per checkpoint, sorted by step), the detected
    transitions and PPP peak, and where the history (and report) were written."""

    table: pd.DataFrame
    transitions: list[TransitionEvent] = field(default_factory=list)
    ppp_peak_step: int | None = None
    history_path: Path | None = None

    def __str__(self) -> str:
        lines = [f"{len(self.table)} checkpoints analysed"]
        lines += [f"transition: {e}" for e in self.transitions] or ["transition: none detected"]
        if self.ppp_peak_step is not None:
            lines.append(f"highest PPP at step {self.ppp_peak_step}")
        if self.history_path is not None:
            lines.append(f"history: {self.history_path}")
        return "\n".join(lines)


def _import_class(path: str) -> type:
    module, _, name = path.replace(":", ".").rpartition(".")
    if not module:
        raise ValueError(
            f"`module` must be a dotted path such as 'mypkg.models:MyLM', got {path!r}"
        )
    return getattr(importlib.import_module(module), name)


def load_checkpoint(
    path: str | Path, module: str | type | None = None
) -> tuple[Any, int, int | None]:
    """A model from a Lightning ``.ckpt`` (needs its LightningModule class) or a Hugging Face
    model directory; returns ``(model, step, tokens)`` (tokens from phasewatch's callback state)."""
    path = Path(path)
    if path.is_dir():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        state = (
            json.loads((path / "trainer_state.json").read_text())
            if (path / "trainer_state.json").exists()
            else {}
        )
        return model, int(state.get("global_step", 0)), None
    if module is None:
        raise ValueError(
            f"{path} is a Lightning checkpoint: pass `module=` (the LightningModule class, or its "
            "dotted path 'pkg.mod:Class') so phasewatch can rebuild the model"
        )
    cls = _import_class(module) if isinstance(module, str) else module
    model = cls.load_from_checkpoint(str(path), map_location="cpu")
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
    tokens = None
    for state in checkpoint.get("callbacks", {}).values():
        if isinstance(state, dict) and "tokens_seen" in state:
            tokens = int(state["tokens_seen"])
            break
    return model, int(checkpoint.get("global_step", 0)), tokens


def analyze_checkpoints(
    checkpoints: Sequence[str | Path],
    *,
    module: str | type | None = None,
    loader: Callable[[Path], tuple[Any, int, int | None]] | None = None,
    tokenizer: Any = None,
    tokenizer_path: str | None = None,
    corpus: str | ReadingTimeCorpus = "naturalstories",
    data_dir: str | None = None,
    syntactic: bool = True,
    ppp: bool = True,
    spillover: int | None = None,
    folds: int = 10,
    control_tokens: bool | str = False,
    watch: dict[str, dict] | None = None,
    out_dir: str | Path | None = None,
) -> Analysis:
    """Measure every checkpoint with the callbacks' measures and run the same detectors.

    Args:
        checkpoints: Lightning ``.ckpt`` files or Hugging Face model directories (any order).
        module: the LightningModule class (or ``"pkg.mod:Class"``) for ``.ckpt`` files.
        loader: instead, a function ``path -> (model, step, tokens)``.
        tokenizer, tokenizer_path: the tokenizer; else ``model.tokenizer`` or the model directory.
        corpus, data_dir: the reading-time corpus for PPP (and entropy / syntactic probes).
        syntactic, ppp: which measures to run.
        spillover, folds: the ΔLL regression's settings, as for :class:`PPPMonitor`:
            ``spillover`` = previous words (4 = current + 4 previous words); by default the
            corpus's ``default_spillover`` (4 for Natural Stories' self-paced reading).
        control_tokens: ``False``, ``True`` or ``"both"``, as for :class:`PPPMonitor`. The paired
            decline since the best checkpoint and rise before it (``ppp/decline_since_best``, …)
            are computed as online, so ``phasewatch report`` decides the peak alike.
        watch: detector settings per key, as for :class:`TransitionMonitor` (the training loss is
            not available offline).
        out_dir: where to write ``phasewatch_history.jsonl`` (then ``phasewatch report out_dir``).
    """
    from phasewatch.models import load_tokenizer

    corpus_obj = load(corpus, data_dir=data_dir) if isinstance(corpus, str) else corpus
    spillover = corpus_obj.default_spillover if spillover is None else spillover
    ppp_measure = None
    if ppp:
        ppp_measure = PPPMeasure(
            corpus_obj, spillover=spillover, folds=folds, control_tokens=control_tokens
        )
    paired_test = PairedPeakTest()
    dependencies = load_dependencies(data_dir=data_dir) if syntactic else None
    head_measure = HeadMeasure(
        corpus=corpus_obj, dependencies=dependencies, syntactic_stories=2 if syntactic else 0
    )
    loaded = []
    for path in checkpoints:
        model, step, tokens = (loader or (lambda p: load_checkpoint(p, module)))(Path(path))
        loaded.append((step, tokens, Path(path), model))
    loaded.sort(key=lambda item: item[0])

    watch = {k: v for k, v in (DEFAULT_WATCH if watch is None else watch).items() if k != keys.LOSS}
    detectors = {key: TransitionDetector(key, **params) for key, params in watch.items()}
    peak = PeakTracker(keys.PPP_DELTA_LL)
    rows, records = [], []
    if tokenizer is None and tokenizer_path is not None:
        tokenizer = load_tokenizer(tokenizer_path)
    for step, tokens, path, model in loaded:
        tok = tokenizer
        if tok is None:
            tok = getattr(model, "tokenizer", None)
        if tok is None and path.is_dir() and (path / "tokenizer.json").exists():
            tok = load_tokenizer(path)
        probe = as_probe_model(model)
        scalars, per_head = head_measure.measure(probe, tok)
        if ppp_measure is not None:
            if tok is None:
                raise ValueError(f"no tokenizer for {path}: pass `tokenizer=` or `tokenizer_path=`")
            ppp_scalars, results = ppp_measure.measure(probe, tok)
            scalars.update(ppp_scalars)
            scalars.update(paired_test.update(step, results)[0])
        tokens = tokens if tokens is not None else step
        rows.append({"checkpoint": str(path), "step": step, "tokens": tokens, **scalars})
        records.append({"kind": "measurement", "step": step, "tokens": tokens, "values": scalars})
        records.append(
            {
                "kind": "heads",
                "step": step,
                "tokens": tokens,
                "per_head": {k: v.tolist() for k, v in per_head.items()},
            }
        )
        for key, detector in detectors.items():
            if key in scalars:
                detector.update(step, scalars[key], tokens=tokens)
        if keys.PPP_DELTA_LL in scalars:
            decline, decline_se, rise, rise_se = (
                scalars[k] for k in keys.PAIRED_KEYS[keys.PPP_DELTA_LL]
            )
            peak.update(
                step,
                scalars[keys.PPP_DELTA_LL],
                tokens=tokens,
                decline=decline,
                decline_se=decline_se,
                rise=rise,
                rise_se=rise_se,
            )
    transitions = [e for d in detectors.values() for e in d.events]
    records += [{"kind": "transition", **e.to_dict()} for e in transitions]
    history_path = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        history_path = out / HISTORY_FILE
        config = {
            "kind": "config",
            "monitor": "PPPMonitor",
            "corpus": corpus_obj.name,
            "spillover": spillover,
            "spillover_meaning": spillover_meaning(spillover),
            "folds": folds,
            "baseline": list(ppp_measure.baseline) if ppp_measure else ["length", "log_freq"],
            "control_tokens": control_tokens,
        }
        with open(history_path, "w", encoding="utf-8") as f:
            for record in [config, *records]:
                f.write(json.dumps(record) + "\n")
    return Analysis(pd.DataFrame(rows), transitions, peak.best_step, history_path)

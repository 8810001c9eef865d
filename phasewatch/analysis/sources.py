"""Where a checkpoint series comes from: Lightning ``.ckpt`` files, ``save_pretrained`` folders,
a folder holding either in training order, or Hugging Face revisions of one repository.

Each input becomes a :class:`CheckpointSource`: a name (its row label in the analysis table), the
training step and tokens seen when they are known before loading, and how to load the model.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

#: A step in a checkpoint's name: ``step=100``, ``epoch=0-step=100``, ``checkpoint-100``,
#: ``step100``, ``step_100``, ``global_step100`` (the last such number in the name wins).
STEP_PATTERN = re.compile(r"(?:global_step|step|checkpoint)[=_-]?(\d+)", re.IGNORECASE)
#: Files written by ``save_pretrained``'s config: a folder holding one is a model folder.
MODEL_CONFIG = "config.json"
#: The Hugging Face Trainer's state in a ``checkpoint-N`` folder (``global_step``,
#: ``num_input_tokens_seen``).
TRAINER_STATE = "trainer_state.json"


def step_from_name(name: str) -> int | None:
    """The training step written in a checkpoint's file, folder or revision name, else None."""
    found = STEP_PATTERN.findall(Path(name).name)
    return int(found[-1]) if found else None


def _natural_key(path: Path) -> tuple:
    """Sort key: the step in the name first (training order), then the name, numbers as numbers."""
    step = step_from_name(path.name)
    parts = tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))
    return (step is None, step or 0, parts)


@dataclass(frozen=True)
class CheckpointSource:
    """One checkpoint of the series.

    ``name``: its label in the table (the path, or ``repo@revision``); ``kind``: ``"lightning"``,
    ``"pretrained"`` or ``"hub"``; ``step``: the training step when known without loading (from
    the Trainer state, the name, or given); ``tokens``: tokens seen, when known.
    """

    name: str
    kind: str
    step: int | None = None
    tokens: int | None = None
    repo: str | None = None
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False

    def load(
        self, module: str | type | None = None, device: str | torch.device = "cpu"
    ) -> tuple[Any, int, int | None]:
        """The model on ``device``, its step and tokens seen (None when unknown)."""
        if self.kind == "lightning":
            model, step, tokens = load_lightning(self.name, module)
            step = step if self.step is None else self.step  # an explicit step wins
            tokens = tokens if self.tokens is None else self.tokens
        else:
            from transformers import AutoModelForCausalLM  # deferred: heavy import

            if self.kind == "hub":
                model = AutoModelForCausalLM.from_pretrained(
                    self.repo,
                    revision=self.revision,
                    cache_dir=self.cache_dir,
                    local_files_only=self.local_files_only,
                )
            else:
                model = AutoModelForCausalLM.from_pretrained(self.name, local_files_only=True)
            step, tokens = self.step, self.tokens
        return model.to(device), int(step), tokens

    def load_tokenizer(self) -> Any:
        """The tokenizer saved with this checkpoint, else None."""
        from phasewatch.models import load_tokenizer

        if self.kind == "hub":
            from transformers import AutoTokenizer

            try:
                return AutoTokenizer.from_pretrained(
                    self.repo,
                    revision=self.revision,
                    cache_dir=self.cache_dir,
                    local_files_only=self.local_files_only,
                )
            except (OSError, ValueError):
                return None
        path = Path(self.name)
        if path.is_dir() and (path / "tokenizer.json").exists():
            return load_tokenizer(path)
        return None


def _import_class(path: str) -> type:
    module, _, name = path.replace(":", ".").rpartition(".")
    if not module:
        raise ValueError(
            f"`module` must be a dotted path such as 'mypkg.models:MyLM', got {path!r}"
        )
    return getattr(importlib.import_module(module), name)


def load_lightning(path: str | Path, module: str | type | None) -> tuple[Any, int, int | None]:
    """A model from a Lightning ``.ckpt``; returns ``(model, global_step, tokens)`` (tokens from
    phasewatch's callback state, None without it)."""
    if module is None:
        raise ValueError(
            f"{path} is a Lightning checkpoint: pass `module=` (the LightningModule class, or its "
            "dotted path 'pkg.mod:Class'; --module on the command line) so phasewatch can rebuild "
            "the model"
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


def _pretrained(path: Path) -> CheckpointSource:
    """A ``save_pretrained`` folder: step and tokens from the HF Trainer state, else the name."""
    step = tokens = None
    if (path / TRAINER_STATE).exists():
        state = json.loads((path / TRAINER_STATE).read_text())
        step = state.get("global_step")
        tokens = state.get("num_input_tokens_seen") or None
    if step is None:
        step = step_from_name(path.name)
    return CheckpointSource(str(path), "pretrained", step, tokens)


def _expand(path: Path) -> list[CheckpointSource]:
    """One input path: a ``.ckpt``, a model folder, or a folder of either (training order)."""
    if path.is_file():
        return [CheckpointSource(str(path), "lightning")]
    if not path.is_dir():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist; give .ckpt files, save_pretrained folders, "
            "a folder of them, or a Hugging Face repo with revisions"
        )
    if (path / MODEL_CONFIG).exists():
        return [_pretrained(path)]
    children = [
        p
        for p in path.iterdir()
        if (p.is_file() and p.suffix == ".ckpt") or (p.is_dir() and (p / MODEL_CONFIG).exists())
    ]
    if not children:
        raise FileNotFoundError(
            f"{str(path)!r} is neither a model folder (no {MODEL_CONFIG}) nor a folder of "
            ".ckpt files or save_pretrained folders"
        )
    return [s for child in sorted(children, key=_natural_key) for s in _expand(child)]


def checkpoint_sources(
    checkpoints: Sequence[str | Path] = (),
    *,
    repo: str | None = None,
    revisions: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    steps: Sequence[int] | None = None,
) -> list[CheckpointSource]:
    """The series to analyse, in the order given (folders expanded in training order).

    ``steps`` (one per checkpoint after expansion) overrides the steps read from the files or
    names.

    Raises:
        ValueError: no input, revisions without a repo (or the reverse), ``steps`` of another
            length than the series, or a folder/revision whose step cannot be told.
        FileNotFoundError: a path that does not exist or holds no checkpoint.
    """
    if bool(repo) != bool(revisions):
        raise ValueError(
            "Hugging Face revisions need both `repo` (e.g. 'EleutherAI/pythia-70m') and "
            f"`revisions` (e.g. ['step1000', 'step2000']), got repo={repo!r}, "
            f"revisions={list(revisions)!r}"
        )
    sources = [s for path in checkpoints for s in _expand(Path(path))]
    sources += [
        CheckpointSource(
            f"{repo}@{revision}",
            "hub",
            step_from_name(revision),
            repo=repo,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            local_files_only=local_files_only,
        )
        for revision in revisions
    ]
    if not sources:
        raise ValueError("no checkpoint to analyse: give paths, or `repo` with `revisions`")
    if steps is not None:
        if len(steps) != len(sources):
            names = ", ".join(s.name for s in sources)
            raise ValueError(
                f"`steps` has {len(steps)} values but the series has {len(sources)} checkpoints "
                f"({names}); give one step per checkpoint, in this order"
            )
        sources = [replace(s, step=int(step)) for s, step in zip(sources, steps, strict=True)]
    unknown = [s.name for s in sources if s.step is None and s.kind != "lightning"]
    if unknown:
        raise ValueError(
            f"the training step of {', '.join(unknown)} is not in a {TRAINER_STATE} nor in the "
            "name (e.g. step=100, checkpoint-100, step1000); give `steps=` (--steps) in series "
            "order"
        )
    return sources

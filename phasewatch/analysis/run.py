"""Offline analysis of a checkpoint series: the callbacks' measures, then their detectors in order.

Each checkpoint is measured alone (PPP, head scores, entropy, syntactic score: the numbers do not
depend on the other checkpoints) and kept in the folder's cache; then the sequential part — the
paired peak test, the transition detectors and the peak tracker — is replayed over every measured
checkpoint in step order, so a resumed analysis gives the numbers of one uninterrupted pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from phasewatch.analysis.ablated import ablated_scalars, ablation_context, ablation_label
from phasewatch.analysis.cache import AnalysisCache, MeasuredCheckpoint
from phasewatch.analysis.replay import Analysis, ppp_config, replay, write_history
from phasewatch.analysis.sources import CheckpointSource, checkpoint_sources
from phasewatch.analysis.table import write_table
from phasewatch.corpora import ReadingTimeCorpus, load
from phasewatch.measures.ppp_corpora import CorporaPPP
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.models import as_probe_model

log = logging.getLogger("phasewatch")


def _device(device: str | torch.device) -> torch.device:
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"`device` must be a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"`device` is {str(device)!r} but torch sees no CUDA device "
            "(torch.cuda.is_available() is False); use device='cpu' (--device cpu)"
        )
    return device


def _head_measure(corpus: ReadingTimeCorpus, syntactic: bool) -> HeadMeasure:
    """The head probes on ``corpus``; the syntactic score reads that corpus's own arcs only."""
    dependencies = corpus.dependencies if syntactic else None
    if syntactic and dependencies is None:
        log.warning(
            "analyze: corpus %r has no dependency arcs (ReadingTimeCorpus.dependencies), so the "
            "syntactic score (heads/syntactic_max, heads/sas) is off; give a corpus with arcs, or "
            "syntactic=False (--no-syntactic) to silence this",
            corpus.name,
        )
    return HeadMeasure(
        corpus=corpus,
        dependencies=dependencies,
        syntactic_stories=2 if dependencies is not None else 0,
    )


def _progress(items: list, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    # disable=None: tqdm stays silent when stderr is not a terminal
    return tqdm(
        items, desc="phasewatch analyze", unit="checkpoint", disable=True if quiet else None
    )


def analyze_checkpoints(
    checkpoints: Sequence[str | Path] = (),
    *,
    module: str | type | None = None,
    loader: Callable[[Path], tuple[Any, int, int | None]] | None = None,
    tokenizer: Any = None,
    tokenizer_path: str | None = None,
    corpus: str | ReadingTimeCorpus | None = None,
    data_dir: str | None = None,
    corpora: Sequence[str | ReadingTimeCorpus] | None = None,
    syntactic: bool = True,
    ppp: bool = True,
    spillover: int | None = None,
    folds: int = 10,
    control_tokens: bool | str = False,
    mixed_effects: bool = False,
    watch: dict[str, dict] | None = None,
    out_dir: str | Path | None = None,
    repo: str | None = None,
    revisions: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    steps: Sequence[int] | None = None,
    tokens_per_step: int | None = None,
    device: str | torch.device = "cpu",
    resume: bool = True,
    quiet: bool = False,
    ablate: str | Sequence[tuple[int, int] | str] | None = None,
    ablate_mode: str = "zero",
) -> Analysis:
    """Measure every checkpoint with the callbacks' measures and run the same detectors.

    Args:
        checkpoints: Lightning ``.ckpt`` files, ``save_pretrained`` folders, or folders holding
            either (listed in training order: the step in each name, e.g. ``step=100.ckpt``,
            ``checkpoint-100``, ``step100``).
        module: the LightningModule class (or ``"pkg.mod:Class"``) for ``.ckpt`` files.
        loader: instead, a function ``path -> (model, step, tokens)`` for every path.
        tokenizer, tokenizer_path: the tokenizer; else ``model.tokenizer`` or the one saved with
            the checkpoint (folder or revision).
        corpus, data_dir: the reading-time corpus (name or :class:`ReadingTimeCorpus`; default
            ``"naturalstories"``) for PPP and for the entropy and syntactic probes (the syntactic
            score uses the corpus's own dependency arcs; a corpus without arcs has none, said in
            one warning).
        corpora: instead of ``corpus``, several corpora: PPP on each (``ppp/<corpus>/delta_ll``
            …) and their mean as ``ppp/delta_ll`` (:class:`~phasewatch.measures.ppp_corpora.
            CorporaPPP`); the head probes read the first one.
        syntactic, ppp: which measures to run.
        spillover, folds: the ΔLL regression's settings, as for :class:`PPPMonitor`:
            ``spillover`` = previous words (4 = current + 4 previous words); by default each
            corpus's ``default_spillover`` (4 for self-paced reading, 2 for eye tracking).
        control_tokens: ``False``, ``True`` or ``"both"``, as for :class:`PPPMonitor`. The paired
            decline since the best checkpoint and rise before it (``ppp/decline_since_best``, …)
            are computed as online, so ``phasewatch report`` decides the peak alike.
        mixed_effects: also the in-sample mixed-effects ΔLL on each corpus's per-reader data
            (``ppp/delta_ll_mixed`` nats/observation, ``ppp/delta_ll_mixed_per_word`` nats/word,
            ``ppp/delta_ll_mixed_p``), as for :class:`PPPMonitor`; off by default (~16 s more
            per checkpoint at Natural Stories' size). Needs per-reader data in every corpus.
        watch: detector settings per key, as for :class:`TransitionMonitor` (the training loss is
            not available offline).
        out_dir: where to write ``phasewatch_history.jsonl`` (then ``phasewatch report out_dir``),
            the table (``phasewatch_analysis.csv``, and ``.parquet`` with pyarrow) and the cache
            that makes the analysis resumable.
        repo, revisions, cache_dir, local_files_only: Hugging Face revisions of one repository
            (Pythia: ``revisions=["step1000", ...]``, the step read from each name), loaded with
            ``from_pretrained(repo, revision=..., cache_dir=..., local_files_only=...)``.
        steps: the training step of each checkpoint, in series order (overrides the files/names).
        tokens_per_step: tokens seen = step × this, where a checkpoint does not record them
            (Pythia: 2,097,152); else tokens are left empty in the table.
        device: where the model and probes run (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        resume: with ``out_dir``, skip checkpoints already measured there (its table and cache)
            and replay the paired test and detectors over all of them in step order;
            ``False`` measures afresh.
        quiet: no progress bar (it is also off when stderr is not a terminal).
        ablate: heads to ablate while measuring every checkpoint, ``"L1H0,L1H2"`` or
            ``[(1, 0), (1, 2)]`` (:func:`phasewatch.control.ablate_heads`): PPP and head scores
            of the model without those heads' outputs. The ablated heads' own per-head scores are
            NaN and the ``heads/*_max`` keys are the max over the other heads;
            ``attn/entropy_mean`` is their mean; ``heads/sas`` (best head per relation) is
            dropped. The table gets an ``ablated`` column (e.g. ``L1H0,L1H2 (zero)``) and the
            history's config record an ``ablated`` entry.
        ablate_mode: ``"zero"`` (default) or ``"mean"``: each ablated head's output is replaced by
            its mean over the probe batch of that pass.

    Raises:
        ValueError: no checkpoint, an unknown step, an unavailable ``device``, a ``.ckpt``
            without ``module``, no tokenizer for PPP, ``mixed_effects`` with a corpus without
            per-reader data, or a resumed folder measured with other settings.
    """
    device = _device(device)
    ablation = ablation_label(ablate, ablate_mode)  # checks the heads' syntax and the mode
    if loader is not None:  # the user's loader knows its paths: no expansion, its own steps
        given = list(steps) if steps is not None else [None] * len(checkpoints)
        sources = [
            CheckpointSource(str(p), "custom", s) for p, s in zip(checkpoints, given, strict=True)
        ]
    else:
        sources = checkpoint_sources(
            checkpoints,
            repo=repo,
            revisions=revisions,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            steps=steps,
        )
    corpus_objs = _corpora(corpus, corpora, data_dir)
    ppp_measure = None
    if ppp:
        ppp_measure = CorporaPPP(
            corpus_objs,
            spillover=spillover,
            folds=folds,
            control_tokens=control_tokens,
            mixed_effects=mixed_effects,
        )
    head_measure = _head_measure(corpus_objs[0], syntactic)
    spillovers = ppp_measure.spillovers if ppp_measure else {}
    settings = {
        "corpora": [c.name for c in corpus_objs],
        "spillover": spillovers,
        "folds": folds if ppp else None,
        "control_tokens": control_tokens if ppp else None,
        "syntactic": head_measure.dependencies is not None,
        "device": device.type,
    }
    if ppp and mixed_effects:  # only when on: folders measured before this option resume as off
        settings["mixed_effects"] = True
    if ablation is not None:  # likewise: folders measured before ablation existed resume as none
        settings["ablate"] = ablation
    cache = AnalysisCache(out_dir) if out_dir is not None else None
    if cache is not None:
        if not resume:
            cache.clear()
        cache.check_settings(settings)
    if tokenizer is None and tokenizer_path is not None:
        from phasewatch.models import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_path)

    measured: dict[str, MeasuredCheckpoint] = {}
    if cache is not None:
        for name in cache.names():
            measured[name] = cache.get(name)
    todo = [s for s in sources if s.name not in measured]
    for source in _progress(todo, quiet):
        model, step, tokens = (
            loader(Path(source.name)) if loader is not None else source.load(module, device)
        )
        if loader is not None:
            model = model.to(device)
            step = step if source.step is None else source.step
        if tokens is None and tokens_per_step is not None:
            tokens = int(step) * int(tokens_per_step)
        tok = _tokenizer(tokenizer, model, source)
        probe = as_probe_model(model)
        if ppp_measure is not None and tok is None:
            raise ValueError(
                f"no tokenizer for {source.name}: pass `tokenizer=` or `tokenizer_path=` "
                "(--tokenizer)"
            )
        context = (
            nullcontext() if ablation is None else ablation_context(probe, ablate, ablate_mode)
        )
        with context:
            scalars, per_head = head_measure.measure(probe, tok)
            results = {}
            if ppp_measure is not None:
                ppp_scalars, results = ppp_measure.measure(probe, tok)
                scalars.update(ppp_scalars)
        if ablation is not None:
            scalars, per_head = ablated_scalars(scalars, per_head, ablate)
        entry = MeasuredCheckpoint(source.name, step, tokens, scalars, per_head, results)
        measured[source.name] = entry
        if cache is not None:
            cache.put(entry)
        del model, probe

    series = sorted(measured.values(), key=lambda m: m.step)
    analysis = replay(series, watch)
    analysis.measured = len(todo)
    if ablation is not None:
        analysis.ablated = ablation
        for table in (analysis.table, analysis.tidy):
            table["ablated"] = ablation
    if out_dir is not None:
        baseline = (
            next(iter(ppp_measure.measures.values())).baseline
            if ppp_measure
            else ("length", "log_freq")
        )
        config = ppp_config(
            corpus_objs, spillovers, folds, control_tokens, baseline, mixed_effects=mixed_effects
        )
        if ablation is not None:
            config["ablated"] = ablation
        analysis.history_path = write_history(out_dir, analysis, series, config)
        analysis.table_paths = write_table(analysis.tidy, out_dir)
    return analysis


def _corpora(
    corpus: str | ReadingTimeCorpus | None,
    corpora: Sequence[str | ReadingTimeCorpus] | None,
    data_dir: str | None,
) -> list[ReadingTimeCorpus]:
    """The corpora to measure on, loaded (``corpus`` or ``corpora``, not both)."""
    if corpus is not None and corpora is not None:
        raise ValueError(
            f"give `corpus` (one corpus) or `corpora` (several), not both; got corpus={corpus!r} "
            f"and corpora={list(corpora)!r}"
        )
    if corpora is None:
        corpora = ["naturalstories" if corpus is None else corpus]
    if isinstance(corpora, (str, ReadingTimeCorpus)) or not corpora:
        raise ValueError(
            f"`corpora` must be a non-empty list of corpus names or ReadingTimeCorpus objects, "
            f"got {corpora!r}"
        )
    return [load(c, data_dir=data_dir) if isinstance(c, str) else c for c in corpora]


def _tokenizer(tokenizer: Any, model: Any, source: CheckpointSource) -> Any:
    if tokenizer is not None:
        return tokenizer
    found = getattr(model, "tokenizer", None)
    return found if found is not None else source.load_tokenizer()

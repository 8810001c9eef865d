"""``phasewatch`` command line: data, report, analyze, demo, experiment."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _data(args: argparse.Namespace) -> int:
    from phasewatch.corpora import data_files, fetch
    from phasewatch.corpora.manifest import read_manifest

    try:
        read_manifest(args.corpus)
    except ValueError as error:
        print(f"phasewatch data: {error}", file=sys.stderr)
        return 2
    if args.action == "fetch":
        folder = fetch(args.corpus, cache_dir=args.cache_dir, base_url=args.base_url)
        print(f"{args.corpus}: verified files in {folder}")
    else:
        for relpath, path in data_files(args.corpus).items():
            print(f"{relpath}\t{path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from phasewatch.report import write_report

    written = write_report(args.run_dir, args.out, min_z=args.min_z, key=args.key)
    print(written["summary"])
    print(f"report: {written['png']}\n        {written['html']}")
    return 0


_CONTROL_TOKENS = {"none": False, "add": True, "both": "both"}


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated or comma-separated values: ``--revisions a,b --revisions c`` → [a, b, c]."""
    return [v for value in values or () for v in value.split(",") if v]


def _analyze(args: argparse.Namespace) -> int:
    from phasewatch.analyze import analyze_checkpoints

    corpora = _split(args.corpus) or None
    steps = _split(args.steps)
    try:
        steps = [int(s) for s in steps] if steps else None
    except ValueError:
        raise SystemExit(
            f"--steps takes whole numbers (one per checkpoint), got {args.steps}"
        ) from None
    result = analyze_checkpoints(
        args.checkpoints,
        module=args.module,
        tokenizer_path=args.tokenizer,
        out_dir=args.out,
        syntactic=not args.no_syntactic,
        control_tokens=_CONTROL_TOKENS[args.control_tokens],
        mixed_effects=args.mixed_effects,
        corpora=corpora,
        data_dir=args.data_dir,
        repo=args.repo,
        revisions=_split(args.revisions),
        cache_dir=args.cache_dir,
        local_files_only=args.local_files_only,
        steps=steps,
        tokens_per_step=args.tokens_per_step,
        spillover=args.spillover,
        folds=args.folds,
        device=args.device,
        resume=args.resume,
        quiet=args.quiet,
        ablate=args.ablate,
        ablate_mode=args.ablate_mode,
    )
    print(result)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from phasewatch.demo.run import main as demo_main

    return demo_main(out_dir=args.out, minutes=args.minutes)


def _experiment(args: argparse.Namespace) -> int:
    from phasewatch.experiment import ControlRecipe, run_control_experiment

    recipe = ControlRecipe.demo() if args.demo else ControlRecipe.short()
    changes = {"weight": args.weight, "max_steps": args.max_steps, "seed": args.seed}
    recipe = recipe.with_(**{k: v for k, v in changes.items() if v is not None})
    result = run_control_experiment(args.out, recipe, progress=not args.quiet)
    print()
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phasewatch",
        description="Watch a language model's fit to human reading times and its phase transition.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch or locate the bundled corpora (verified by sha256)")
    data.add_argument("action", choices=("fetch", "where"))
    data.add_argument("corpus", nargs="?", default="naturalstories")
    data.add_argument("--cache-dir", default=None, help="default: $PHASEWATCH_CACHE or user cache")
    data.add_argument("--base-url", default=None, help="a mirror in the upstream layout")
    data.set_defaults(func=_data)

    report = sub.add_parser("report", help="regenerate report.png/report.html from a run's logs")
    report.add_argument("run_dir", help="the run's log directory (holds phasewatch_history.jsonl)")
    report.add_argument("--out", default=None, help="default: beside the history file")
    report.add_argument(
        "--min-z",
        type=float,
        default=2.0,
        help="paired-test threshold (SE) for calling a PPP peak (default 2)",
    )
    report.add_argument(
        "--key",
        default="ppp/delta_ll",
        help="the ΔLL curve that decides the peak: ppp/delta_ll (with several corpora their "
        "mean; default) or one corpus's ppp/<corpus>/delta_ll",
    )
    report.set_defaults(func=_report)

    analyze = sub.add_parser("analyze", help="measure a series of saved checkpoints offline")
    analyze.add_argument(
        "checkpoints",
        nargs="*",
        help=".ckpt files, save_pretrained folders, or a folder of either (training order)",
    )
    analyze.add_argument("--module", default=None, help="LightningModule class, pkg.mod:Class")
    analyze.add_argument("--tokenizer", default=None, help="tokenizer.json or tokenizer dir")
    analyze.add_argument("--out", default="phasewatch_analysis", help="where history/report go")
    analyze.add_argument("--no-syntactic", action="store_true", help="skip the syntactic score")
    analyze.add_argument(
        "--control-tokens",
        choices=sorted(_CONTROL_TOKENS),
        default="none",
        help="tokens per word in the PPP baseline: none, add, or both curves (default none)",
    )
    analyze.add_argument(
        "--corpus",
        action="append",
        default=None,
        help="reading-time corpus (repeat for several: PPP per corpus and their mean; "
        "default naturalstories)",
    )
    analyze.add_argument("--data-dir", default=None, help="corpus files (default $PHASEWATCH_DATA)")
    analyze.add_argument("--repo", default=None, help="Hugging Face repo id, with --revisions")
    analyze.add_argument(
        "--revisions",
        action="append",
        default=None,
        help="revisions of --repo, e.g. step1000,step2000 (the step is read from each name)",
    )
    analyze.add_argument("--cache-dir", default=None, help="Hugging Face cache for --repo")
    analyze.add_argument(
        "--local-files-only", action="store_true", help="load --repo from the cache only"
    )
    analyze.add_argument(
        "--steps", action="append", default=None, help="step of each checkpoint, e.g. 100,200"
    )
    analyze.add_argument(
        "--tokens-per-step",
        type=int,
        default=None,
        help="tokens seen = step x this where a checkpoint does not say (Pythia: 2097152)",
    )
    analyze.add_argument(
        "--spillover",
        type=int,
        default=None,
        help="previous words in the ΔLL regression (default: the corpus's, 4 SPR, 2 eye tracking)",
    )
    analyze.add_argument("--folds", type=int, default=10, help="cross-validation folds (10)")
    analyze.add_argument(
        "--mixed-effects",
        action="store_true",
        help="also the in-sample mixed-effects ΔLL on per-reader data (ppp/delta_ll_mixed, nats "
        "per observation); needs corpora with a reader column; ~16 s more per checkpoint at "
        "Natural Stories' size",
    )
    analyze.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    analyze.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip checkpoints already measured in --out (default) or measure afresh",
    )
    analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    analyze.add_argument(
        "--ablate",
        default=None,
        metavar="L1H0,L1H2",
        help="measure every checkpoint with these heads ablated (0-based layer, head); the table "
        "gets an `ablated` column and the ablated heads' own scores are NaN",
    )
    analyze.add_argument(
        "--ablate-mode",
        choices=("zero", "mean"),
        default="zero",
        help="an ablated head's output is 0 (default) or its mean over the probe batch",
    )
    analyze.set_defaults(func=_analyze)

    demo = sub.add_parser("demo", help="train a tiny GPT-2 with every callback (CPU, minutes)")
    demo.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    demo.add_argument("--minutes", type=float, default=None, help="training time budget")
    demo.set_defaults(func=_demo)

    experiment = sub.add_parser(
        "experiment", help="train twice and compare (the causal experiment)"
    )
    kinds = experiment.add_subparsers(dest="experiment", required=True)
    control = kinds.add_parser(
        "control",
        help="the same seed without and with the copying regularizer: one report, paired ΔLL",
    )
    control.add_argument("--out", default="runs/control", help="default runs/control")
    control.add_argument(
        "--demo",
        action="store_true",
        help="the demo's scale (4,500 steps) instead of the short recipe",
    )
    control.add_argument("--weight", type=float, default=None, help="λ of the regularized run (1)")
    control.add_argument("--max-steps", type=int, default=None, help="steps of each run")
    control.add_argument("--seed", type=int, default=None, help="seed of both runs (0)")
    control.add_argument("--quiet", action="store_true", help="no progress bars")
    control.set_defaults(func=_experiment)
    return parser


#: Errors whose message already says what was wrong and how to fix it: printed as one block, no
#: traceback (set PHASEWATCH_TRACEBACK=1 to see it).
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, ImportError)


def main(argv: Sequence[str] | None = None) -> int:
    from phasewatch.corpora.errors import CorpusDataError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (*_USER_ERRORS, CorpusDataError) as error:
        if os.environ.get("PHASEWATCH_TRACEBACK"):
            raise
        print(f"phasewatch {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

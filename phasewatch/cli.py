"""``phasewatch`` command line: data, report, analyze, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _data(args: argparse.Namespace) -> int:
    from phasewatch.corpora import data_files, fetch

    if args.action == "fetch":
        folder = fetch(args.corpus, cache_dir=args.cache_dir, base_url=args.base_url)
        print(f"{args.corpus}: verified files in {folder}")
    else:
        for relpath, path in data_files(args.corpus).items():
            print(f"{relpath}\t{path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from phasewatch.report import write_report

    written = write_report(args.run_dir, args.out, min_z=args.min_z)
    print(written["summary"])
    print(f"report: {written['png']}\n        {written['html']}")
    return 0


_CONTROL_TOKENS = {"none": False, "add": True, "both": "both"}


def _analyze(args: argparse.Namespace) -> int:
    from phasewatch.analyze import analyze_checkpoints

    result = analyze_checkpoints(
        args.checkpoints,
        module=args.module,
        tokenizer_path=args.tokenizer,
        out_dir=args.out,
        syntactic=not args.no_syntactic,
        control_tokens=_CONTROL_TOKENS[args.control_tokens],
    )
    print(result)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from phasewatch.demo.run import main as demo_main

    return demo_main(out_dir=args.out, minutes=args.minutes)


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
    report.set_defaults(func=_report)

    analyze = sub.add_parser("analyze", help="measure a series of saved checkpoints offline")
    analyze.add_argument("checkpoints", nargs="+", help=".ckpt files or Hugging Face model dirs")
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
    analyze.set_defaults(func=_analyze)

    demo = sub.add_parser("demo", help="train a tiny GPT-2 with every callback (CPU, minutes)")
    demo.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    demo.add_argument("--minutes", type=float, default=None, help="training time budget")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""``leapt report DIR...``: re-render results from existing traces, generating nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leapt.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leapt report",
        description="Rebuild results.json, results.md and the plots from the traces.jsonl files "
        "of one or more runs (leapt eval output directories or leapt infer directories). "
        "Nothing is generated; results.json is identical to the one leapt eval wrote.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run directories to read")
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        default=None,
        help="where to write the report (default: DIR when one is given; required for several)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.output_dir is None and len(args.dirs) > 1:
        raise ConfigError("--output-dir is required when reporting several run directories")
    out = args.output_dir or args.dirs[0]
    from eval.report import RESULTS_JSON, RESULTS_MD, write_report

    try:
        results = write_report(args.dirs, out)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    count = sum(len(b["methods"]) for b in results["benchmarks"].values())
    print(f"{count} benchmark x method results -> {out}/{RESULTS_JSON}, {out}/{RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

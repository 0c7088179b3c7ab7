"""``leapt report DIR...``: re-render results from existing traces, generating nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from leapt.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leapt report",
        description="Rebuild results.json, results.md and the plots from the traces.jsonl files "
        "of one or more runs (leapt eval output directories or leapt infer directories). "
        "Nothing is generated; results.json is identical to the one leapt eval wrote.",
    )
    parser.add_argument("dirs", nargs="*", metavar="DIR", help="run directories to read")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="LABEL=DIR",
        default=None,
        help="instead of DIRs: compare leapt eval folders side by side, e.g. "
        "before=outputs/e2e/before after=outputs/e2e/after (needs --output-dir)",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        default=None,
        help="where to write the report (default: DIR when one is given; required for several)",
    )
    return parser


def compare_main(specs: Sequence[str], output_dir: str | None) -> int:
    """``leapt report --compare LABEL=DIR ...``: one side-by-side report."""
    from eval.compare import write_comparison

    if output_dir is None:
        raise ConfigError("--compare needs --output-dir")
    labelled = []
    for spec in specs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise ConfigError(f"--compare takes LABEL=DIR entries, got {spec!r}")
        if not Path(folder).is_dir():
            raise ConfigError(f"--compare: run directory {folder} does not exist")
        labelled.append((label, Path(folder)))
    if len({label for label, _ in labelled}) != len(labelled):
        raise ConfigError("--compare labels must be distinct")
    try:
        write_comparison(labelled, output_dir)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"compared {', '.join(label for label, _ in labelled)} -> {output_dir}/results.md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.compare is not None:
        if args.dirs:
            raise ConfigError("give either DIRs or --compare LABEL=DIR ..., not both")
        return compare_main(args.compare, args.output_dir)
    if not args.dirs:
        raise ConfigError("name at least one run directory (or --compare LABEL=DIR ...)")
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

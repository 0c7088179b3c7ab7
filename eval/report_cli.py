"""``leapt report DIR...``: re-render results from existing traces, generating nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leapt.config import ConfigError, check_choice, check_output_dir, parse_config

DESCRIPTION = (
    "Rebuild results.json, results.md and the plots from the traces.jsonl files of one or more "
    "runs (leapt eval output directories or leapt infer directories). Nothing is generated; "
    "results.json is identical to the one leapt eval wrote."
)


@dataclass
class ReportArguments:
    """Which runs to report on (or compare) and where the report goes."""

    dirs: list[str] = field(
        default_factory=list, metadata={"help": "run directories to read", "metavar": "DIR"}
    )
    compare: list[str] | None = field(
        default=None,
        metadata={
            "help": "instead of DIRs: compare leapt eval folders side by side, e.g. "
            "before=outputs/e2e/before after=outputs/e2e/after (needs --output_dir)",
            "metavar": "LABEL=DIR",
        },
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "where to write the report (default: DIR when one is given; required for "
            "several)"
        },
    )

    grading_scope: str | None = field(
        default=None,
        metadata={
            "help": "grade with this scope (path, after_think, lighteval, authors) instead of "
            "the one each run recorded"
        },
    )

    def __post_init__(self) -> None:
        from eval.grading import GRADING_SCOPES

        if self.grading_scope is not None:
            check_choice("grading_scope", self.grading_scope, GRADING_SCOPES, what="grading scope")
        if self.compare is not None:
            if self.dirs:
                raise ConfigError("give either DIRs or --compare LABEL=DIR ..., not both")
            if self.output_dir is None:
                raise ConfigError("--compare needs --output_dir")
        elif not self.dirs:
            raise ConfigError("name at least one run directory (or --compare LABEL=DIR ...)")
        elif self.output_dir is None and len(self.dirs) > 1:
            raise ConfigError("--output_dir is required when reporting several run directories")
        check_output_dir(self.output_dir)


def labelled_dirs(specs: Sequence[str]) -> list[tuple[str, Path]]:
    """``LABEL=DIR`` entries as (label, folder), each folder existing and each label distinct."""
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
    return labelled


def report(args: ReportArguments) -> None:
    """Write the report (or the comparison) the arguments ask for."""
    from eval.compare import write_comparison
    from eval.report import RESULTS_JSON, RESULTS_MD, write_report

    out = args.output_dir or args.dirs[0]
    try:
        if args.compare is not None:
            labelled = labelled_dirs(args.compare)
            write_comparison(labelled, out)
            print(f"compared {', '.join(lb for lb, _ in labelled)} -> {out}/{RESULTS_MD}")
            return
        results = write_report(args.dirs, out, grading_scope=args.grading_scope)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    count = sum(len(b["methods"]) for b in results["benchmarks"].values())
    print(f"{count} benchmark x method results -> {out}/{RESULTS_JSON}, {out}/{RESULTS_MD}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt report``; returns the exit code."""
    (args,) = parse_config((ReportArguments,), argv, "leapt report", DESCRIPTION, positional="dirs")
    report(args)
    return 0

"""``leapt view RUN_DIR``: write one static HTML page showing every trace of a run.

Works on any directory holding ``traces.jsonl`` files: a ``leapt infer``
output, a ``leapt eval`` tree (one run per benchmark/method folder) or a
``leapt generate`` output (one run per raw shard).  Each file becomes one run
the page can switch between.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.viewer.page import Group, is_viewer_page, write_page
from inference.trace import Trace, read_traces
from leapt.config import ConfigError, check_output_dir, parse_config

DEFAULT_NAME = "trace_view.html"


def load_groups(run_dir: str | Path) -> list[Group]:
    """Every non-empty ``traces.jsonl`` under ``run_dir`` (or that file), graded, as runs."""
    root = Path(run_dir)
    if root.is_file():
        files, root = [root], root.parent
    elif root.is_dir():
        files = sorted(root.rglob("traces.jsonl"))
    else:
        raise ConfigError(f"run directory {run_dir} does not exist")
    groups: list[Group] = []
    for path in files:
        try:
            traces = read_traces(path)
        except (OSError, UnicodeDecodeError, TypeError) as exc:
            raise ConfigError(f"cannot read traces file {path}: {exc}") from exc
        if traces:
            rel = path.parent.relative_to(root).as_posix()
            groups.append((root.resolve().name if rel == "." else rel, _graded(traces)))
    if not groups:
        raise ConfigError(f"no traces.jsonl with traces under {run_dir}")
    return groups


def _graded(traces: list[Trace]) -> list[Trace]:
    """Fill answers/correctness a run did not record (e.g. ``leapt infer``); recorded ones stay."""
    from eval.grading import grade_trace

    return [grade_trace(t) for t in traces]


def page_name(label: str) -> str:
    """A file name for a run's page, e.g. ``view-aime24-leap.html``."""
    return "view-" + re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") + ".html"


def write_run_pages(groups: Sequence[Group], out_dir: str | Path) -> list[tuple[str, str]]:
    """One page per run in ``out_dir`` (as ``leapt report`` links them); (label, file name)."""
    pages = []
    for label, traces in groups:
        name = page_name(label)
        write_page([(label, traces)], Path(out_dir) / name, label)
        pages.append((label, name))
    return pages


def check_page_target(out: Path) -> None:
    """Refuse to write the page over a folder, or over a file that is not an earlier page."""
    check_output_dir(out.parent, "output")
    if out.is_dir():
        raise ConfigError(f"'output' {out} is a folder; name the HTML file to write")
    if out.exists() and not is_viewer_page(out):
        raise ConfigError(
            f"'output' {out} exists and is not a page leapt view wrote; choose another file"
        )


@dataclass
class ViewArguments:
    """Which run to show and where the page goes."""

    run_dir: str | None = field(
        default=None, metadata={"help": "run directory (or a traces.jsonl)", "metavar": "RUN_DIR"}
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": f"HTML file to write (default: RUN_DIR/{DEFAULT_NAME})",
            "aliases": ["-o"],
        },
    )

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ConfigError("name the run directory (or traces.jsonl) to view")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt view``; returns the exit code."""
    (args,) = parse_config(
        (ViewArguments,),
        argv,
        prog="leapt view",
        description="Write one self-contained HTML page (no server, no network) to read the "
        "traces of an infer, eval or generate run in a browser: the problems with their answers, "
        "every path side by side by LeaP turn, coloured by author, and who read whom.",
        positional="run_dir",
    )
    run = Path(args.run_dir)
    run = run if run.is_dir() else run.parent
    out = Path(args.output) if args.output else run / DEFAULT_NAME
    check_page_target(out)
    groups = load_groups(args.run_dir)
    size = write_page(groups, out, run.resolve().name)
    problems = sum(len(traces) for _, traces in groups)
    print(f"wrote {out} ({size / 1e6:.1f} MB, {len(groups)} run(s), {problems} problems)")
    return 0

"""The end-to-end run's acceptance check, run at the end of ``make e2e`` / ``make e2e-quick``.

It asserts what the run must deliver and nothing about how much training
helped (that is a measurement, reported, not a pass mark):

1. the pipeline completed: a dataset, a finished student, two finished evaluations;
2. the dataset is non-empty;
3. accuracy (Pass@1, Cons@N) and adherence are measured for both models
   (``before``: the base model, ``after``: the student) in every mode
   (``leap``, ``leap_t``);
4. the report rendered: ``results.md``, ``results.json`` and both PNG plots.

``python -m leapt.e2e_check OUT`` logs every missing piece, one per line,
and exits 1 if there is any (0 and one summary line otherwise).  It lives in
``leapt/`` because it reads every stage's output (data_gen, training, eval).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data_gen.output import STATS_FILE, read_dataset_dir
from eval.adherence import RATES
from eval.compare import ACCURACY_KEYS, ACCURACY_PNG, ADHERENCE_PNG
from eval.costs import TRAINING_RECORD
from eval.report import RESULTS_JSON, RESULTS_MD
from leapt.config import ConfigError, parse_config
from leapt.files import read_marker

logger = logging.getLogger(__name__)

LABELS = ("before", "after")
MODES = ("leap", "leap_t")
#: what each stage leaves when it finished (data_gen.output, training.sft, eval.report)
FINISHED = {
    "data": STATS_FILE,
    "student": TRAINING_RECORD,
    "before": RESULTS_JSON,
    "after": RESULTS_JSON,
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: the count under each adherence rate's denominator (eval.adherence)
_DENOMINATORS = {
    "summary_closed_rate": "summaries",
    "self_open_rate": "paths",
    "peer_use_rate": "reflections",
    "peer_use_chance": "reflections_with_other",
}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def _row_problems(where: str, row: dict) -> list[str]:
    """What is not measured in one (label, benchmark, mode) row of the comparison."""
    problems = [f"{where}: {key} not measured" for key in ACCURACY_KEYS if not _is_number(row[key])]
    adherence = row.get("adherence") or {}
    counts = adherence.get("counts") or {}
    if not counts.get("paths"):
        return [*problems, f"{where}: adherence not measured (no paths counted)"]
    for rate in RATES:  # undefined (null) only when nothing it counts occurred
        if not _is_number(adherence.get(rate)) and counts.get(_DENOMINATORS[rate]):
            problems.append(f"{where}: adherence {rate} not measured")
    return problems


def check_e2e(out: str | Path) -> list[str]:
    """Every missing piece of the finished run in ``out`` (empty: the run delivered)."""
    out = Path(out)
    problems = [
        f"{out / stage / marker} missing or unreadable: stage '{stage}' did not finish"
        for stage, marker in FINISHED.items()
        if read_marker(out / stage / marker) is None
    ]
    if (out / "data" / STATS_FILE).is_file():
        try:
            rows, _ = read_dataset_dir(out / "data")
        except ConfigError as exc:
            rows, problems = [], [*problems, str(exc)]
        if not rows:
            problems.append(f"dataset {out / 'data'} is empty: no training rows were kept")
    report = out / RESULTS_JSON
    if not report.is_file():
        return [*problems, f"{report} missing: the before/after report was not written"]
    doc = json.loads(report.read_text(encoding="utf-8"))
    for label in LABELS:
        benchmarks = doc.get(label) or {}
        if not benchmarks:
            problems.append(f"{report}: no '{label}' results")
        for bench, methods in benchmarks.items():
            for mode in MODES:
                where = f"{label} / {bench} / {mode}"
                if mode not in methods:
                    problems.append(f"{where}: not evaluated")
                else:
                    problems += _row_problems(where, methods[mode])
    models = {
        label: {r["model"] for b in (doc.get(label) or {}).values() for r in b.values()}
        for label in LABELS
    }
    if models["before"] and models["before"] == models["after"]:
        problems.append(
            f"{report}: 'before' and 'after' evaluated the same model {models['after']}"
        )
    md = out / RESULTS_MD
    if not md.is_file() or not all(f"**{label}**" in md.read_text("utf-8") for label in LABELS):
        problems.append(f"{md} missing or without the {' and '.join(LABELS)} results")
    for png in (ACCURACY_PNG, ADHERENCE_PNG):
        path = out / png
        if not path.is_file() or path.read_bytes()[:8] != PNG_MAGIC:
            problems.append(f"{path} missing or not a PNG")
    return problems


@dataclass
class CheckArguments:
    """Which end-to-end report folder to check."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "the run's E2E_OUT folder (data/, student/, before/, after/, report)"},
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ConfigError("name the end-to-end output folder to check")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m leapt.e2e_check``; returns the exit code."""
    (args,) = parse_config(
        (CheckArguments,),
        argv,
        prog="python -m leapt.e2e_check",
        description="Check that an end-to-end run (make e2e / e2e-quick) delivered everything.",
        positional="output_dir",
    )
    problems = check_e2e(args.output_dir)
    for problem in problems:
        logger.error(problem)
    if problems:
        logger.error(f"FAILED ({len(problems)} missing) in {args.output_dir}")
        return 1
    print(
        f"e2e check: OK ({args.output_dir}: pipeline complete, dataset non-empty, both models measured)"
    )
    return 0


if __name__ == "__main__":
    from leapt.cli import run_stage

    sys.exit(run_stage("e2e check", main, sys.argv[1:]))

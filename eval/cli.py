"""``leapt eval``: run methods x benchmarks for one model, then write the report.

The model is loaded once and shared by every (benchmark, method) run; each
run writes ``<output_dir>/<benchmark>/<method>/traces.jsonl`` through
``run_inference`` (which skips problems already finished there, so an
interrupted evaluation resumes), graded as it goes by :func:`make_grader`.
All benchmarks are loaded and every option checked *before* the model is, so
a typo fails in a second, not after a download.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inference.args import METHODS, LeapArguments, ModelArguments
from leapt.config import ConfigError, check_at_least, check_choice, check_output_dir, parse_config

logger = logging.getLogger(__name__)


@dataclass
class EvalArguments:
    """Which benchmarks and methods to evaluate, and where results go."""

    benchmarks: list[str] = field(
        default_factory=lambda: ["aime24"],
        metadata={"help": "benchmark names from the registry (eval/benchmarks.py)"},
    )
    methods: list[str] = field(
        default_factory=lambda: ["independent", "leap"],
        metadata={"help": f"inference methods to compare, from {', '.join(METHODS)}"},
    )
    output_dir: str = field(
        default="outputs/eval",
        metadata={"help": "results root: <output_dir>/<benchmark>/<method>/traces.jsonl + report"},
    )
    local_files: dict | None = field(
        default=None,
        metadata={
            "help": "replace a benchmark's Hub source by a local json/jsonl/parquet file, "
            "e.g. aime24=data/aime24.jsonl"
        },
    )
    n_per_benchmark: dict | None = field(
        default=None,
        metadata={
            "help": "paths per problem for some benchmarks, overriding 'n' "
            "(paper: 32 for math, gpqa_diamond=8)"
        },
    )
    limit: int | None = field(
        default=None, metadata={"help": "evaluate only the first N problems of each benchmark"}
    )
    option_seed: int = field(
        default=0, metadata={"help": "seed of the deterministic multiple-choice option shuffle"}
    )
    shuffle_options: bool = field(
        default=True,
        metadata={
            "help": "shuffle multiple-choice options with option_seed; false keeps the file's "
            "order (the report says so)"
        },
    )
    grading_scope: str = field(
        default="path",
        metadata={
            "help": "what is graded: path (the path's own text), after_think (only after the "
            "think-end tag, as lighteval), lighteval (math-verify's own extraction) or authors "
            "(the LeaP code's grader); the report adds every scope's Pass@1"
        },
    )
    report: bool = field(default=True, metadata={"help": "write results.json/.md and plots"})
    seeds: list[int] | None = field(
        default=None,
        metadata={
            "help": "run seeds: each runs into <output_dir>/seed-<s>/ and the report gives "
            "mean ± std across seeds beside the bootstrap interval (default: the 'seed' key)"
        },
    )

    def __post_init__(self) -> None:
        from eval.benchmarks import check_local_files, get_benchmark
        from eval.grading import GRADING_SCOPES

        check_choice("grading_scope", self.grading_scope, GRADING_SCOPES, what="grading scope")
        for name in self.benchmarks:
            get_benchmark(name)
        for method in self.methods:
            check_choice("methods", method, METHODS, what="method")
        if not self.benchmarks or not self.methods:
            raise ConfigError("'benchmarks' and 'methods' must each name at least one entry")
        check_local_files(self.local_files)
        for name, n in (self.n_per_benchmark or {}).items():
            get_benchmark(name, key="n_per_benchmark")  # unselected benchmarks are allowed
            try:
                value = int(n)
            except (TypeError, ValueError):
                value = 0
            if value < 1:
                raise ConfigError(f"'n_per_benchmark' for '{name}' must be an integer >= 1")
        check_at_least(self, 1, "limit")
        check_output_dir(self.output_dir)
        if self.seeds is not None and (
            not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0
        ):
            raise ConfigError(f"'seeds' must be distinct integers >= 0, got {self.seeds}")


def plan_runs(
    eval_args: EvalArguments, leap_args: LeapArguments
) -> list[tuple[Path, str, LeapArguments]]:
    """(run folder, benchmark, method settings) for every run, validated before any model loads.

    With ``seeds`` every seed gets its own ``seed-<s>`` folder under ``output_dir``.
    """
    from eval.benchmarks import BENCHMARKS

    root = Path(eval_args.output_dir)
    seeded = [(root / f"seed-{s}", s) for s in eval_args.seeds or []]
    plan = []
    for folder, seed in seeded or [(root, leap_args.seed)]:
        for bench in eval_args.benchmarks:
            n = int((eval_args.n_per_benchmark or {}).get(bench, leap_args.n))
            for method in eval_args.methods:
                try:
                    args = dataclasses.replace(
                        leap_args, method=method, n=n, task=BENCHMARKS[bench].task, seed=seed
                    )
                except ConfigError as exc:
                    raise ConfigError(f"benchmark '{bench}', method '{method}': {exc}") from exc
                plan.append((folder / bench / method, bench, args))
    return plan


def option_order(eval_args: EvalArguments, task: str) -> dict:
    """What fixes the order a choice problem's options are shown in: recorded in each run
    folder's manifest, so a rerun with another order is refused (its finished paths saw
    letters that now name other options)."""
    if task != "choice":
        return {}
    return {"option_seed": eval_args.option_seed, "shuffle_options": eval_args.shuffle_options}


def recorded_settings(eval_args: EvalArguments, task: str) -> dict:
    """Eval settings recorded in each trace for the report: grading scope, option order.

    (The grading scope may change between runs: the report regrades.)
    """
    return {"grading_scope": eval_args.grading_scope, **option_order(eval_args, task)}


def run_eval(
    model_args: ModelArguments,
    leap_args: LeapArguments,
    eval_args: EvalArguments,
    *,
    backend=None,
    progress: bool = True,
) -> dict | None:
    """Evaluate every (seed, benchmark, method) and return the report's results (if written)."""
    from eval.benchmarks import BENCHMARKS, load_benchmark
    from eval.grading import make_grader
    from inference.run_folder import RunSpec, open_runs
    from leapt.wall_time import StageClock

    clock = StageClock("eval")
    plan = plan_runs(eval_args, leap_args)
    problems = {
        bench: load_benchmark(
            bench,
            local=(eval_args.local_files or {}).get(bench),
            limit=eval_args.limit,
            seed=eval_args.option_seed,
            shuffle=eval_args.shuffle_options,
        )
        for bench in eval_args.benchmarks
    }
    warn_protocol_overlap(leap_args.protocol, problems)
    root = Path(eval_args.output_dir)
    local = eval_args.local_files or {}
    specs = [
        RunSpec(
            out,
            args,
            problems[bench],
            local.get(bench) or BENCHMARKS[bench].source or bench,
            extra=option_order(eval_args, args.task),
        )
        for out, bench, args in plan
    ]
    # every run is checked before any generates; the model loads once, not at all when done
    with open_runs(model_args, specs, lock_dir=root, backend=backend) as session:
        for spec, (_, bench, args) in zip(specs, plan, strict=True):
            if progress:
                logger.info(
                    "== %s / %s (seed %s): %d problems, n=%d",
                    bench,
                    args.method,
                    args.seed,
                    len(spec.problems),
                    args.n,
                )
            session.run(
                spec,
                grade=make_grader(args.task),
                progress=progress,
                settings=recorded_settings(eval_args, args.task),
            )
        if session.any_pending:  # a rerun over finished runs only rewrites the report
            clock.record(root)
        if not eval_args.report:
            return None
        from eval.report import RESULTS_MD, write_report

        results = write_report([root], root, grading_scope=eval_args.grading_scope)
    if progress:
        print((root / RESULTS_MD).read_text())
    return results


def warn_protocol_overlap(protocol_file: str | None, problems: dict[str, list]) -> list[str]:
    """Warn when a protocol text shares an 8-gram with a problem of a benchmark being scored.

    A worked example or cue that quotes a benchmark item shows that item to the
    methods that read the protocol (LeaP) and not to the baseline, so their
    scores are no longer comparable.  The packaged protocol and MoA wording are
    kept clean by a test; this catches a user's ``--protocol`` file.  Returns
    the warnings (also logged).
    """
    from eval.overlap import NgramIndex, protocol_overlaps
    from inference.methods.moa import wording
    from inference.protocol import load_protocol

    index = NgramIndex(8)
    for bench, items in problems.items():
        index.add(bench, items)
    texts = load_protocol(protocol_file).texts()
    texts.update({f"moa.{k}": v for k, v in wording().items()})
    where = f"protocol file {protocol_file}" if protocol_file else "the packaged protocol"
    messages = [
        f"{where}: '{key}' shares the words '{hit.ngram}' with {hit.benchmark} problem "
        f"{hit.benchmark_id}; methods that show this text see part of a scored problem"
        for key, hit in protocol_overlaps(texts, index)
    ]
    for message in messages:
        logger.warning(message)
    return messages


def main(argv: Sequence[str] | None = None) -> int:
    model_args, leap_args, eval_args = parse_config(
        (ModelArguments, LeapArguments, EvalArguments),
        argv,
        prog="leapt eval",
        description="Evaluate one model with several inference methods on several benchmarks "
        "and write results.json, results.md and plots (resumes from existing traces).",
    )
    run_eval(model_args, leap_args, eval_args)
    return 0

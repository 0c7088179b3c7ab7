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
from leapt.config import ConfigError, check_at_least, check_choice, parse_config

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


def run_eval(
    model_args: ModelArguments,
    leap_args: LeapArguments,
    eval_args: EvalArguments,
    *,
    backend=None,
    progress: bool = True,
) -> dict | None:
    """Evaluate every (seed, benchmark, method) and return the report's results (if written)."""
    from eval.benchmarks import load_benchmark
    from eval.grading import make_grader
    from leapt.wall_time import StageClock

    clock = StageClock("eval")
    plan = plan_runs(eval_args, leap_args)
    problems = {
        bench: load_benchmark(
            bench,
            local=(eval_args.local_files or {}).get(bench),
            limit=eval_args.limit,
            seed=eval_args.option_seed,
        )
        for bench in eval_args.benchmarks
    }
    warn_protocol_overlap(leap_args.protocol, problems)
    from inference.context import check_context_fits
    from inference.run import check_resume_settings, run_inference
    from inference.trace import TraceFile

    root = Path(eval_args.output_dir)
    for out, bench, args in plan:  # every run is checked before any generates
        check_resume_settings(TraceFile(out / "traces.jsonl"), args)
        check_context_fits(model_args, args, problems[bench])
    pending = any(
        {p.id for p in problems[bench]} - TraceFile(out / "traces.jsonl").done_ids()
        for out, bench, args in plan
    )
    own_backend = backend is None and pending
    if own_backend:  # once for every run; not at all when everything is already done
        from inference.backends import load_backend

        backend = load_backend(model_args)
    try:
        for out, bench, args in plan:
            if progress:
                logger.info(
                    "== %s / %s (seed %s): %d problems, n=%d",
                    bench,
                    args.method,
                    args.seed,
                    len(problems[bench]),
                    args.n,
                )
            run_inference(
                model_args,
                args,
                problems[bench],
                out,
                backend=backend,
                grade=make_grader(args.task),
                progress=progress,
            )
    finally:
        if own_backend:
            backend.close()
    if pending:  # a rerun over finished runs only rewrites the report
        clock.record(root)
    if not eval_args.report:
        return None
    from eval.report import RESULTS_MD, write_report

    results = write_report([root], root)
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

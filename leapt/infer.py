"""``leapt infer``: run a LeaP method over a problem set and write traces.

Everything that can be checked without the model -- options, the protocol
file, the problem source and its columns -- is checked first, so a typo
fails in a second with a message naming the key or file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from inference.args import DataArguments, LeapArguments, ModelArguments
from leapt.config import parse_config

DESCRIPTION = (
    "Run N reasoning paths per problem that periodically summarize and read their peers' "
    "summaries (LeaP), or another --method (leap_t, independent, ...); writes traces.jsonl and "
    "summary.json to --output_dir and resumes an interrupted run in the same folder."
)


def main(argv: Sequence[str] | None = None) -> int:
    from inference.problems import load_problems
    from inference.protocol import load_protocol
    from inference.run_folder import RunSpec, open_runs

    model_args, leap_args, data_args = parse_config(
        (ModelArguments, LeapArguments, DataArguments),
        list(sys.argv[1:] if argv is None else argv),
        prog="leapt infer",
        description=DESCRIPTION,
    )
    load_protocol(leap_args.protocol)
    problems = load_problems(data_args, seed=leap_args.seed)
    graded = any(p.answer is not None for p in problems)
    grade = None
    if graded:  # eval's grader and metrics: this command sits above both engine and eval
        from eval.grading import make_grader

        grade = make_grader(leap_args.task)
    out = Path(data_args.output_dir)
    spec = RunSpec(out, leap_args, problems, data_args.source)
    with open_runs(model_args, [spec], lock_dir=out) as session:
        summary = session.run(spec, grade=grade, concurrent_problems=data_args.concurrent_problems)
    print(
        f"wrote {data_args.output_dir}/traces.jsonl and summary.json ({summary['finished']} problems)"
    )
    if graded:
        print(accuracy_line(out / "traces.jsonl", problems, leap_args.task))
    return 0


def accuracy_line(traces_path: Path, problems: list, task: str) -> str:
    """Pass@1 and Cons@N of this run's problems, as ``leapt eval`` computes them."""
    from eval.metrics import method_metrics
    from inference.trace import read_traces

    wanted = {p.id for p in problems}
    m = method_metrics([t for t in read_traces(traces_path) if t.id in wanted], task)
    return (
        f"Pass@1 {m['pass@1']:.3f}  Cons@{m['n']} {m['cons@n']:.3f}  "
        f"({m['graded_problems']} graded problems, {m['n']} paths each)"
    )

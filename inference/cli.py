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
    from inference.run import check_resume_settings, run_inference
    from inference.trace import TraceFile

    model_args, leap_args, data_args = parse_config(
        (ModelArguments, LeapArguments, DataArguments),
        list(sys.argv[1:] if argv is None else argv),
        prog="leapt infer",
        description=DESCRIPTION,
    )
    load_protocol(leap_args.protocol)
    problems = load_problems(data_args, seed=leap_args.seed)
    check_resume_settings(TraceFile(Path(data_args.output_dir) / "traces.jsonl"), leap_args)
    summary = run_inference(model_args, leap_args, data_args, problems=problems)
    print(
        f"wrote {data_args.output_dir}/traces.jsonl and summary.json ({summary['finished']} problems)"
    )
    return 0

"""The ``leapt`` console script: a thin dispatcher, one function per stage.

Stage modules are imported lazily so that ``leapt --help`` and config errors
stay fast and never pay for torch/transformers imports they do not need.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from leapt.config import ConfigError

#: stage name -> (module with ``main(argv)``, one-line description)
STAGES: dict[str, tuple[str, str]] = {
    "infer": ("inference.cli", "run N peer-exchanging reasoning paths per problem (LeaP)"),
    "eval": (
        "eval.cli",
        "run methods x benchmarks for one model; write results.json/.md and plots",
    ),
    "report": ("eval.report_cli", "re-render results from existing traces without generating"),
    "generate": ("data_gen.cli", "harvest a teacher's LeaP traces into an SFT dataset"),
    "view": ("viewer.cli", "write a self-contained HTML page to read a run's traces in a browser"),
    "train": ("training.sft", "supervised fine-tuning (TRL SFT, DeepSpeed ZeRO, LoRA optional)"),
    "publish": (
        "leapt.publish",
        "upload a checkpoint with its eval results, or a dataset, to the Hub",
    ),
}


def _usage() -> str:
    lines = ["usage: leapt <stage> [--config FILE] [--key value ...]", "", "stages:"]
    lines += [f"  {name:<9} {desc}" for name, (_, desc) in STAGES.items()]
    lines += ["", "Run `leapt <stage> --help` for every option of a stage."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leapt`` script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if args[0] == "--version":
        from leapt import __version__

        print(f"leapt {__version__}")
        return 0
    stage, rest = args[0], args[1:]
    if stage not in STAGES:
        print(f"leapt: error: unknown stage '{stage}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    try:
        return int(module.main(rest) or 0)
    except ConfigError as exc:
        print(f"leapt {stage}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

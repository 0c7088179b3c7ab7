"""The ``leapt`` console script: a thin dispatcher, one function per command.

Command modules are imported lazily so that ``leapt --help`` and config errors
stay fast and never pay for torch/transformers imports they do not need.
Every command parses its options with ``HfArgumentParser`` dataclasses
(:func:`leapt.config.parse_config`), and :func:`run_stage` is the one place
where a :class:`~leapt.config.ConfigError` becomes a one-line message and
exit code 2, and where logging is set up (:mod:`leapt.log`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from leapt import log
from leapt.config import ConfigError
from leapt.redact import redact_urls

#: command ("stage" or "stage sub") -> (module with ``main(argv)``, one-line description)
STAGES: dict[str, tuple[str, str]] = {
    "infer": ("leapt.infer", "run N peer-exchanging reasoning paths per problem (LeaP)"),
    "eval": (
        "eval.cli",
        "run methods x benchmarks for one model; write results.json/.md and plots",
    ),
    "report": ("eval.report_cli", "re-render results from existing traces without generating"),
    "generate": ("data_gen.cli", "harvest a teacher's LeaP traces into an SFT dataset"),
    "generate merge": ("data_gen.merge", "combine generated shard datasets into one"),
    "view": (
        "eval.viewer.cli",
        "write a self-contained HTML page to read a run's traces in a browser",
    ),
    "train": ("training.sft", "supervised fine-tuning (TRL SFT, DeepSpeed ZeRO, LoRA optional)"),
    "serve": (
        "leapt.serve",
        "serve LeaP as an OpenAI-compatible API (chat/completions), each request traced",
    ),
    "publish": (
        "leapt.publish",
        "upload a checkpoint with its eval results, or a dataset, to the Hub",
    ),
}

#: the project's top-level packages, whose logging leapt sets up: those holding a command, and
#: the engine and the server (their commands live in leapt/: they use eval's grading and voting)
PACKAGES = sorted(
    {"inference", "serving"} | {module.partition(".")[0] for module, _ in STAGES.values()}
)


def _usage() -> str:
    lines = ["usage: leapt <stage> [--config FILE] [--key value ...]", "", "stages:"]
    lines += [f"  {name:<15} {desc}" for name, (_, desc) in STAGES.items()]
    lines += [
        "",
        "Run `leapt <stage> --help` for every option of a stage.",
        f"{log.VERBOSITY_ENV}=debug|info|warning|error sets how much is logged (default: info).",
    ]
    return "\n".join(lines)


def run_stage(stage: str, entry: Callable[[list[str]], int | None], argv: Sequence[str]) -> int:
    """Run one command's ``entry(argv)`` with logging set up; a ConfigError exits 2 in one line.

    The only place that turns a configuration error into an exit code, for
    ``leapt`` and for the module entry points launched ranks and Slurm
    pre-flights run (``python -m training.sft``, ``training.launch_check``).
    """
    try:
        log.setup(stage, PACKAGES)
        return int(entry(list(argv)) or 0)
    except ConfigError as exc:
        print(f"leapt {stage}: error: {redact_urls(str(exc))}", file=sys.stderr)
        return 2


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
    words = 2 if " ".join(args[:2]) in STAGES else 1
    stage, rest = " ".join(args[:words]), args[words:]
    if stage not in STAGES:
        print(f"leapt: error: unknown stage '{stage}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    return run_stage(stage, module.main, rest)


if __name__ == "__main__":
    sys.exit(main())

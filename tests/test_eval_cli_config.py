"""`leapt eval` options: the shipped configs parse, bad input fails before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.cli import EvalArguments, plan_runs
from inference.args import LeapArguments, ModelArguments
from leapt.cli import main as leapt
from leapt.config import ConfigError, parse_config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs" / "eval").glob("*.yaml"))


def _parse(argv):
    return parse_config((ModelArguments, LeapArguments, EvalArguments), argv, "leapt eval", "")


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_shipped_configs_parse(config):
    model_args, leap_args, eval_args = _parse(["--config", str(config)])
    plan = plan_runs(eval_args, leap_args)
    assert len(plan) == len(eval_args.benchmarks) * len(eval_args.methods)
    if config.stem not in ("smoke", "openr1_compat"):  # paper settings (open-r1: its own test)
        assert (leap_args.n, leap_args.T, leap_args.top_k, leap_args.router) == (
            32,
            4096,
            4,
            "dispersed",
        )
        assert (leap_args.temperature, leap_args.top_p, leap_args.sampling_top_k) == (0.6, 0.95, 40)
        budget = 32768 if "32b" in config.stem else 16384
        assert leap_args.max_tokens == budget
        gpqa = [args for _, bench, args in plan if bench == "gpqa_diamond"]
        assert gpqa and all(a.n == 8 and a.task == "choice" for a in gpqa)


def test_paper_configs_cover_the_paper_models():
    stems = {c.stem for c in CONFIGS}
    assert {
        "r1_distill_qwen_1p5b",
        "r1_distill_qwen_7b",
        "r1_distill_qwen_14b",
        "qwq_32b",
        "smoke",
    } <= stems


def test_overrides_on_the_command_line():
    _, leap_args, eval_args = _parse(
        ["--config", str(CONFIGS[0]), "--benchmarks", "aime24", "--methods", "leap", "--n", "8"]
    )
    assert eval_args.benchmarks == ["aime24"] and eval_args.methods == ["leap"] and leap_args.n == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmarks", "mmlu"], "unknown benchmark 'mmlu'"),
        (["--methods", "beam"], "unknown method 'beam'"),
        (["--local_files", "aime24=/nonexistent.jsonl"], "does not exist"),
        (["--n_per_benchmark", "aime26=8"], "unknown benchmark 'aime26'"),
        (["--n_per_benchmark", "aime24=zero"], "integer >= 1"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert leapt(["eval", *argv]) == 2
    assert message in capsys.readouterr().err


def test_top_k_must_fit_every_benchmark_n():
    _, leap_args, eval_args = _parse(
        [
            "--benchmarks",
            "aime24",
            "gpqa_diamond",
            "--n",
            "8",
            "--top_k",
            "4",
            "--n_per_benchmark",
            "gpqa_diamond=4",
            "--methods",
            "leap",
        ]
    )
    with pytest.raises(ConfigError, match="gpqa_diamond"):
        plan_runs(eval_args, leap_args)


def test_help_lists_eval_options(capsys):
    with pytest.raises(SystemExit) as exc:
        leapt(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--benchmarks" in out and "--local_files" in out and "--T" in out


def test_help_states_each_default_once(capsys):
    """A flag whose help says its default in words gets no second, automatic ``(default: None)``."""
    with pytest.raises(SystemExit):
        leapt(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: DIR when one is given; required for several)" in out
    assert "required for several) (default" not in out
    assert "(the same as --dirs) (default" not in out  # the bare DIR's default is --dirs'
    assert "(default: [])" in out  # an option without a default in words still shows it

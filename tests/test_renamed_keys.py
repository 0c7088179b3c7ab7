"""Renamed config keys: an old spelling still works with a FutureWarning naming the new key,
and giving the old and the new spelling together is a one-line error (exit 2)."""

from __future__ import annotations

import pytest
import yaml

from data_gen.args import GenerateArguments
from inference.args import DataArguments, LeapArguments, ModelArguments
from leapt.cli import main as leapt
from leapt.config import ConfigError, parse_config


def parse_infer(argv):
    return parse_config((ModelArguments, LeapArguments, DataArguments), argv, "leapt infer", "")


def write_config(tmp_path, data: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_old_problems_key_in_a_config_still_loads_and_names_the_new_key(tmp_path):
    config = write_config(tmp_path, {"problems": "synthetic", "num_synthetic": 3})
    with pytest.warns(FutureWarning, match="'problems' is deprecated.*use 'source'"):
        *_, data_args = parse_infer(["--config", config])
    assert data_args.source == "synthetic" and data_args.num_synthetic == 3


@pytest.mark.parametrize("flag", [["--problems", "synthetic"], ["--problems=synthetic"]])
def test_old_problems_flag_still_works(flag):
    with pytest.warns(FutureWarning, match="use '--source'"):
        *_, data_args = parse_infer(flag)
    assert data_args.source == "synthetic"


def test_new_flag_overrides_an_old_config_key(tmp_path):
    config = write_config(tmp_path, {"problems": "synthetic"})
    with pytest.warns(FutureWarning):
        *_, data_args = parse_infer(["--config", config, "--source", "builtin:easy"])
    assert data_args.source == "builtin:easy"


def test_both_spellings_in_one_config_are_an_error_naming_both(tmp_path, capsys):
    config = write_config(tmp_path, {"problems": "synthetic", "source": "builtin:easy"})
    assert leapt(["infer", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "'problems'" in err and "'source'" in err and "Traceback" not in err


def test_both_spellings_on_the_command_line_are_an_error(capsys):
    assert leapt(["infer", "--problems", "synthetic", "--source", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert "--problems" in err and "--source" in err


def test_old_named_benchmark_file_moves_to_local_files(reference_data):
    path = str(reference_data / "aimo_2025.json")
    with pytest.warns(FutureWarning, match="local_files"):
        args = GenerateArguments(decontam_benchmarks=["aime24", f"aimo25={path}"])
    assert args.decontam_benchmarks == ["aime24", "aimo25"]
    assert args.local_files == {"aimo25": path}


def test_a_benchmark_file_given_both_ways_is_an_error(reference_data):
    path = str(reference_data / "aimo_2025.json")
    with pytest.raises(ConfigError, match="'local_files'.*'decontam_benchmarks'"):
        GenerateArguments(decontam_benchmarks=[f"aimo25={path}"], local_files={"aimo25": path})

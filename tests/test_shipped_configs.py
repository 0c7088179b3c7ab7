"""Every YAML config the repository ships parses with its stage's options.

A renamed or removed option would otherwise surface only when a user runs the
config (on a cluster, hours into a queue); parsing needs no model or data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from data_gen.args import GenerateArguments
from eval.cli import EvalArguments
from inference.args import DataArguments, LeapArguments, ModelArguments
from leapt.config import parse_config
from training.recipe import LaunchArguments, ModelConfig, SFTConfig, TrainScriptArguments

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
#: the options of each stage, by the config's name (its folder, or its file name under e2e/)
STAGES = {
    "infer": (ModelArguments, LeapArguments, DataArguments),
    "eval": (ModelArguments, LeapArguments, EvalArguments),
    "generate": (GenerateArguments, ModelArguments, LeapArguments),
    "training": (TrainScriptArguments, SFTConfig, ModelConfig, LaunchArguments),
}
E2E_STAGES = {"generate": "generate", "eval": "eval", "train": "training"}
#: TrainingArguments refuses bf16 on a machine without a GPU; every other key is still checked
CPU_OVERRIDES = {"training": ["--bf16", "false"]}


def stage_of(config: Path) -> str:
    if config.parent.parent.name == "e2e":
        return E2E_STAGES[config.stem]
    return config.parent.name


#: folders of files that are no stage config: accelerate's own, and protocol wording files
NOT_STAGES = {"accelerate", "protocol"}
SHIPPED = sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name not in NOT_STAGES)


def test_every_stage_folder_is_covered():
    assert {stage_of(p) for p in SHIPPED} == set(STAGES)


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_config_parses_with_its_stage_options(config, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)  # configs name repository files relative to the root
    stage = stage_of(config)
    argv = ["--config", str(config), *CPU_OVERRIDES.get(stage, [])]
    parsed = parse_config(STAGES[stage], argv, "test", "")
    assert len(parsed) == len(STAGES[stage])


@pytest.mark.parametrize(
    "protocol", sorted((CONFIGS / "protocol").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_protocol_files_load(protocol):
    from inference.protocol import load_protocol

    loaded = load_protocol(protocol)
    assert "{problem}" not in loaded.user_message("Q?", None, "math")
    assert "A) x" in loaded.user_message("Q?", ["x", "y"], "choice")

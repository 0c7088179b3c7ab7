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


# -- paper configs: every key the paper fixes, and the GPU layout each is documented for ----------

#: configs that are not paper settings (CPU smoke runs and demos); every other config of these
#: stages reproduces a paper setting, so a new one is checked unless it is listed here
NOT_PAPER = {
    "eval/openr1_compat.yaml",  # open-r1's settings, not the paper's
    "eval/smoke.yaml",
    "generate/smoke.yaml",
    "infer/default.yaml",
    "infer/demo.yaml",
}
PAPER = sorted(
    p
    for stage in ("eval", "generate", "infer")
    for p in (CONFIGS / stage).glob("*.yaml")
    if str(p.relative_to(CONFIGS)) not in NOT_PAPER
)
#: the paper's protocol and sampling (the authors' scripts add min-p 0.05)
PAPER_VALUES = {
    "T": 4096,
    "top_k": 4,
    "router": "dispersed",
    "summary_max_tokens": 256,
    "temperature": 0.6,
    "top_p": 0.95,
    "sampling_top_k": 40,
    "min_p": 0.05,
    "forced_answer_tokens": 128,
}


def _raw(config: Path) -> dict:
    import yaml

    return yaml.safe_load(config.read_text(encoding="utf-8"))


def test_paper_configs_are_found():
    names = {str(p.relative_to(CONFIGS)) for p in PAPER}
    assert {"generate/paper_sft_control.yaml", "infer/leap_t.yaml", "eval/qwq_32b.yaml"} <= names


@pytest.mark.parametrize("config", PAPER, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_paper_config_sets_every_key_the_paper_fixes(config):
    """Set in the file itself: a default that changes later must not change a paper run."""
    raw = _raw(config)
    missing = sorted((set(PAPER_VALUES) | {"max_tokens", "n"}) - set(raw))
    assert not missing, f"{config.name} leaves {missing} to the defaults"
    assert {k: raw[k] for k in PAPER_VALUES} == PAPER_VALUES
    big = "32B" in str(raw.get("model", "")).upper()
    assert raw["max_tokens"] == (32768 if big else 16384)
    assert raw["n"] == 32


@pytest.mark.parametrize("config", PAPER, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_paper_config_uses_the_gpu_layout_it_documents(config):
    """Up to 14B: one model copy per GPU on 8 GPUs; 32B: 2 copies of tensor parallel 4."""
    raw = _raw(config)
    big = "32B" in str(raw.get("model", "")).upper()
    layout = (raw.get("tensor_parallel_size", 1), raw.get("data_parallel_size", 1))
    assert layout == ((4, 2) if big else (1, 8))
    text = config.read_text(encoding="utf-8")
    stated = "tensor parallel 4 x data parallel 2" if big else "data parallel 8"
    assert stated in text, f"{config.name}: its comment must state the layout ({stated})"

"""Recipes, accelerate/DeepSpeed configs and bad input: every error comes before a model loads.

Tests that must prove "before the model loads" point model_name_or_path at a
directory that does not exist: reaching the model would fail differently.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leapt.cli import main as leapt_main
from leapt.config import ConfigError
from training.launch_check import (
    check_accelerate_file,
    check_launch,
    load_deepspeed_json,
    zero_stage,
)
from training.recipe import apply_global_batch, parse_recipe

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "configs" / "training").glob("*.yaml"))
ACCELERATE = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))
NO_MODEL = "/nonexistent/model-never-loaded"
ON_CPU = ["--use_cpu", "true"]
SMOKE = REPO / "configs" / "training" / "smoke_cpu.yaml"


@pytest.fixture(autouse=True)
def single_process_env(monkeypatch):
    for key in ("WORLD_SIZE", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_CONFIG_FILE"):
        monkeypatch.delenv(key, raising=False)


def run_train(argv: list[str], capsys) -> tuple[int, str]:
    code = leapt_main(["train", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_parses(recipe):
    # bf16 recipes are for GPUs; on this CPU machine TrainingArguments wants use_cpu for bf16
    script, args, model = parse_recipe(["--config", str(recipe), *ON_CPU])
    assert model.model_name_or_path and script.dataset_name
    assert script.loss_on == ["model"]


@pytest.mark.parametrize("size,epochs", [("1p5b", 8), ("7b", 8), ("14b", 5)])
def test_paper_recipes_follow_table_8(size, epochs):
    recipe = REPO / "configs" / "training" / f"leapt_t_{size}.yaml"
    script, args, model = parse_recipe(["--config", str(recipe), *ON_CPU])
    for world in (1, 2, 8, 16):  # the batch stays 16 whatever the GPU count
        apply_global_batch(script, args, world)
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world
        assert batch == 16
    assert f"R1-Distill-Qwen-{size.replace('p', '.').upper()}" in model.model_name_or_path
    assert (args.learning_rate, args.num_train_epochs) == (1e-5, epochs)
    assert (args.lr_scheduler_type, args.warmup_steps) == ("cosine", 0.05)
    assert (args.weight_decay, args.max_length, args.bf16) == (1e-4, 16384, True)
    assert args.optim.startswith("adamw")


@pytest.mark.parametrize("config", ACCELERATE, ids=lambda p: p.stem)
def test_shipped_accelerate_configs_are_consistent(config):
    cfg = check_accelerate_file(config)
    if cfg["distributed_type"] == "DEEPSPEED":
        ds = load_deepspeed_json(REPO / cfg["deepspeed_config"]["deepspeed_config_file"])
        assert zero_stage(ds) == (2 if config.stem == "zero2" else 3)
        offload = ds["zero_optimization"].get("offload_optimizer", {}).get("device")
        assert (offload == "cpu") == (config.stem == "zero3_offload")


def test_accelerate_config_with_a_mismatched_deepspeed_json_is_rejected(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    bad = tmp_path / "acc.yaml"
    bad.write_text(
        "distributed_type: DEEPSPEED\n"
        f"deepspeed_config:\n  deepspeed_config_file: {tmp_path / 'ds.json'}\n"
        "  zero3_init_flag: true\n"
    )
    with pytest.raises(ConfigError, match="zero3_init_flag is true but .* stage 2"):
        check_accelerate_file(bad)


def test_offloaded_optimizer_without_a_deepspeed_optimizer_fails_the_preflight(tmp_path, capsys):
    from training.launch_check import main as preflight

    shipped = json.loads((REPO / "configs" / "deepspeed" / "zero3_offload.json").read_text())
    assert shipped["optimizer"]["type"] == "AdamW"  # DeepSpeed builds its CPU Adam for it
    torch_adam = {k: v for k, v in shipped.items() if k != "optimizer"}
    (tmp_path / "ds.json").write_text(json.dumps(torch_adam))
    acc = tmp_path / "acc.yaml"
    acc.write_text(
        "distributed_type: DEEPSPEED\n"
        f"deepspeed_config:\n  deepspeed_config_file: {tmp_path / 'ds.json'}\n"
    )
    assert preflight([str(acc)]) == 2
    err = capsys.readouterr().err
    assert "offloads the optimizer (offload_optimizer.device=cpu)" in err
    assert 'no "optimizer" section' in err and str(tmp_path / "ds.json") in err
    _, args, _ = parse_recipe(["--config", str(SMOKE)])
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(acc)}
    with pytest.raises(ConfigError, match="offloads the optimizer"):
        check_launch(args, {**env, "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(tmp_path / "ds.json")})
    # the documented alternative: keep the torch optimizer, running on the CPU
    (tmp_path / "ds.json").write_text(
        json.dumps({**torch_adam, "zero_force_ds_cpu_optimizer": False})
    )
    assert preflight([str(acc)]) == 0
    assert preflight([str(REPO / "configs" / "accelerate" / "zero3_offload.yaml")]) == 0


def test_unknown_recipe_key_is_a_clear_error(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model_name_or_path: {NO_MODEL}\ndataset_name: x\nlearning_rat: 1.0e-5\n")
    code, err = run_train(["--config", str(recipe)], capsys)
    assert code == 2 and "unknown key 'learning_rat'" in err


def test_dataset_without_segments_fails_before_the_model(tmp_path, capsys, tiny_model_dir):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    argv = ["--config", str(REPO / "configs/training/smoke_cpu.yaml")]
    argv += ["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(data)]
    code, err = run_train([*argv, "--output_dir", str(tmp_path / "out")], capsys)
    assert code == 2 and "no 'segments' column" in err


def test_summary_tag_other_than_the_datasets_protocol_is_refused(tmp_path, capsys, tiny_model_dir):
    from tests.test_training_data import write_sft_dataset

    data = write_sft_dataset(tmp_path / "data", n=2)
    stats = {"protocol": {"summary_open": "<sum>", "summary_close": "</sum>"}}
    (data / "stats.json").write_text(json.dumps(stats))
    argv = ["--config", str(SMOKE), "--model_name_or_path", str(tiny_model_dir)]
    argv += ["--dataset_name", str(data), "--output_dir", str(tmp_path / "out")]
    argv += ["--summary_open", "<summarize>"]
    code, err = run_train(argv, capsys)
    assert code == 2
    assert "summary_open='<summarize>'" in err and "'<sum>'" in err and "stats.json" in err


def test_deepspeed_json_contradicting_the_launch_or_recipe_is_rejected(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"gradient_accumulation_steps": 4, "zero_optimization": {"stage": 2}}))
    _, args, _ = parse_recipe(["--config", str(SMOKE), "--gradient_accumulation_steps", "2"])
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ds)}
    with pytest.raises(
        ConfigError,
        match="gradient_accumulation_steps=4 but the recipe has gradient_accumulation_steps=2",
    ):
        check_launch(args, env)
    args.gradient_accumulation_steps = 4
    assert check_launch(args, env)["zero_optimization"]["stage"] == 2
    with pytest.raises(ConfigError, match="accelerate asks for ZeRO stage 3 but .* stage 2"):
        check_launch(args, {**env, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"})
    with pytest.raises(ConfigError, match="mixed_precision=bf16 but the recipe has bf16=False"):
        check_launch(args, {**env, "ACCELERATE_MIXED_PRECISION": "bf16"})
    ds.write_text(json.dumps({"bf16": {"enabled": True}, "zero_optimization": {"stage": 2}}))
    with pytest.raises(ConfigError, match="bf16.enabled=True but the recipe has bf16=False"):
        check_launch(args, env)
    ds.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        check_launch(args, env)


@pytest.mark.parametrize(
    "extra,message",
    [
        (
            ["--global_batch_size", "15", "--per_device_train_batch_size", "2"],
            "global_batch_size=15",
        ),
        (["--overlong", "wrap"], "overlong must be"),
        (["--loss_on", "peer", "teacher"], "loss_on must list kinds"),
        (["--push_to_hub", "true", "--hub_model_id", "me/leapt"], "HF_TOKEN"),
        (["--hub_token", "hf_x"], "hub_token must not be written"),
    ],
)
def test_bad_options_are_rejected_naming_the_key(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    argv = ["--config", str(REPO / "configs/training/smoke_cpu.yaml")]
    argv += ["--model_name_or_path", NO_MODEL, "--output_dir", str(tmp_path / "o")]
    code, err = run_train([*argv, *extra], capsys)
    assert code == 2 and message in err


def test_the_embedded_model_can_be_the_student(tmp_path):
    """`leapt train` takes the same embedded SmolLM2 name as infer/eval (converted once)."""
    from inference.args import EMBEDDED_MODEL

    argv = ["--config", str(SMOKE), "--model_name_or_path", EMBEDDED_MODEL]
    _, _, model = parse_recipe([*argv, "--dataset_name", "x", "--output_dir", str(tmp_path)])
    assert (Path(model.model_name_or_path) / "config.json").is_file()

"""`leapt train` end to end in one process: real TRL SFTTrainer on the tiny Qwen2 model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leapt.cli import main as leapt_main
from tests.test_training_data import write_sft_dataset
from tests.training_runs import smoke_argv
from training.sft import FINISHED_MARKER
from training.sft import main as train_main

FAKE_TOKEN = "hf_leaptTestSecretDoNotLeak123"


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> Path:
    return write_sft_dataset(tmp_path_factory.mktemp("sft-data"), n=16)


def losses(out_dir: Path) -> list[float]:
    record = json.loads((out_dir / FINISHED_MARKER).read_text())
    return [entry["loss"] for entry in record["log_history"] if "loss" in entry]


def generate(model_dir: Path, max_new_tokens: int = 12) -> tuple[str, int]:
    """Greedy reply to a chat prompt; returns (text, new token count)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3 + 12?"}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), len(new)


@pytest.mark.slow
def test_tiny_model_learns_and_the_checkpoint_reloads_and_generates(
    tiny_model_dir, sft_data, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / "run"
    assert train_main(smoke_argv(tiny_model_dir, sft_data, out, "--max_steps", "30")) == 0

    curve = losses(out)
    assert len(curve) == 30
    assert sum(curve[-6:]) / 6 < 0.6 * (sum(curve[:6]) / 6)

    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert GenerationConfig.from_pretrained(out).eos_token_id == tokenizer.eos_token_id
    text, n_new = generate(out)
    # every training reply opens with "Let me think step by step."; the random base never does
    assert n_new > 0 and text.startswith("Let me think"), text
    assert not generate(tiny_model_dir)[0].startswith("Let me think")

    card = (out / "README.md").read_text()
    # the base model and the dataset by name: their local paths say nothing on the Hub
    assert str(tiny_model_dir) not in card and str(sft_data) not in card
    assert f"`{tiny_model_dir.name}` with supervised fine-tuning on `{sft_data.name}`" in card
    assert "| learning_rate | 0.001 |" in card and "| loss_on_segments | ['model'] |" in card
    # TRL's template has no Hub id for a local base or an unpushed run: no "None" placeholders
    assert "None" not in card.split("## LeaP-T training")[0], card
    assert f"fine-tuned version of `{tiny_model_dir.name}`" in card
    assert f'model="{out}"' in card
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["kept"] == 16 and stats["trained_tokens"] > 0
    for file in out.rglob("*"):
        if file.is_file():
            assert FAKE_TOKEN.encode() not in file.read_bytes(), file

    # a finished run is never overwritten
    assert leapt_main(["train", *smoke_argv(tiny_model_dir, sft_data, out)]) == 2


def test_training_resumes_from_the_last_checkpoint(tiny_model_dir, sft_data, tmp_path):
    first = tmp_path / "first"
    steps = ["--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    assert train_main(smoke_argv(tiny_model_dir, sft_data, first, *steps)) == 0
    # a run that died right after its step-2 checkpoint
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copytree(first / "checkpoint-2", crashed / "checkpoint-2")
    # mark the checkpoint's history: a resumed run carries it on, a fresh run would not
    state_file = crashed / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"][0]["loss"] = 123.0
    state_file.write_text(json.dumps(state))

    assert train_main(smoke_argv(tiny_model_dir, sft_data, crashed, *steps)) == 0
    assert (crashed / "checkpoint-4").is_dir()
    # steps 1-2 come from the checkpoint, 3-4 were trained again and match the uninterrupted run
    resumed = losses(crashed)
    assert resumed[0] == 123.0
    assert resumed[1:] == pytest.approx(losses(first)[1:], abs=1e-4)


@pytest.mark.slow
def test_lora_adapter_is_saved_merged_and_reloads(tiny_model_dir, sft_data, tmp_path):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    lora = ["--use_peft", "true", "--lora_r", "8", "--lora_alpha", "16"]
    lora += ["--lora_target_modules", "q_proj", "v_proj", "--max_steps", "8"]
    lora += ["--gradient_checkpointing", "true"]  # as in the GPU recipes
    assert train_main(smoke_argv(tiny_model_dir, sft_data, out, *lora)) == 0

    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    merged_dir = out / "merged"
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    adapted = AutoPeftModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        merged_logits = merged(ids).logits
        assert torch.allclose(merged_logits, adapted(ids).logits, atol=1e-4)
        assert not torch.allclose(merged_logits, base(ids).logits, atol=1e-4)
    text, n_new = generate(merged_dir)
    assert n_new > 0
    assert "LoRA" in (out / "README.md").read_text()


@pytest.mark.slow
def test_wandb_offline_run_with_evaluation_writes_its_files(
    tiny_model_dir, sft_data, tmp_path, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "wb"
    argv = smoke_argv(tiny_model_dir, sft_data, out, "--max_steps", "3", "--report_to", "wandb")
    evaluation = ["--eval_strategy", "steps", "--eval_steps", "3", "--dataset_test_split", "train"]
    assert train_main([*argv, "--run_name", "leapt-wandb-test", *evaluation]) == 0
    history = json.loads((out / FINISHED_MARKER).read_text())["log_history"]
    assert any("eval_loss" in entry for entry in history)
    eval_stats = json.loads((out / "eval_data_stats.json").read_text())
    assert eval_stats["kept"] == 16 and "truncated_tokens" in eval_stats
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")), sorted(p.name for p in runs[0].iterdir())


def test_loss_masks_survive_trl_packing(tiny_model_dir, sft_data, tmp_path):
    from training.dataset import IGNORE_INDEX
    from training.recipe import parse_recipe
    from training.sft import build_trainer

    argv = smoke_argv(tiny_model_dir, sft_data, tmp_path / "p", "--packing", "true")
    trainer, _, stats = build_trainer(*parse_recipe(argv))
    packed = trainer.train_dataset
    assert len(packed) < stats.kept  # several paths share one packed row
    assert sum(len(ids) for ids in packed["input_ids"]) == stats.tokens
    trained = sum(label != IGNORE_INDEX for row in packed["labels"] for label in row)
    assert trained == stats.trained_tokens

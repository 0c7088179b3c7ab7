"""Training recipes: TRL's own dataclasses plus the few LeaP-T data options, parsed once.

A recipe YAML holds keys of three dataclasses, exactly like a TRL ``sft``
recipe: :class:`TrainScriptArguments` (TRL ``ScriptArguments`` + LeaP-T data
options), TRL ``SFTConfig`` (all ``TrainingArguments``) and TRL ``ModelConfig``
(model path, dtype, LoRA).  Everything that can be checked without a model is
checked here, so that a typo costs seconds, not a model load on every rank.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from trl import ModelConfig, ScriptArguments, SFTConfig

from inference.args import EMBEDDED_MODEL
from leapt.chat import read_chat_template
from leapt.config import (
    ConfigError,
    check_at_least,
    check_model_source,
    check_output_dir,
    parse_config,
)
from leapt.hub import check_push_target
from training.dataset import SEGMENT_KINDS
from training.launch_check import check_launch, step_batch
from training.launcher import LaunchArguments, resolve_accelerate_config


@dataclass
class TrainScriptArguments(ScriptArguments):
    """Dataset options of `leapt train` (TRL's ScriptArguments plus LeaP-T masking and length policy)."""

    overlong: str = field(
        default="truncate",
        metadata={
            "help": "What to do with examples longer than max_length: 'truncate' (keep the start) "
            "or 'drop'. Counts go to data_stats.json either way."
        },
    )
    loss_on: list[str] = field(
        default_factory=lambda: ["model"],
        metadata={
            "help": "Segment kinds that carry loss. LeaP-T trains on 'model' only: the student "
            "must not learn to invent peer summaries or engine cues."
        },
    )
    train_on_eos: bool = field(
        default=True,
        metadata={"help": "Also train the end-of-turn token after the last model segment."},
    )
    summary_open: str | None = field(
        default="auto",
        metadata={
            "help": "Opening summary tag to train where the engine wrote it after its trigger, so "
            "the student learns to open LeaP blocks itself (leap_t). 'auto': the tag of the "
            "protocol the dataset records (stats.json; '<summarize>' if none); a different tag "
            "than the recorded one is an error; null leaves it untrained."
        },
    )
    chat_template: str | None = field(
        default=None,
        metadata={
            "help": "chat template replacing the tokenizer's (Jinja text or a .jinja file), the "
            "one given to infer/eval/generate; saved with the trained tokenizer"
        },
    )
    system_prompt: str | None = field(
        default=None,
        metadata={
            "help": "system message every row's prompt is rendered with (replacing the row's "
            "own); default: the rows' messages as generate wrote them"
        },
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "If set, gradient_accumulation_steps is derived so that per-device batch x "
            "accumulation x world size equals it (paper: 16); an inexact split is an error."
        },
    )
    auto_resume: bool = field(
        default=True,
        metadata={"help": "Resume from the last checkpoint-* in output_dir when one exists."},
    )
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "With use_peft: also write the adapter merged into the base to output_dir/merged."
        },
    )


def apply_global_batch(script: TrainScriptArguments, args: SFTConfig, world_size: int) -> None:
    """Turn ``global_batch_size`` into the gradient accumulation steps that give it."""
    if script.global_batch_size is None:
        return
    per_step = step_batch(args, world_size)
    if script.global_batch_size % per_step:
        raise ConfigError(
            f"global_batch_size={script.global_batch_size} is not a multiple of "
            f"per_device_train_batch_size ({args.per_device_train_batch_size}) x world size ({world_size})"
        )
    args.gradient_accumulation_steps = script.global_batch_size // per_step


def validate(script: TrainScriptArguments, args: SFTConfig, model: ModelConfig) -> None:
    """Checks that need no model, tokenizer or dataset download."""
    if not model.model_name_or_path:
        raise ConfigError("model_name_or_path is required (a local checkpoint dir or Hub id)")
    read_chat_template(script.chat_template)
    if not script.dataset_name:
        raise ConfigError(
            "dataset_name is required (a `leapt generate` output dir, file or Hub id)"
        )
    if script.dataset_streaming:
        raise ConfigError(
            "dataset_streaming is not supported: masks and length counts need a full pass"
        )
    if script.overlong not in {"truncate", "drop"}:
        raise ConfigError(f"overlong must be 'truncate' or 'drop', got {script.overlong!r}")
    bad = sorted(set(script.loss_on) - set(SEGMENT_KINDS))
    if bad or not script.loss_on:
        raise ConfigError(f"loss_on must list kinds from {SEGMENT_KINDS}, got {script.loss_on}")
    if args.hub_token:
        raise ConfigError("hub_token must not be written in a recipe; export HF_TOKEN instead")
    if args.push_to_hub:
        if not args.hub_model_id:
            raise ConfigError("push_to_hub needs hub_model_id (the repo to publish to)")
        check_push_target(args.hub_model_id, "hub_model_id")
    check_output_dir(args.output_dir)
    check_at_least(
        args,
        1,
        "max_length",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
    )


def cpu_deepspeed_overrides(argv: Sequence[str], environ: dict[str, str]) -> list[str]:
    """Extra flags for a DeepSpeed launch on a machine without GPUs (CI, laptops).

    accelerate's ``use_cpu`` path bypasses DeepSpeed entirely, so a CPU run must
    take the accelerator path with the ``gloo`` backend instead; a recipe's
    ``use_cpu: true`` (the single-process smoke setting) is overridden.
    """
    import torch

    if (
        environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true"
        or torch.cuda.is_available()
    ):
        return []
    extra = []
    if "--use_cpu" not in argv:
        extra += ["--use_cpu", "false"]
    if "--ddp_backend" not in argv:
        extra += ["--ddp_backend", "gloo"]
    return extra


def parse_train_command(
    argv: Sequence[str] | None,
) -> tuple[TrainScriptArguments, SFTConfig, ModelConfig, LaunchArguments]:
    """Parse ``--config recipe.yaml`` + overrides (and launcher flags); run every model-free check."""
    # TrainingArguments rewrites ACCELERATE_MIXED_PRECISION while parsing; keep what the launcher set.
    launch_env = dict(os.environ)
    argv = list(sys.argv[1:] if argv is None else argv)
    argv += cpu_deepspeed_overrides(argv, launch_env)
    script, args, model, launch = parse_config(
        (TrainScriptArguments, SFTConfig, ModelConfig, LaunchArguments),
        argv,
        prog="leapt train",
        description="Supervised fine-tuning of a LeaP-T student on `leapt generate` data "
        "(TRL SFTTrainer; --num_processes/--accelerate_config start DeepSpeed ZeRO / DDP runs).",
    )
    validate(script, args, model)
    if model.model_name_or_path == EMBEDDED_MODEL:  # the packaged SmolLM2, converted once
        from inference.models import embedded_model_dir

        model.model_name_or_path = embedded_model_dir()
    world = launch.num_processes if launch.wanted and launch.num_processes else None
    apply_global_batch(script, args, world or int(os.environ.get("WORLD_SIZE", "1")))
    check_launch(args, launch_env)
    if launch.wanted:
        resolve_accelerate_config(launch.accelerate_config or "ddp")
    # last of the option checks, first before the data: a model that cannot be there
    check_model_source(model.model_name_or_path, "model_name_or_path")
    return script, args, model, launch


def parse_recipe(
    argv: Sequence[str] | None,
) -> tuple[TrainScriptArguments, SFTConfig, ModelConfig]:
    """The recipe of a training process (launcher flags dropped)."""
    return parse_train_command(argv)[:3]

"""The model card (README.md) written beside every finished checkpoint.

It names what a reader needs to trust or reproduce the model: base model,
dataset, the hyperparameters that matter, and what the data preparation kept
and dropped.  Values are picked field by field (never a dump of the config),
so a token or other secret can never end up in a published card.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

CARD_HYPERPARAMETERS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "optim",
    "weight_decay",
    "max_grad_norm",
    "max_length",
    "bf16",
    "packing",
    "padding_free",
    "gradient_checkpointing",
    "seed",
)
LORA_HYPERPARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")


def _plain(value: Any) -> Any:
    """Enum options (scheduler, optimizer) as the strings a recipe uses."""
    return value.value if isinstance(value, Enum) else value


def card_hyperparameters(script, args, model, world_size: int) -> dict[str, Any]:
    """The hyperparameters shown in the card and in leapt_training.json."""
    values: dict[str, Any] = {name: _plain(getattr(args, name)) for name in CARD_HYPERPARAMETERS}
    values["world_size"] = world_size
    values["global_batch_size"] = (
        args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size
    )
    values["loss_on_segments"] = list(script.loss_on)
    values["overlong"] = script.overlong
    if model.use_peft:
        values.update({name: getattr(model, name) for name in LORA_HYPERPARAMETERS})
    return values


def render_card(
    base_model: str,
    dataset: str,
    hyperparameters: dict[str, Any],
    data_stats: dict[str, int],
    metrics: dict[str, Any],
    adapter: bool,
) -> str:
    """Markdown model card with YAML front matter the Hub understands."""
    kind = "LoRA adapter for" if adapter else "Fine-tuned from"
    lines = [
        "---",
        f"base_model: {base_model}",
        f"datasets:\n- {dataset}",
        "library_name: " + ("peft" if adapter else "transformers"),
        "tags:\n- leapt\n- leap-t\n- sft\n- trl",
        "---",
        "",
        f"# LeaP-T student: {Path(base_model).name}",
        "",
        f"{kind} `{base_model}` with supervised fine-tuning on `{dataset}` "
        "(LeaP traces: the loss covers only the text the model wrote, never peer summaries "
        "or engine prompts), using `leapt train` (TRL SFTTrainer).",
        "",
        "Run it with peer exchange, e.g. `leapt infer --model <this repo> --method leap_t`.",
        "",
        "## Hyperparameters",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in hyperparameters.items()],
        "",
        "## Training data after preparation",
        "",
        "| count | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in data_stats.items()],
    ]
    if metrics:
        lines += ["", "## Final training metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    return "\n".join(lines) + "\n"

"""The LeaP fields of a student's model card, added to the card TRL writes.

``SFTTrainer.create_model_card`` (the card TRL writes at every checkpoint and
before ``push_to_hub``) knows the base model, trainer and library versions;
this module adds what a reader needs to trust or reproduce a LeaP-T student:
how it was trained on LeaP traces, the hyperparameters that matter, what the
data preparation kept and dropped, and how to run it with peer exchange.
`leapt publish` uses the same sections.  Values are picked field by field
(never a dump of the config), so a token or other secret never reaches a card.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from leapt.markdown import markdown_table
from leapt.redact import is_hub_id, public_name
from training.launch_check import global_batch

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
#: tags every LeaP-T student carries on the Hub
LEAP_TAGS = ("leapt", "leap-t", "sft")


@dataclass
class LeapCardFields:
    """What a LeaP-T card says beyond TRL's card; also the content of leapt_training.json."""

    base_model: str
    dataset: str
    hyperparameters: dict[str, Any]
    data_stats: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    #: "full" weights, a LoRA "adapter", or a LoRA "merged" into the base
    kind: str = "full"


def _plain(value: Any) -> Any:
    """Enum options (scheduler, optimizer) as the strings a recipe uses."""
    return value.value if isinstance(value, Enum) else value


def card_hyperparameters(
    script, args, model, world_size: int, distributed: Any = "NO"
) -> dict[str, Any]:
    """The hyperparameters shown in the card and in leapt_training.json.

    ``distributed`` is how the ranks shared the work (accelerate's
    ``DistributedType``: ``NO``, ``MULTI_CPU``, ``MULTI_GPU``, ``DEEPSPEED``, ``FSDP``).
    """
    values: dict[str, Any] = {name: _plain(getattr(args, name)) for name in CARD_HYPERPARAMETERS}
    values["world_size"] = world_size
    values["distributed"] = _plain(distributed)
    values["global_batch_size"] = global_batch(args, world_size)
    values["loss_on_segments"] = list(script.loss_on)
    values["overlong"] = script.overlong
    if model.use_peft:
        values.update({name: getattr(model, name) for name in LORA_HYPERPARAMETERS})
    return values


def hub_id_or_none(name: str | None) -> str | None:
    """``name`` when it names a Hub repo, None for a local path or a URL (card metadata links it)."""
    return name if is_hub_id(name) else None


def _table(header: str, rows: Iterable[tuple[str, Any]]) -> list[str]:
    return markdown_table((header, "value"), rows)


def usage_snippet(model_ref: str) -> list[str]:
    """How to run the student with peer exchange (it learned to open LeaP blocks itself)."""
    return [
        "```bash",
        "# with the leapt project installed (make setup)",
        f"leapt infer --model {model_ref} --method leap_t --n 4 --backend vllm \\",
        "  --source builtin:easy --output_dir outputs/infer/leap_t",
        "```",
    ]


def leap_sections(fields: LeapCardFields, model_ref: str) -> str:
    """Markdown sections describing LeaP-T training; ``model_ref`` is the repo id or folder."""
    intro = {
        "full": "Fine-tuned from",
        "adapter": "LoRA adapter for",
        "merged": "Merged LoRA of",
    }[fields.kind]
    lines = [
        "## LeaP-T training",
        "",
        f"{intro} `{public_name(fields.base_model)}` with supervised fine-tuning on "
        f"`{public_name(fields.dataset)}` "
        "(LeaP traces: the loss covers only the text the model wrote, never peer summaries "
        "or engine cues), using `leapt train` (TRL SFTTrainer).",
        "",
        "### Run it with peer exchange",
        "",
        *usage_snippet(model_ref),
        "",
        "### Hyperparameters",
        "",
        *_table("key", fields.hyperparameters.items()),
        "",
        "### Training data after preparation",
        "",
        *_table("count", fields.data_stats.items()),
    ]
    if fields.metrics:
        lines += ["", "### Final training metrics", "", *_table("metric", fields.metrics.items())]
    return "\n".join(lines) + "\n"


def extend_card(card, fields: LeapCardFields, model_ref: str):
    """Add LeaP tags, Hub links and sections to a ``huggingface_hub.ModelCard`` (in place)."""
    data = card.data
    data.tags = list(dict.fromkeys([*(data.tags or []), *LEAP_TAGS]))
    if fields.kind == "adapter":
        data.library_name = "peft"
    data.base_model = hub_id_or_none(fields.base_model) or data.base_model
    dataset = hub_id_or_none(fields.dataset)
    if dataset:
        data.datasets = [dataset]
    text = _true_local_references(card.text, fields.base_model, model_ref)
    card.text = text.rstrip("\n") + "\n\n" + leap_sections(fields, model_ref)
    return card


#: the text TRL's card template renders for a value it was given as None (see below)
_TRL_NO_BASE = "[None](https://huggingface.co/None)"
_TRL_NO_REPO = 'model="None"'


def _true_local_references(text: str, base_model: str, model_ref: str) -> str:
    """The one workaround for TRL's card: its ``None`` placeholders replaced by what is true.

    TRL (checked with 1.16) offers no argument that avoids them:
    ``BaseTrainer.create_model_card`` passes ``base_model=None`` for a base that is a local
    folder and ``hub_model_id=self.hub_model_id`` (None unless the run pushes), and its
    template ``trl/templates/lm_model_card.md`` renders both unconditionally, as
    ``[{{ base_model }}](https://huggingface.co/{{ base_model }})`` and
    ``model="{{ hub_model_id }}"``.  So the card of a local base would link to
    ``huggingface.co/None`` and its quick start would load ``model="None"``.  The base
    becomes its folder name (the full local path says nothing to a reader elsewhere) and
    the quick start loads ``model_ref``.  A TRL whose template changes makes this a no-op,
    and ``tests/test_training_sft.py`` then fails on the "None" left in the card.
    """
    if hub_id_or_none(base_model) is None and base_model:
        text = text.replace(_TRL_NO_BASE, f"`{public_name(base_model)}` (a local checkpoint)")
    return text.replace(_TRL_NO_REPO, f"model={json.dumps(model_ref)}")

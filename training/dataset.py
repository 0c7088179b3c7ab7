"""Turn `leapt generate` rows into token ids and loss labels for SFT.

A row holds ``messages`` (system?/user prompt and the assistant's full text) and
``segments`` (who wrote each piece: ``prompt``, ``model`` or ``peer``;
``segments[0]`` is the user turn).  A LeaP-T student must learn to reason,
summarize and react to peers, but never to invent its peers' words or the
engine's cues, so only ``model`` segments carry loss.

Tokenization mirrors inference rather than re-tokenizing one long string: the
prompt is rendered by the chat template with the generation prompt (exactly
what the engine sends), and each later segment is encoded on its own and
appended, as the engine appends sampled tokens and encoded peer blocks.  This
keeps every token inside one segment, so the mask is exact, and it avoids chat
templates (such as R1-Distill's) that strip the reasoning from assistant turns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leapt.config import ConfigError

REQUIRED_COLUMNS = ("messages", "segments")
SEGMENT_KINDS = ("prompt", "model", "peer")
IGNORE_INDEX = -100
_LOCAL_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}


@dataclass
class PrepareStats:
    """What happened to each example on its way to the trainer (written to data_stats.json)."""

    examples: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_overlong: int = 0
    dropped_nothing_to_train: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    #: rows whose prompt segment is neither the user text nor the student's rendering of it
    #: (teacher and student chat templates differ); the student's rendering is used
    prompt_differs: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _local_data_files(path: Path) -> tuple[str, list[str]]:
    """Pick the loader and the files of a local dataset directory or single file.

    Parquet wins over jsonl over json, so a `leapt generate` folder (parquet
    under data/, plus stats.json and raw trace jsonl) or a folder of its shards
    loads its rows and nothing else.
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    by_suffix: dict[str, list[str]] = {}
    for file in files:
        if not file.name.startswith("."):
            by_suffix.setdefault(file.suffix, []).append(str(file))
    for suffix, fmt in _LOCAL_FORMATS.items():
        if by_suffix.get(suffix):
            return fmt, by_suffix[suffix]
    raise ConfigError(f"dataset {path} holds no .parquet/.jsonl/.json files")


def load_sft_dataset(name_or_path: str, split: str = "train", config_name: str | None = None):
    """Load a dataset written by `leapt generate` (local dir/file) or a Hub dataset id."""
    from datasets import load_dataset

    path = Path(name_or_path).expanduser()
    try:
        if path.exists():
            fmt, data_files = _local_data_files(path)
            dataset = load_dataset(fmt, data_files={split: data_files}, split=split)
        else:
            dataset = load_dataset(name_or_path, config_name, split=split)
    except ConfigError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the name and reason
        raise ConfigError(f"cannot load dataset '{name_or_path}' (split {split}): {exc}") from exc
    validate_columns(dataset.column_names, name_or_path)
    return dataset


def validate_columns(columns: Iterable[str], source: str) -> None:
    """Fail fast, naming the missing column, before any tokenizer or model is loaded."""
    present = set(columns)
    for column in REQUIRED_COLUMNS:
        if column not in present:
            raise ConfigError(
                f"dataset '{source}' has no '{column}' column (found: {sorted(present)}); "
                "expected the output of `leapt generate` with 'messages' and 'segments'"
            )


def _check_row(row: dict[str, Any], index: int) -> tuple[list[dict], list[dict]]:
    """Return (prompt messages, segments) of one row, or raise naming the row."""
    messages, segments = row["messages"], row["segments"]
    if isinstance(messages, str):
        messages = json.loads(messages)
    if isinstance(segments, str):
        segments = json.loads(segments)
    if not messages or messages[-1].get("role") != "assistant":
        raise ConfigError(f"row {index}: the last message must be the assistant's turn")
    if not segments or segments[0].get("kind") != "prompt":
        raise ConfigError(f"row {index}: segments[0] must be the prompt (kind 'prompt')")
    for seg in segments:
        if seg.get("kind") not in SEGMENT_KINDS:
            raise ConfigError(
                f"row {index}: unknown segment kind {seg.get('kind')!r} (expected {SEGMENT_KINDS})"
            )
    if "".join(s["text"] for s in segments[1:]) != messages[-1]["content"]:
        raise ConfigError(
            f"row {index}: the assistant message is not the concatenation of segments[1:]"
        )
    return messages[:-1], segments


def render_prompt_text(tokenizer, prompt_messages: Sequence[dict]) -> str:
    """The prompt as the engine sends it to the student: chat template + generation prompt."""
    return tokenizer.apply_chat_template(
        list(prompt_messages), add_generation_prompt=True, tokenize=False
    )


def render_prompt_ids(tokenizer, prompt_messages: Sequence[dict]) -> list[int]:
    """Token ids of :func:`render_prompt_text`."""
    return tokenizer.encode(
        render_prompt_text(tokenizer, prompt_messages), add_special_tokens=False
    )


def tokenize_example(
    tokenizer,
    prompt_messages: Sequence[dict],
    segments: Sequence[dict],
    loss_on: Sequence[str] = ("model",),
    train_on_eos: bool = True,
    summary_open: str | None = "<summarize>",
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for one path; labels are -100 outside ``loss_on`` kinds.

    ``prompt_messages`` are the system?/user messages (without the assistant
    turn, whose text is ``segments[1:]``).

    The prompt (chat-template scaffolding included) is never trained.  With
    ``train_on_eos`` the end-of-turn token after a final ``model`` segment is
    trained too: the student must learn to stop where the teacher stopped.

    With ``summary_open`` set, that tag is trained where an untrained segment
    (the engine's summary trigger) ends with it: a LeaP-T student must learn
    to open a LeaP block on its own, which is what ``leap_t`` inference reacts
    to, while the trigger sentence itself stays untrained.
    """
    input_ids = render_prompt_ids(tokenizer, prompt_messages)
    labels = [IGNORE_INDEX] * len(input_ids)
    for seg in segments[1:]:
        text, trained = seg["text"], seg["kind"] in loss_on
        pieces = [(text, trained)]
        if not trained and summary_open and text.endswith(summary_open):
            pieces = [(text[: -len(summary_open)], False), (summary_open, True)]
        for piece, train in pieces:
            ids = tokenizer.encode(piece, add_special_tokens=False)
            input_ids += ids
            labels += ids if train else [IGNORE_INDEX] * len(ids)
    if tokenizer.eos_token_id is not None:
        last_trained = len(segments) > 1 and segments[-1]["kind"] in loss_on
        input_ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id if train_on_eos and last_trained else IGNORE_INDEX)
    return {"input_ids": input_ids, "labels": labels}


def prepare_dataset(
    dataset,
    tokenizer,
    max_length: int | None,
    overlong: str = "truncate",
    loss_on: Sequence[str] = ("model",),
    train_on_eos: bool = True,
    summary_open: str | None = "<summarize>",
):
    """Validate every row, tokenize with exact loss masks, and apply the length policy.

    Returns ``(dataset with input_ids/labels only, PrepareStats)``.  Over-long
    examples are cut at ``max_length`` (``truncate``) or removed (``drop``);
    examples with no trained token left are removed and counted.  Raises
    :class:`ConfigError` when nothing trainable remains.
    """
    from datasets import Dataset

    if overlong not in {"truncate", "drop"}:
        raise ConfigError(f"overlong must be 'truncate' or 'drop', got {overlong!r}")
    stats = PrepareStats()
    rows: list[dict[str, list[int]]] = []
    for index, row in enumerate(dataset):
        stats.examples += 1
        prompt_messages, segments = _check_row(row, index)
        if segments[0]["text"] not in (
            prompt_messages[-1]["content"],
            render_prompt_text(tokenizer, prompt_messages),
        ):
            stats.prompt_differs += 1
        example = tokenize_example(
            tokenizer, prompt_messages, segments, loss_on, train_on_eos, summary_open
        )
        if max_length is not None and len(example["input_ids"]) > max_length:
            if overlong == "drop":
                stats.dropped_overlong += 1
                continue
            stats.truncated += 1
            example = {k: v[:max_length] for k, v in example.items()}
        trained = sum(label != IGNORE_INDEX for label in example["labels"])
        if trained == 0:
            stats.dropped_nothing_to_train += 1
            continue
        stats.kept += 1
        stats.tokens += len(example["input_ids"])
        stats.trained_tokens += trained
        rows.append(example)
    if not rows:
        raise ConfigError(
            f"no trainable example left out of {stats.examples} "
            f"(over-long dropped: {stats.dropped_overlong}, "
            f"nothing to train on: {stats.dropped_nothing_to_train})"
        )
    return Dataset.from_list(rows), stats

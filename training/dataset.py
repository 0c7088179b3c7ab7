"""Turn `leapt generate` rows into token ids and loss labels for SFT.

A row holds ``messages`` (system?/user prompt and the assistant's full text) and
``segments`` (who wrote each piece: ``prompt``, ``model`` or ``peer``;
``segments[0]`` is the user turn).  A LeaP-T student must learn to reason,
summarize and react to peers, but never to invent its peers' words or the
engine's cues, so only ``model`` segments carry loss.

Tokenization mirrors inference rather than re-tokenizing one long string: the
prompt is rendered by the chat template with the generation prompt (exactly
what the engine sends), and each later segment is encoded whole on its own and
appended, as the engine appends sampled tokens and encodes each piece of its
own text (trigger + ``<summarize>`` included) as one string.  This keeps every
token inside one segment, so the mask is exact, and it avoids chat templates
(such as R1-Distill's) that strip the reasoning from assistant turns.

The summary tag to train is the one of the protocol the data was made with:
``leapt generate`` records the protocol in ``stats.json``, and
:func:`resolve_summary_open` reads it from there (or refuses a recipe that
names another tag).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inference.trace import NATURAL_END_FINISHES, SEGMENT_KINDS
from leapt.chat import with_system_prompt
from leapt.config import ConfigError
from leapt.log import quiet_datasets_progress

REQUIRED_COLUMNS = ("messages", "segments")
#: recipe value of ``summary_open`` meaning "the tag of the protocol the dataset records"
AUTO = "auto"
#: the protocol tag assumed for datasets that record none (made before protocols were recorded)
DEFAULT_SUMMARY_OPEN = "<summarize>"
STATS_FILE = "stats.json"
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
    #: tokens cut off by truncation at max_length, and how many of them carried loss
    truncated_tokens: int = 0
    truncated_trained_tokens: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    #: kept rows whose end-of-turn token is trained, and why it was not in the others
    eos_trained: int = 0
    eos_untrained_no_natural_end: int = 0
    eos_untrained_after_engine_text: int = 0
    #: rows whose prompt segment is neither the user text nor the student's rendering of it
    #: (teacher and student chat templates differ); the student's rendering is used
    prompt_differs: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _committed_files(folder: Path) -> list[str]:
    """The data files named by the ``stats.json`` files under ``folder`` (none: not leapt's)."""
    files = []
    for stats_file in sorted(folder.rglob(STATS_FILE)):
        try:
            data_file = json.loads(stats_file.read_text(encoding="utf-8")).get("data_file")
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"dataset file {stats_file} is not readable JSON: {exc}") from exc
        if data_file:
            if not (stats_file.parent / data_file).is_file():
                raise ConfigError(f"{stats_file} names {data_file}, which is missing")
            files.append(str(stats_file.parent / data_file))
    return files


def local_data_files(path: Path) -> tuple[str, list[str]]:
    """Pick the loader and the files of a local dataset directory or single file.

    A `leapt generate` folder (or a folder of its shards) loads the parquet
    file each ``stats.json`` names (its ``data_file``: what that folder's last
    finished write committed; an unfinished rewrite's file beside it is never
    read).  Otherwise parquet wins over jsonl over json.
    """
    committed = [] if path.is_file() else _committed_files(path)
    if committed:
        return "parquet", committed
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
            fmt, data_files = local_data_files(path)
            with quiet_datasets_progress():  # a bar per local file would precede any error message
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


def _encode_segment(
    tokenizer, kind: str, text: str, trained: bool, summary_open: str | None
) -> tuple[list[int], list[int]]:
    """Ids and labels of one segment, encoded whole as the engine encodes it.

    In an untrained ``prompt`` segment (engine text: the summary trigger,
    possibly followed by the first words of the summary the engine prefills),
    the tokens overlapping the ``summary_open`` that opens the block are trained.  They are found by
    character offsets, not by encoding the tag apart: the engine encodes
    trigger + tag (+ opening) as one string, and a BPE merges the space before
    ``<`` into one token (`` <`` with R1-Distill), which is the form the
    student must learn to write.
    """
    tag = summary_open if kind == "prompt" and not trained else None
    start = text.rfind(tag) if tag else -1
    # only a tag that opens a block: the last one, with no closing tag after it (the
    # announced prompt's pre-fill names both tags as an example, which is no LeaP block)
    if start < 0 or "</" + tag[1:] in text[start:]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        return ids, (list(ids) if trained else [IGNORE_INDEX] * len(ids))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    spans = [(start, start + len(tag))]
    labels = [
        token
        if any(a < tag_end and b > tag_start for tag_start, tag_end in spans)
        else IGNORE_INDEX
        for token, (a, b) in zip(ids, offsets, strict=True)
    ]
    return ids, labels


def eos_exclusion(segments: Sequence[dict], finish: str | None, loss_on: Sequence[str]):
    """Why the end-of-turn token of this path must not be trained, or None if it may.

    Only a path that stopped by itself (finish ``eos``/``think_end``) teaches
    where to stop; one cut by the budget or forced to answer does not, and
    neither does an EOS written right after engine text (e.g. straight after
    the reflection cue: the last model segment is empty), which would teach
    the student to quit when the peers speak.
    """
    if finish not in NATURAL_END_FINISHES:
        return "no_natural_end"
    last = segments[-1] if len(segments) > 1 else None
    if last is None or last["kind"] not in loss_on or not last["text"].strip():
        return "after_engine_text"
    return None


def tokenize_example(
    tokenizer,
    prompt_messages: Sequence[dict],
    segments: Sequence[dict],
    loss_on: Sequence[str] = ("model",),
    train_on_eos: bool = True,
    summary_open: str | None = "<summarize>",
    finish: str | None = None,
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for one path; labels are -100 outside ``loss_on`` kinds.

    ``prompt_messages`` are the system?/user messages (without the assistant
    turn, whose text is ``segments[1:]``).

    The prompt (chat-template scaffolding included) is never trained.  With
    ``train_on_eos`` the end-of-turn token is trained when the path ended
    naturally (``finish``, see :func:`eos_exclusion`): the student must learn
    to stop where the teacher stopped by itself.

    With ``summary_open`` set, that tag is trained where the engine wrote it
    (inside a prompt segment, see :func:`_encode_segment`): a LeaP-T student
    must learn to open a LeaP block on its own, which is what ``leap_t``
    inference reacts to, while the trigger sentence itself stays untrained.
    """
    input_ids = render_prompt_ids(tokenizer, prompt_messages)
    labels = [IGNORE_INDEX] * len(input_ids)
    for seg in segments[1:]:
        ids, seg_labels = _encode_segment(
            tokenizer, seg["kind"], seg["text"], seg["kind"] in loss_on, summary_open
        )
        input_ids += ids
        labels += seg_labels
    if tokenizer.eos_token_id is not None:
        trained = train_on_eos and eos_exclusion(segments, finish, loss_on) is None
        input_ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id if trained else IGNORE_INDEX)
    return {"input_ids": input_ids, "labels": labels}


def prepare_dataset(
    dataset,
    tokenizer,
    max_length: int | None,
    overlong: str = "truncate",
    loss_on: Sequence[str] = ("model",),
    train_on_eos: bool = True,
    summary_open: str | None = "<summarize>",
    system_prompt: str | None = None,
):
    """Validate every row, tokenize with exact loss masks, and apply the length policy.

    ``system_prompt`` replaces the rows' system message (:func:`leapt.chat.with_system_prompt`).

    Returns ``(dataset with input_ids/labels only, PrepareStats)``.  Over-long
    examples are cut at ``max_length`` (``truncate``, counting the tokens and
    trained tokens lost) or removed (``drop``); a row's ``finish`` column
    decides whether its end-of-turn token is trained (absent: it is not);
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
        prompt_messages = with_system_prompt(prompt_messages, system_prompt)
        if segments[0]["text"] not in (
            prompt_messages[-1]["content"],
            render_prompt_text(tokenizer, prompt_messages),
        ):
            stats.prompt_differs += 1
        finish = row.get("finish")
        example = tokenize_example(
            tokenizer, prompt_messages, segments, loss_on, train_on_eos, summary_open, finish
        )
        if max_length is not None and len(example["input_ids"]) > max_length:
            if overlong == "drop":
                stats.dropped_overlong += 1
                continue
            cut = example["labels"][max_length:]
            stats.truncated += 1
            stats.truncated_tokens += len(cut)
            stats.truncated_trained_tokens += sum(label != IGNORE_INDEX for label in cut)
            example = {k: v[:max_length] for k, v in example.items()}
        trained = sum(label != IGNORE_INDEX for label in example["labels"])
        if trained == 0:
            stats.dropped_nothing_to_train += 1
            continue
        stats.kept += 1
        if train_on_eos and tokenizer.eos_token_id is not None:
            reason = eos_exclusion(segments, finish, loss_on)
            if reason is None:
                stats.eos_trained += 1
            elif reason == "no_natural_end":
                stats.eos_untrained_no_natural_end += 1
            else:
                stats.eos_untrained_after_engine_text += 1
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


def recorded_protocol(name_or_path: str) -> dict | None:
    """The protocol recorded in a `leapt generate` dataset's ``stats.json``, if any.

    Looks beside a local dataset (its folder, or the folders above a data
    file) and, for a Hub id, in the dataset repo (``leapt generate`` uploads
    ``stats.json``).  None when nothing is recorded.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        candidates = [path, *path.parents][:3] if path.is_file() else [path]
        for folder in candidates:
            stats_file = folder / STATS_FILE
            if stats_file.is_file():
                return json.loads(stats_file.read_text(encoding="utf-8")).get("protocol")
        return None
    try:
        from huggingface_hub import hf_hub_download

        local = hf_hub_download(name_or_path, STATS_FILE, repo_type="dataset")
    except Exception:  # no such file, no network: nothing recorded that we can see
        return None
    return json.loads(Path(local).read_text(encoding="utf-8")).get("protocol")


def resolve_summary_open(requested: str | None, recorded: dict | None, source: str):
    """The summary tag to train, tied to the protocol the dataset was made with.

    ``auto`` takes the recorded tag (``<summarize>`` when the dataset records
    no protocol); ``None`` trains no tag; an explicit tag that differs from
    the recorded one is refused, since the student would learn to open blocks
    with a tag the data (and the ``leap_t`` engine of that protocol) never uses.
    """
    recorded_tag = (recorded or {}).get("summary_open")
    if requested == AUTO:
        return recorded_tag or DEFAULT_SUMMARY_OPEN
    if requested is not None and recorded_tag and requested != recorded_tag:
        raise ConfigError(
            f"summary_open={requested!r} but dataset '{source}' was made with the protocol tag "
            f"{recorded_tag!r} (its stats.json); set summary_open: auto (or null to train no tag)"
        )
    return requested

"""`leapt publish`: a trained and evaluated checkpoint, or a generated dataset, becomes a Hub repo.

``leapt publish MODEL_DIR --repo_id ORG/NAME [--eval_dir DIR ...]`` sends the
weights, tokenizer and generation config with a card whose ``model-index``
holds the Pass@1/Cons@N that `leapt eval` measured for this checkpoint (from
the folders given, else any ``results.json`` under MODEL_DIR) and whose body
holds the training recipe from ``leapt_training.json``.  A checkpoint without
results is published with a card saying so, never with invented numbers.
The same results go to the Hub's leaderboard entries, ``.eval_results/<benchmark>.yaml``.
``leapt publish --dataset DIR --repo_id ...`` does the same for a `leapt
generate` dataset, and ``leapt publish --details RUN_DIR --repo_id ORG/details-NAME``
publishes a `leapt eval` run's traces as a dataset (one row per path).
``--dry_run`` prints the file list and the card only.  Cards and eval results
are checked with huggingface_hub's own parsers, and everything sent or shown
is scanned for credentials, before anything is sent.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leapt.config import ConfigError, parse_config

#: the only model files ever sent (top level of MODEL_DIR); pickled weights are not among them
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)
#: remote files an upload replaces (shards or results of an earlier upload must not linger)
WEIGHT_PATTERNS = ("*.safetensors", "model.safetensors.index.json")
EVAL_RESULTS_PATTERN = ".eval_results/*.yaml"
TRAINING_RECORD = "leapt_training.json"  # training.sft.FINISHED_MARKER, without importing torch
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


@dataclass
class PublishArguments:
    """What to publish and where."""

    model_dir: str | None = field(
        default=None,
        metadata={"help": "checkpoint folder", "metavar": "MODEL_DIR"},
    )
    dataset: str | None = field(
        default=None, metadata={"help": "a `leapt generate` dataset folder, instead of a model"}
    )
    details: str | None = field(
        default=None,
        metadata={
            "help": "a `leapt eval` output folder: publish its traces as a details dataset "
            "(one row per path), instead of a model"
        },
    )
    repo_id: str | None = field(default=None, metadata={"help": "Hub repository, ORG/NAME"})
    private: bool = field(default=False, metadata={"help": "create the repository as private"})
    dry_run: bool = field(
        default=False, metadata={"help": "print the file list and the card; upload nothing"}
    )
    eval_dir: list[str] | None = field(
        default=None,
        metadata={
            "help": "`leapt eval` output folders (or results.json files) measured on this "
            "checkpoint; default: every results.json under MODEL_DIR"
        },
    )
    license: str = field(
        default="other",
        metadata={"help": "Hub license id of the model (match the base model's, e.g. mit)"},
    )

    def __post_init__(self) -> None:
        given = [f for f in (self.model_dir, self.dataset, self.details) if f is not None]
        if len(given) != 1:
            raise ConfigError("give one of MODEL_DIR, --dataset DIR or --details RUN_DIR")
        if not self.repo_id or not _REPO_ID.fullmatch(self.repo_id):
            raise ConfigError(f"--repo_id must look like ORG/NAME, got {self.repo_id!r}")
        folder = Path(given[0])
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder")
        if self.model_dir is None and self.eval_dir:
            raise ConfigError("--eval_dir applies to models, not to --dataset or --details")


def model_files(folder: Path) -> list[str]:
    """The allow-listed files of a checkpoint folder; weights must be among them."""
    files = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and any(fnmatch.fnmatch(p.name, pattern) for pattern in MODEL_FILES)
    )
    if not any(name.endswith(".safetensors") for name in files):
        raise ConfigError(f"{folder} holds no model weights (*.safetensors): nothing to publish")
    if "config.json" not in files and "adapter_config.json" not in files:
        raise ConfigError(f"{folder} has no config.json or adapter_config.json")
    return files


def training_record(folder: Path) -> dict | None:
    """leapt_training.json of the checkpoint (or of its parent, for merged/ and checkpoint-*)."""
    for candidate in (folder / TRAINING_RECORD, folder.parent / TRAINING_RECORD):
        if candidate.is_file():
            try:
                record = json.loads(candidate.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{candidate} is not valid JSON: {exc}") from exc
            if candidate.parent != folder:  # the run's final metrics are not this folder's
                record["metrics"] = {}
                record["kind"] = "merged" if folder.name == "merged" else record.get("kind")
            return record
    return None


def _same_model(measured: str, folder: Path, repo_id: str) -> bool:
    """Whether results recorded for model ``measured`` were measured on ``folder`` (or ``repo_id``).

    `leapt eval` records ``--model`` as typed, so a relative path is relative to
    the directory eval ran in, which is recorded nowhere and is often not the
    directory publish runs in.  Such a path names ``folder`` exactly when that
    directory is one of the folder's ancestors, i.e. when the folder's
    resolved path ends with it.  Only a path that climbs (``..``) or is ``.``
    says too little for that, and is read against the current directory.
    """
    if measured == repo_id:
        return True
    target = folder.resolve()
    path = Path(measured)
    parts = Path(os.path.normpath(measured)).parts
    if path.is_absolute() or parts in ((), (".",)) or ".." in parts:
        return path.resolve() == target
    return target.parts[-len(parts) :] == parts


def measured_runs(folder: Path, eval_dirs: Sequence[str] | None, repo_id: str) -> list:
    """The eval runs measured on this checkpoint; results of another model are an error."""
    from eval.model_index import find_results, read_runs

    paths = find_results([Path(d) for d in eval_dirs] if eval_dirs else [folder])
    if eval_dirs and not paths:
        raise ConfigError(f"no results.json under {', '.join(eval_dirs)} (key 'eval_dir')")
    runs = [run for path in paths for run in read_runs(path)]
    for run in runs:
        if not _same_model(run.model, folder, repo_id):
            raise ConfigError(
                f"{run.source} was measured on {run.model}, not on {folder} or {repo_id}; "
                "pass the eval folder of this checkpoint (key 'eval_dir')"
            )
    return runs


def model_card(folder: Path, args: PublishArguments, record: dict | None, runs: list) -> str:
    """The published card: Hub metadata with model-index, usage, results, training recipe."""
    from huggingface_hub import ModelCard, ModelCardData

    from eval.model_index import eval_results, results_table
    from leapt.redact import public_name
    from training.model_card import (
        LEAP_TAGS,
        LeapCardFields,
        hub_id_or_none,
        leap_sections,
        usage_snippet,
    )

    name = args.repo_id.split("/")[-1]
    fields = None
    if record is not None:
        fields = LeapCardFields(
            base_model=record["base_model"],
            dataset=record["dataset"],
            hyperparameters=record["hyperparameters"],
            data_stats=record["data_stats"],
            metrics=record.get("metrics") or {},
            kind=record.get("kind") or "full",
        )
    adapter = (folder / "adapter_config.json").is_file()
    dataset = hub_id_or_none(fields.dataset) if fields else None
    data = ModelCardData(
        model_name=name,
        base_model=hub_id_or_none(fields.base_model) if fields else None,
        datasets=[dataset] if dataset else None,
        license=args.license,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=[*LEAP_TAGS, "leap", "reasoning"],
        eval_results=eval_results(runs) or None,
    )
    lines = [f"# {name}", ""]
    if fields:
        lines += [
            f"A LeaP-T student: `{public_name(fields.base_model)}` fine-tuned on LeaP traces "
            "with `leapt train`, so that parallel reasoning paths summarize and read their "
            "peers' summaries (Learning from Peers) without being prompted to.",
            "",
        ]
    lines += ["## Evaluation", ""]
    if runs:
        lines += [
            "Measured with `leapt eval` on this checkpoint (Pass@1: mean correctness of the N "
            "paths; Cons@N: majority vote over their answers; budget: generated tokens per path).",
            "",
            results_table(runs),
            "",
        ]
    else:
        lines += [
            "**Not evaluated.** No `leapt eval` results were found for this checkpoint, so this "
            "card reports no scores. Evaluate it with "
            f"`leapt eval --model {args.repo_id} --output_dir outputs/eval/{name}` and publish "
            "again with `--eval_dir outputs/eval/" + name + "`.",
            "",
        ]
    if fields:
        lines.append(leap_sections(fields, args.repo_id))
    else:
        lines += [
            "## Run it with peer exchange",
            "",
            *usage_snippet(args.repo_id),
            "",
            f"No training recipe was recorded ({TRAINING_RECORD} is missing).",
            "",
        ]
    card = ModelCard.from_template(
        data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}", body="\n".join(lines)
    )
    return str(card)


def validate_model_card(text: str, expected_results: int) -> None:
    """Parse the card as the Hub does; its model-index must hold every result."""
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    card = ModelCard(text, ignore_metadata_errors=False)
    index = card.data.to_dict().get("model-index")
    parsed = model_index_to_eval_results(index)[1] if index else []
    if len(parsed) != expected_results:
        raise ConfigError(
            f"the card's model-index holds {len(parsed)} results, expected {expected_results}"
        )


def validate_eval_result_files(files: dict[str, str], expected_results: int) -> None:
    """Parse the ``.eval_results`` files as the Hub does; together they must hold every entry."""
    import yaml
    from huggingface_hub import parse_eval_result_entries

    parsed = [e for text in files.values() for e in parse_eval_result_entries(yaml.safe_load(text))]
    if len(parsed) != expected_results:
        raise ConfigError(
            f"the .eval_results files hold {len(parsed)} entries, expected {expected_results}"
        )


def _show(
    folder: Path, files: Sequence[str], generated: dict[str, str], repo_id: str, repo_type: str
) -> None:
    """A dry run's listing and card, once everything in them passed the credential check."""
    from leapt.hub import check_publishable, hub_token

    check_publishable(folder, files, hub_token(), generated)
    extra = [name for name in generated if name != "README.md"]
    print(f"dry run: would publish to the Hub {repo_type} {repo_id}:")
    print("\n".join(f"  {name}" for name in [*files, *extra, "README.md (the card below)"]))
    print("\n" + generated["README.md"], end="")


def publish_model(args: PublishArguments) -> str | None:
    from eval.model_index import eval_result_entries, eval_result_files, eval_results
    from leapt.hub import upload

    folder = Path(args.model_dir)
    files = model_files(folder)
    runs = measured_runs(folder, args.eval_dir, args.repo_id)
    card = model_card(folder, args, training_record(folder), runs)
    validate_model_card(card, len(eval_results(runs)))
    results = eval_result_files(runs)
    validate_eval_result_files(results, len(eval_result_entries(runs)))
    generated = {"README.md": card, **results}
    if args.dry_run:
        _show(folder, files, generated, args.repo_id, "model")
        return None
    url = upload(
        folder,
        args.repo_id,
        repo_type="model",
        files=files,
        generated=generated,
        replace=(*WEIGHT_PATTERNS, EVAL_RESULTS_PATTERN),
        private=args.private,
        commit_message="leapt publish: model, tokenizer, card and eval results",
    )
    print(f"published {folder} to {url}")
    return url


def publish_dataset(args: PublishArguments) -> str | None:
    from huggingface_hub import DatasetCard

    from data_gen.hub import dataset_card, dataset_files, push_dataset

    folder = Path(args.dataset)
    files = dataset_files(folder)
    card = dataset_card(folder, args.repo_id)
    DatasetCard(card, ignore_metadata_errors=False)
    if args.dry_run:
        _show(folder, files, {"README.md": card}, args.repo_id, "dataset")
        return None
    return push_dataset(folder, args.repo_id, private=args.private, key="")


def publish_details(args: PublishArguments) -> str | None:
    """A `leapt eval` run's traces as a details dataset, built in a temporary folder."""
    import tempfile

    from huggingface_hub import DatasetCard

    from eval.details import details_card, details_configs, write_details
    from leapt.hub import upload

    run_dir = Path(args.details)
    configs = details_configs(run_dir)
    card = details_card(configs, args.repo_id)
    DatasetCard(card, ignore_metadata_errors=False)
    with tempfile.TemporaryDirectory(prefix="leapt-details-") as tmp:
        folder = Path(tmp)
        files = write_details(configs, folder)
        if args.dry_run:
            _show(folder, files, {"README.md": card}, args.repo_id, "dataset")
            return None
        url = upload(
            folder,
            args.repo_id,
            repo_type="dataset",
            files=files,
            generated={"README.md": card},
            replace=("data/*.parquet",),
            private=args.private,
            commit_message=f"leapt publish: details of {run_dir.resolve().name}",
        )
    print(f"published the traces of {run_dir} to {url}")
    return url


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt publish``; returns the exit code."""
    (args,) = parse_config(
        (PublishArguments,),
        argv,
        prog="leapt publish",
        description="Publish a checkpoint with its `leapt eval` results, a `leapt generate` "
        "dataset, or a `leapt eval` run's traces (--details), to the Hugging Face Hub (token: "
        "HF_TOKEN or `hf auth login`).",
        positional="model_dir",
    )
    if args.dataset:
        publish_dataset(args)
    elif args.details:
        publish_details(args)
    else:
        publish_model(args)
    return 0

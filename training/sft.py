"""`leapt train`: supervised fine-tuning of a LeaP-T student with TRL's SFTTrainer.

One process:   ``leapt train --config configs/training/<recipe>.yaml``
One machine:   ``leapt train --num_processes 8 --accelerate_config zero3 --config ...``
               (starts ``accelerate launch ... -m training.sft`` itself, see training.launcher)
Many nodes:    ``accelerate launch --config_file configs/accelerate/<zero2|zero3|...>.yaml
               -m training.sft --config configs/training/<recipe>.yaml`` per node

Order matters: the recipe, the DeepSpeed/accelerate pairing, the dataset schema
and every example's masks are checked before the model is loaded, so a bad
input fails in seconds with a message naming the key, file or row.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from leapt.chat import use_chat_template
from leapt.config import ConfigError, to_dict
from leapt.files import atomic_write_text, read_marker
from leapt.log import main_process_only
from leapt.redact import redact_values
from leapt.run_lock import FolderLock
from leapt.run_manifest import (
    check_manifest,
    data_identity,
    model_identity,
    read_manifest,
    write_manifest,
)
from leapt.wall_time import StageClock

#: written last; its presence marks a finished run that must not be overwritten
FINISHED_MARKER = "leapt_training.json"


logger = logging.getLogger(__name__)
logger.addFilter(main_process_only)  # every rank runs the same preparation; rank 0 reports it


class TrainingStopped(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; rerun the same command to resume."""


#: exit code of a run stopped on a signal (EX_TEMPFAIL: try again), unlike a finished (0) or failed one
STOPPED_EXIT = 75


def _resume_checkpoint(args, auto_resume: bool) -> str | None:
    """An explicit resume_from_checkpoint, else the last *complete* checkpoint-* in output_dir."""
    from training.checkpoints import last_complete_checkpoint

    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if not auto_resume:
        return None
    last, skipped = last_complete_checkpoint(args.output_dir)
    for path in skipped:
        logger.info(f"skipping incomplete checkpoint {path} (the run stopped while saving it)")
    return None if last is None else str(last)


def _load_tokenizer(model_args, args, chat_template: str | None = None):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=args.trust_remote_code,
        )
    except (OSError, ValueError) as exc:  # transformers' reasons span lines; the first says it
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"cannot load the tokenizer of model_name_or_path={model_args.model_name_or_path}: "
            f"{reason}"
        ) from exc
    use_chat_template(tokenizer, chat_template)  # the one inference renders prompts with
    if tokenizer.chat_template is None:
        raise ConfigError(f"the tokenizer of {model_args.model_name_or_path} has no chat template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _prepare_split(script, args, tokenizer, raw, split: str, summary_open: str | None):
    from training.dataset import prepare_dataset

    dataset, stats = prepare_dataset(
        raw,
        tokenizer,
        max_length=args.max_length,
        overlong=script.overlong,
        loss_on=script.loss_on,
        train_on_eos=script.train_on_eos,
        summary_open=summary_open,
        system_prompt=script.system_prompt,
    )
    logger.info(
        f"{split}: {stats.kept}/{stats.examples} examples kept, {stats.truncated} truncated "
        f"(losing {stats.truncated_tokens} tokens, {stats.truncated_trained_tokens} of them "
        f"trained) and {stats.dropped_overlong} dropped at max_length={args.max_length}, "
        f"{stats.dropped_nothing_to_train} with nothing to train on dropped; "
        f"{stats.trained_tokens}/{stats.tokens} tokens carry loss; end-of-turn trained in "
        f"{stats.eos_trained} (not after {stats.eos_untrained_no_natural_end} budget/forced "
        f"ends, {stats.eos_untrained_after_engine_text} ends right after engine text)"
    )
    if stats.prompt_differs:
        logger.warning(
            f"{stats.prompt_differs} rows have a prompt segment that differs from this "
            "tokenizer's chat template (teacher and student templates differ?); "
            "training uses the student's template, as inference will"
        )
    return dataset, stats


def _stop_at_end_of_turn(gen, tokenizer) -> None:
    """Make ``gen`` stop at the end-of-turn token the student was trained on."""
    eos = gen.eos_token_id
    eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id not in eos_ids:
        eos_ids.insert(0, tokenizer.eos_token_id)
    gen.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id


def _write_generation_config(out_dir: Path, base_model: str, tokenizer) -> None:
    """generation_config.json for a folder (an adapter's is not written by saving the model)."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(out_dir)
    except OSError:
        try:
            gen = GenerationConfig.from_pretrained(base_model)
        except OSError:
            gen = GenerationConfig()
    _stop_at_end_of_turn(gen, tokenizer)
    gen.save_pretrained(out_dir)


def _merge_lora(out_dir: Path, model_args, tokenizer) -> Path:
    """Merge the saved adapter into a fresh copy of the base; a plain checkpoint for vLLM/hf."""
    from peft import AutoPeftModelForCausalLM

    merged_dir = out_dir / "merged"
    model = AutoPeftModelForCausalLM.from_pretrained(out_dir, dtype=model_args.dtype or "auto")
    model = model.merge_and_unload()
    model.save_pretrained(merged_dir)
    tokenizer.save_pretrained(merged_dir)
    _write_generation_config(merged_dir, model_args.model_name_or_path, tokenizer)
    return merged_dir


def _pushed_files(out_dir: Path) -> list[str]:
    """The files ``Trainer.push_to_hub`` sends: all but ``_*`` and ``checkpoint-*`` (its ignore list)."""
    from huggingface_hub.utils import filter_repo_objects
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    names = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    ignored = ["_*", f"{PREFIX_CHECKPOINT_DIR}-*"]
    return list(filter_repo_objects(names, ignore_patterns=ignored))


def _push(trainer, out_dir: Path, card_kwargs: dict) -> None:
    """Publish the finished folder through TRL's ``push_to_hub`` (its card with our fields).

    Every rank calls it: under ZeRO-3 saving gathers the weights; only rank 0
    talks to the Hub.  The token is ``huggingface_hub``'s own (``HF_TOKEN`` or
    the cached login) and is scrubbed from any error.
    """
    from leapt.hub import PublishError, check_publishable, error_reason, hub_token

    repo_id = trainer.args.hub_model_id
    token = hub_token()
    # on every rank: none may wait in a gather for rank 0
    check_publishable(out_dir, _pushed_files(out_dir), token)
    try:
        trainer.push_to_hub(commit_message="leapt train: final model", **card_kwargs)
    except Exception as exc:  # network, auth and Hub errors alike: the local model is complete
        raise PublishError(
            f"could not push {out_dir} to the Hub model {repo_id!r} (key 'push_to_hub'): "
            f"{error_reason(exc, token)}; the trained model is complete, "
            f"publish it with `leapt publish {out_dir} --repo_id {repo_id}`"
        ) from exc
    logger.info(f"pushed {out_dir} to the Hub model {repo_id}")


def build_trainer(script, args, model_args):
    """Check and prepare the data, then load the model into an SFTTrainer.

    Returns ``(trainer, tokenizer, PrepareStats)``; everything that can fail on
    user input fails before the model is loaded.
    """
    from trl import get_peft_config

    from training.dataset import load_sft_dataset, recorded_protocol, resolve_summary_open
    from training.trainer import LeapSFTTrainer

    out_dir = Path(args.output_dir)
    if read_marker(out_dir / FINISHED_MARKER) is not None:
        raise ConfigError(
            f"output_dir {out_dir} already holds a finished model ({FINISHED_MARKER}); "
            "choose another output_dir"
        )
    if (out_dir / FINISHED_MARKER).exists():
        logger.warning(
            f"{out_dir / FINISHED_MARKER} does not parse: the earlier run did not finish, "
            "training again"
        )
    # a wrong model fails before the data loads
    tokenizer = _load_tokenizer(model_args, args, script.chat_template)
    splits = [script.dataset_train_split]
    if args.eval_strategy != "no":
        splits.append(script.dataset_test_split)
    raw = [load_sft_dataset(script.dataset_name, s, script.dataset_config) for s in splits]
    summary_open = resolve_summary_open(
        script.summary_open, recorded_protocol(script.dataset_name), script.dataset_name
    )
    logger.info(
        f"training the summary tag {summary_open!r}" if summary_open else "no summary tag trained"
    )
    prepared = [
        _prepare_split(script, args, tokenizer, r, s, summary_open)
        for r, s in zip(raw, splits, strict=True)
    ]
    (train_set, stats), eval_set = prepared[0], (prepared[1][0] if len(prepared) > 1 else None)
    if int(os.environ.get("RANK", "0")) == 0:  # what each split lost, saved before training starts
        out_dir.mkdir(parents=True, exist_ok=True)
        names = ["data_stats", "eval_data_stats"][: len(prepared)]
        for (_, split_stats), name in zip(prepared, names, strict=True):
            atomic_write_text(
                out_dir / f"{name}.json", json.dumps(split_stats.as_dict(), indent=2) + "\n"
            )

    init_kwargs = dict(args.model_init_kwargs or {})
    init_kwargs.setdefault("revision", model_args.model_revision)
    init_kwargs.setdefault("dtype", model_args.dtype or ("bfloat16" if args.bf16 else "float32"))
    if model_args.attn_implementation:
        init_kwargs.setdefault("attn_implementation", model_args.attn_implementation)
    args.model_init_kwargs = init_kwargs
    trainer = LeapSFTTrainer(
        model=model_args.model_name_or_path,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    return trainer, tokenizer, stats


def train(script, args, model_args) -> Path:
    """Prepare data, train, save model + tokenizer + generation config + card; return output_dir.

    The epilogue follows TRL's own path (as open-r1's ``sft.py`` does):
    ``save_model``, ``create_model_card`` and, if asked, ``push_to_hub``, with
    the LeaP-T fields added by :class:`training.trainer.LeapSFTTrainer`.
    One process trains into a folder at a time (a lock file held by rank 0).
    """
    clock = StageClock("train")
    out_dir = Path(args.output_dir)
    rank_zero = int(os.environ.get("RANK", "0")) == 0
    lock = FolderLock(out_dir).acquire() if rank_zero else None  # one training per folder
    try:
        manifest = training_manifest(script, model_args)
        check_manifest(out_dir, read_manifest(out_dir), manifest)  # every rank: all refuse alike
        return _train(script, args, model_args, out_dir, manifest if rank_zero else None, clock)
    finally:
        if lock is not None:
            lock.release()


def training_manifest(script, model_args) -> dict:
    """What a training folder records of its inputs: a rerun (resume) with another base model
    or dataset (another path, or other data files or sizes there) is refused before anything
    loads (:mod:`leapt.run_manifest`)."""
    from training.dataset import local_data_files

    local = Path(script.dataset_name).expanduser()
    files = [Path(f) for f in local_data_files(local)[1]] if local.exists() else None
    return {
        "base_model": model_identity(model_args.model_name_or_path, model_args.model_revision),
        "dataset": data_identity(script.dataset_name, files),
        "dataset_config": script.dataset_config,
    }


def _train(script, args, model_args, out_dir: Path, manifest: dict | None, clock) -> Path:
    """:func:`train` under the folder's lock; ``manifest`` is written by rank 0 (else None)."""
    from training.checkpoints import (
        MarkCompleteCheckpoints,
        StopOnSignal,
        check_resume_world_size,
    )
    from training.model_card import LeapCardFields, card_hyperparameters, hub_id_or_none

    push = args.push_to_hub
    args.push_to_hub = False  # no repo at start, no push per save: one push_to_hub at the end
    if "wandb" in (args.report_to or []):
        os.environ.setdefault("WANDB_PROJECT", "leapt")  # WANDB_MODE=offline works without network
    resume = _resume_checkpoint(args, script.auto_resume)
    if resume:
        check_resume_world_size(resume, int(os.environ.get("WORLD_SIZE", "1")))
    trainer, tokenizer, stats = build_trainer(script, args, model_args)
    if manifest is not None and manifest != read_manifest(out_dir):
        write_manifest(out_dir, manifest)
    card = LeapCardFields(
        base_model=model_args.model_name_or_path,
        dataset=script.dataset_name,
        hyperparameters=card_hyperparameters(
            script,
            args,
            model_args,
            trainer.accelerator.num_processes,
            trainer.accelerator.distributed_type,
        ),
        data_stats=stats.as_dict(),
        kind="adapter" if model_args.use_peft else "full",
    )
    trainer.leap_card = card
    card_kwargs = {
        "model_name": (args.hub_model_id or out_dir.name).split("/")[-1],
        "dataset_name": hub_id_or_none(script.dataset_name),
        "tags": ["leapt"],
    }
    trainer.add_callback(MarkCompleteCheckpoints())
    stop = StopOnSignal()
    trainer.add_callback(stop)
    if resume:
        logger.info(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    if stop.stopped:
        trainer.accelerator.wait_for_everyone()
        raise TrainingStopped(
            f"stopped on a signal at step {trainer.state.global_step} after saving a checkpoint "
            f"in {out_dir}; run the same command again to resume"
        )
    card.metrics = {
        k: round(v, 6) if isinstance(v, float) else v for k, v in result.metrics.items()
    }
    generation_config = getattr(
        trainer.accelerator.unwrap_model(trainer.model), "generation_config", None
    )
    if generation_config is not None:  # saved with the weights, here and again by push_to_hub
        _stop_at_end_of_turn(generation_config, tokenizer)
    trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        _write_generation_config(out_dir, model_args.model_name_or_path, tokenizer)
        tokenizer.save_pretrained(out_dir)
        if model_args.use_peft and script.merge_lora:
            trainer.merged_dir = _merge_lora(out_dir, model_args, tokenizer)
        trainer.create_model_card(**card_kwargs)
        record = {
            **dataclasses.asdict(card),
            "log_history": trainer.state.log_history,
            "script_args": to_dict(script),
        }
        record = redact_values(record)  # a dataset URL's credentials stay in the command line
        atomic_write_text(
            out_dir / FINISHED_MARKER, json.dumps(record, indent=2, default=str) + "\n"
        )
        clock.record(out_dir)
        logger.info(f"saved model, tokenizer, generation config and README.md to {out_dir}")
    trainer.accelerator.wait_for_everyone()
    if push:
        _push(trainer, out_dir, card_kwargs)
    trainer.end()
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `leapt train` and of ``python -m training.sft`` (every launched rank).

    With ``--num_processes``/``--accelerate_config`` (and not already launched)
    it starts the ranks through ``accelerate launch`` instead of training.
    """
    from training.recipe import parse_train_command

    argv = list(sys.argv[1:] if argv is None else argv)
    script, args, model_args, launch = parse_train_command(argv)
    if launch.wanted:
        from training.launcher import run_launch

        return run_launch(launch, argv)
    try:
        train(script, args, model_args)
    except TrainingStopped as exc:
        logger.info(str(exc))
        return STOPPED_EXIT
    return 0


if __name__ == "__main__":  # every rank `accelerate launch -m training.sft` starts
    from leapt.cli import main as leapt  # runs this file as training.sft, logging by that name

    sys.exit(leapt(["train", *sys.argv[1:]]))

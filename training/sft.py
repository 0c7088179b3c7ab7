"""`leapt train`: supervised fine-tuning of a LeaP-T student with TRL's SFTTrainer.

One process:   ``leapt train --config configs/training/<recipe>.yaml``
Many / nodes:  ``accelerate launch --config_file configs/accelerate/<zero2|zero3|...>.yaml
               -m training.sft --config configs/training/<recipe>.yaml``

Order matters: the recipe, the DeepSpeed/accelerate pairing, the dataset schema
and every example's masks are checked before the model is loaded, so a bad
input fails in seconds with a message naming the key, file or row.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from leapt.config import ConfigError, to_dict

#: written last; its presence marks a finished run that must not be overwritten
FINISHED_MARKER = "leapt_training.json"


def _say(message: str) -> None:
    """Log on the main process only (every rank runs the same preparation)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[leapt train] {message}", file=sys.stderr, flush=True)


def _resume_checkpoint(args, auto_resume: bool) -> str | None:
    """An explicit resume_from_checkpoint, else the last checkpoint-* in output_dir."""
    from transformers.trainer_utils import get_last_checkpoint

    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    out = Path(args.output_dir)
    if auto_resume and out.is_dir():
        return get_last_checkpoint(str(out))
    return None


def _load_tokenizer(model_args, args):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            trust_remote_code=args.trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the tokenizer of model_name_or_path={model_args.model_name_or_path}: {exc}"
        ) from exc
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
    )
    _say(
        f"{split}: {stats.kept}/{stats.examples} examples kept, {stats.truncated} truncated "
        f"(losing {stats.truncated_tokens} tokens, {stats.truncated_trained_tokens} of them "
        f"trained) and {stats.dropped_overlong} dropped at max_length={args.max_length}, "
        f"{stats.dropped_nothing_to_train} with nothing to train on dropped; "
        f"{stats.trained_tokens}/{stats.tokens} tokens carry loss; end-of-turn trained in "
        f"{stats.eos_trained} (not after {stats.eos_untrained_unnatural_finish} budget/forced "
        f"ends, {stats.eos_untrained_after_engine_text} ends right after engine text)"
    )
    if stats.prompt_differs:
        _say(
            f"warning: {stats.prompt_differs} rows have a prompt segment that differs from this "
            "tokenizer's chat template (teacher and student templates differ?); "
            "training uses the student's template, as inference will"
        )
    return dataset, stats


def _write_generation_config(out_dir: Path, base_model: str, tokenizer) -> None:
    """Make sure generation stops at the end-of-turn token the student was trained on."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(out_dir)
    except OSError:
        try:
            gen = GenerationConfig.from_pretrained(base_model)
        except OSError:
            gen = GenerationConfig()
    eos = gen.eos_token_id
    eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id not in eos_ids:
        eos_ids.insert(0, tokenizer.eos_token_id)
    gen.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
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


def _push(out_dir: Path, repo_id: str, private: bool | None) -> None:
    """Publish the finished folder (not intermediate checkpoints); token only from env."""
    from huggingface_hub import HfApi

    from training.recipe import hub_token

    api = HfApi(token=hub_token())
    api.create_repo(repo_id, exist_ok=True, private=private)
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(out_dir),
        ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "wandb/**"],
        commit_message="leapt train: final model",
    )
    _say(f"pushed {out_dir} to https://huggingface.co/{repo_id}")


def build_trainer(script, args, model_args):
    """Check and prepare the data, then load the model into an SFTTrainer.

    Returns ``(trainer, tokenizer, PrepareStats)``; everything that can fail on
    user input fails before the model is loaded.
    """
    from trl import SFTTrainer, get_peft_config

    from training.dataset import load_sft_dataset, recorded_protocol, resolve_summary_open

    out_dir = Path(args.output_dir)
    if (out_dir / FINISHED_MARKER).exists():
        raise ConfigError(
            f"output_dir {out_dir} already holds a finished model ({FINISHED_MARKER}); "
            "choose another output_dir"
        )
    splits = [script.dataset_train_split]
    if args.eval_strategy != "no":
        splits.append(script.dataset_test_split)
    raw = [load_sft_dataset(script.dataset_name, s, script.dataset_config) for s in splits]
    summary_open = resolve_summary_open(
        script.summary_open, recorded_protocol(script.dataset_name), script.dataset_name
    )
    _say(f"training the summary tag {summary_open!r}" if summary_open else "no summary tag trained")
    tokenizer = _load_tokenizer(model_args, args)
    prepared = [
        _prepare_split(script, args, tokenizer, r, s, summary_open)
        for r, s in zip(raw, splits, strict=True)
    ]
    (train_set, stats), eval_set = prepared[0], (prepared[1][0] if len(prepared) > 1 else None)
    if int(os.environ.get("RANK", "0")) == 0:  # what each split lost, saved before training starts
        out_dir.mkdir(parents=True, exist_ok=True)
        names = ["data_stats", "eval_data_stats"][: len(prepared)]
        for (_, split_stats), name in zip(prepared, names, strict=True):
            (out_dir / f"{name}.json").write_text(
                json.dumps(split_stats.as_dict(), indent=2) + "\n"
            )

    init_kwargs = dict(args.model_init_kwargs or {})
    init_kwargs.setdefault("revision", model_args.model_revision)
    init_kwargs.setdefault("dtype", model_args.dtype or ("bfloat16" if args.bf16 else "float32"))
    if model_args.attn_implementation:
        init_kwargs.setdefault("attn_implementation", model_args.attn_implementation)
    args.model_init_kwargs = init_kwargs
    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    return trainer, tokenizer, stats


def train(script, args, model_args) -> Path:
    """Prepare data, train, save model + tokenizer + generation config + card; return output_dir."""
    from training.model_card import card_hyperparameters, render_card

    out_dir = Path(args.output_dir)
    push = args.push_to_hub
    args.push_to_hub = False  # published once at the end, with our card, not at every save
    if "wandb" in (args.report_to or []):
        os.environ.setdefault("WANDB_PROJECT", "leapt")  # WANDB_MODE=offline works without network
    trainer, tokenizer, stats = build_trainer(script, args, model_args)
    resume = _resume_checkpoint(args, script.auto_resume)
    if resume:
        _say(f"resuming from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        world = trainer.accelerator.num_processes
        hyper = card_hyperparameters(script, args, model_args, world)
        metrics = {k: round(v, 6) if isinstance(v, float) else v for k, v in result.metrics.items()}
        _write_generation_config(out_dir, model_args.model_name_or_path, tokenizer)
        tokenizer.save_pretrained(out_dir)
        card = render_card(
            model_args.model_name_or_path,
            script.dataset_name,
            hyper,
            stats.as_dict(),
            metrics,
            adapter=bool(model_args.use_peft),
        )
        (out_dir / "README.md").write_text(card)
        if model_args.use_peft and script.merge_lora:
            merged = _merge_lora(out_dir, model_args, tokenizer)
            (merged / "README.md").write_text(card.replace("LoRA adapter for", "Merged LoRA of"))
        record = {
            "base_model": model_args.model_name_or_path,
            "dataset": script.dataset_name,
            "hyperparameters": hyper,
            "data_stats": stats.as_dict(),
            "metrics": metrics,
            "log_history": trainer.state.log_history,
            "script_args": to_dict(script),
        }
        (out_dir / FINISHED_MARKER).write_text(json.dumps(record, indent=2, default=str) + "\n")
        if push:
            _push(out_dir, args.hub_model_id, args.hub_private_repo)
        _say(f"saved model, tokenizer, generation config and README.md to {out_dir}")
    trainer.accelerator.wait_for_everyone()
    trainer.end()
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `leapt train` and of ``python -m training.sft`` (accelerate launch)."""
    from training.recipe import parse_recipe

    script, args, model_args = parse_recipe(argv)
    train(script, args, model_args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        print(f"leapt train: error: {exc}", file=sys.stderr)
        sys.exit(2)

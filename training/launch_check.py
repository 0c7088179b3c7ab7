"""Catch a DeepSpeed config that contradicts the launch or the recipe before the model loads.

transformers notices such mismatches only inside ``Trainer.__init__``, after a
multi-GB student has been loaded on every rank (and accelerate silently lets
the JSON win over its YAML).  The shipped JSON files use ``"auto"`` so that
they follow the recipe; this check covers hand-edited ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leapt.config import ConfigError


def load_deepspeed_json(path: str | Path) -> dict[str, Any]:
    """Read a DeepSpeed JSON config, with errors naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read DeepSpeed config {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"DeepSpeed config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"DeepSpeed config {path} must hold a JSON object")
    return data


def step_batch(args: Any, world_size: int) -> int:
    """Examples per forward/backward step across all ``world_size`` processes of a recipe ``args``."""
    return args.per_device_train_batch_size * world_size


def global_batch(args: Any, world_size: int) -> int:
    """Examples per optimizer step: one step's batch times the gradient accumulation steps."""
    return step_batch(args, world_size) * args.gradient_accumulation_steps


def _fixed(value: Any) -> bool:
    """True when a DeepSpeed value is pinned (not ``"auto"`` and present)."""
    return value is not None and value != "auto"


def _enabled(section: Any) -> bool | None:
    """The ``enabled`` flag of a bf16/fp16 section, or None when left to ``auto``."""
    if not isinstance(section, Mapping):
        return None
    value = section.get("enabled")
    return bool(value) if _fixed(value) else None


def check_deepspeed_against_args(
    ds: Mapping[str, Any], args, world_size: int, source: str, mixed_precision: str | None = None
) -> None:
    """Raise ConfigError when a pinned DeepSpeed value disagrees with the SFT recipe.

    ``mixed_precision`` is the precision accelerate was launched with (``no``,
    ``bf16``, ``fp16``), when known.
    """
    problems: list[str] = []

    def compare(key: str, ds_value: Any, arg_name: str, arg_value: Any) -> None:
        if _fixed(ds_value) and ds_value != arg_value:
            problems.append(f"{key}={ds_value} but the recipe has {arg_name}={arg_value}")

    compare(
        "train_micro_batch_size_per_gpu",
        ds.get("train_micro_batch_size_per_gpu"),
        "per_device_train_batch_size",
        args.per_device_train_batch_size,
    )
    compare(
        "gradient_accumulation_steps",
        ds.get("gradient_accumulation_steps"),
        "gradient_accumulation_steps",
        args.gradient_accumulation_steps,
    )
    compare(
        "train_batch_size",
        ds.get("train_batch_size"),
        "global batch",
        global_batch(args, world_size),
    )
    compare("gradient_clipping", ds.get("gradient_clipping"), "max_grad_norm", args.max_grad_norm)
    for prec in ("bf16", "fp16"):
        pinned = _enabled(ds.get(prec))
        if pinned is not None and pinned != bool(getattr(args, prec)):
            problems.append(
                f"{prec}.enabled={pinned} but the recipe has {prec}={getattr(args, prec)}"
            )
    opt_params = (ds.get("optimizer") or {}).get("params") or {}
    compare("optimizer.params.lr", opt_params.get("lr"), "learning_rate", args.learning_rate)
    compare(
        "optimizer.params.weight_decay",
        opt_params.get("weight_decay"),
        "weight_decay",
        args.weight_decay,
    )
    if mixed_precision in {"bf16", "fp16"} and not getattr(args, mixed_precision):
        problems.append(
            f"accelerate launched with mixed_precision={mixed_precision} but the recipe has {mixed_precision}=False"
        )
    if problems:
        raise ConfigError(f"DeepSpeed config {source} does not match: " + "; ".join(problems))


def zero_stage(ds: Mapping[str, Any]) -> int:
    """The ZeRO stage a DeepSpeed config asks for (0 when absent)."""
    return int((ds.get("zero_optimization") or {}).get("stage", 0))


def check_offload_optimizer(ds: Mapping[str, Any], source: str) -> None:
    """Raise ConfigError when the optimizer is offloaded but the Trainer would build it.

    Without an ``optimizer`` section transformers hands DeepSpeed a torch AdamW,
    and DeepSpeed refuses a client optimizer under ZeRO-Offload (it wants its
    own CPU Adam), but only once the model is loaded on every rank.
    """
    offload = (ds.get("zero_optimization") or {}).get("offload_optimizer") or {}
    device = offload.get("device", "none")
    if device in (None, "none") or "optimizer" in ds:
        return
    if ds.get("zero_force_ds_cpu_optimizer") is False:
        return  # the user opted into a torch optimizer on the CPU (slow, but allowed)
    raise ConfigError(
        f"DeepSpeed config {source} offloads the optimizer (offload_optimizer.device={device}) "
        'but has no "optimizer" section, so the Trainer would pass a torch AdamW that DeepSpeed '
        'refuses under ZeRO-Offload; add "optimizer": {"type": "AdamW", "params": {"lr": "auto", '
        '"betas": "auto", "eps": "auto", "weight_decay": "auto"}} (DeepSpeed CPU Adam, as in '
        'configs/deepspeed/zero3_offload.json) or set "zero_force_ds_cpu_optimizer": false'
    )


def check_fsdp_device(uses_fsdp: bool, source: str) -> None:
    """Refuse an FSDP launch on a machine without an accelerator (GPU, XPU, ...).

    accelerate (checked with 1.16) turns FSDP on only for accelerator device
    types (``AcceleratorState``: MULTI_GPU, MULTI_XPU, ...); on the CPU it
    drops the FSDP plugin without a word and trains plain data parallel, so
    the run would not be the sharded one the config asks for.  ``source``
    names what asked for FSDP in the message.
    """
    if not uses_fsdp:
        return
    import torch

    if torch.accelerator.is_available():
        return
    raise ConfigError(
        f"{source} asks for FSDP, which accelerate runs only on GPUs (or other "
        "accelerators); on this machine it would silently train plain data parallel: use "
        "ddp or zero2/zero3 here, fsdp on a GPU node"
    )


def check_launch(args, environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Check the DeepSpeed config this process will use; return it (None without DeepSpeed).

    Looks at ``args.deepspeed`` (a recipe key) and at what ``accelerate launch``
    exported (``ACCELERATE_USE_DEEPSPEED``, ``ACCELERATE_DEEPSPEED_CONFIG_FILE``,
    ``ACCELERATE_DEEPSPEED_ZERO_STAGE``, ``ACCELERATE_MIXED_PRECISION``).
    """
    env = os.environ if environ is None else environ
    check_fsdp_device(
        env.get("ACCELERATE_USE_FSDP", "false").lower() == "true",
        "this accelerate launch (ACCELERATE_USE_FSDP=true)",
    )
    world_size = int(env.get("WORLD_SIZE", "1"))
    launched_ds = env.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    env_file = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    recipe_ds = args.deepspeed if isinstance(args.deepspeed, str) else None
    if recipe_ds and env_file and Path(recipe_ds).resolve() != Path(env_file).resolve():
        raise ConfigError(
            f"the recipe sets deepspeed={recipe_ds} but accelerate was launched with "
            f"deepspeed_config_file={env_file}; keep one of them"
        )
    path = recipe_ds or (env_file if launched_ds else None)
    if path is None:
        return None
    ds = load_deepspeed_json(path)
    stage_env = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    if stage_env is not None and int(stage_env) != zero_stage(ds):
        raise ConfigError(
            f"accelerate asks for ZeRO stage {stage_env} but {path} sets stage {zero_stage(ds)}"
        )
    check_offload_optimizer(ds, str(path))
    mixed = env.get("ACCELERATE_MIXED_PRECISION") if launched_ds else None
    check_deepspeed_against_args(ds, args, world_size, str(path), mixed)
    return ds


def check_accelerate_file(path: str | Path) -> dict[str, Any]:
    """Validate an accelerate YAML and the DeepSpeed JSON it names; return the YAML mapping.

    Used by tests on every shipped config and by the Slurm script as a
    pre-flight check, since accelerate reads the YAML only at launch.
    """
    import yaml

    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read accelerate config {path}: {exc}") from exc
    if cfg.get("distributed_type") != "DEEPSPEED":
        return cfg
    ds_cfg = cfg.get("deepspeed_config") or {}
    ds_file = ds_cfg.get("deepspeed_config_file")
    if not ds_file:
        raise ConfigError(
            f"{path}: distributed_type DEEPSPEED needs deepspeed_config.deepspeed_config_file"
        )
    # accelerate reads it relative to the launch directory: the repository root for ours
    candidates = [Path(ds_file), path.resolve().parent.parent.parent / ds_file]
    ds_path = next((c for c in candidates if c.is_file()), None)
    if ds_path is None:
        raise ConfigError(
            f"{path}: deepspeed_config_file {ds_file} not found (relative paths are read from "
            "the directory you launch in; run from the repository root)"
        )
    ds = load_deepspeed_json(ds_path)
    check_offload_optimizer(ds, str(ds_path))
    ignored = {
        "zero_stage",
        "offload_optimizer_device",
        "offload_param_device",
        "gradient_accumulation_steps",
        "gradient_clipping",
        "zero3_save_16bit_model",
    }
    clash = sorted(ignored & set(ds_cfg))
    if clash:
        raise ConfigError(
            f"{path}: {clash[0]} is set beside deepspeed_config_file {ds_file}; "
            "accelerate ignores it, set it in the JSON instead"
        )
    if ds_cfg.get("zero3_init_flag") and zero_stage(ds) != 3:
        raise ConfigError(
            f"{path}: zero3_init_flag is true but {ds_file} uses ZeRO stage {zero_stage(ds)}"
        )
    return cfg


def check_files(paths: list[str]) -> int:
    """Check every accelerate config in ``paths`` (ConfigError on the first bad one)."""
    for path in paths:
        check_accelerate_file(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training.launch_check ACCELERATE.yaml...``: pre-flight check for Slurm jobs."""
    import sys

    from leapt.cli import run_stage

    return run_stage("train", check_files, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())

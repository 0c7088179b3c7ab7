"""`leapt train --num_processes N --accelerate_config zero3`: multi-process runs from one command.

`leapt train` re-runs itself under ``accelerate launch`` (the launcher TRL and
open-r1 use) when asked for more than the current process; every rank then
runs ``python -m training.sft`` with the same arguments and sees that it was
launched.  ``--accelerate_config`` names a shipped config under
``configs/accelerate/`` (``ddp``, ``zero2``, ``zero3``, ``zero3_offload``,
``fsdp``) or any accelerate YAML file.  Multi-node jobs keep using ``accelerate launch``
per node (slurm/train.sbatch).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leapt.config import ConfigError, check_at_least
from training.launch_check import check_fsdp_device

logger = logging.getLogger(__name__)

ACCELERATE_DIR = Path(__file__).resolve().parent.parent / "configs" / "accelerate"


def shipped_configs() -> list[str]:
    return sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))


@dataclass
class LaunchArguments:
    """How many processes `leapt train` starts (through ``accelerate launch``)."""

    num_processes: int | None = field(
        default=None,
        metadata={
            "help": "start this many training processes on this machine via `accelerate launch` "
            "(default: the accelerate config's num_processes)"
        },
    )
    accelerate_config: str | None = field(
        default=None,
        metadata={
            "help": "accelerate config: a name under configs/accelerate/ (ddp, zero2, zero3, "
            "zero3_offload, fsdp) or a YAML file; with --num_processes alone: ddp"
        },
    )
    main_process_port: int | None = field(
        default=None, metadata={"help": "rendezvous port of the launched processes"}
    )

    def __post_init__(self) -> None:
        check_at_least(self, 1, "num_processes")

    @property
    def wanted(self) -> bool:
        """True when this invocation should start processes rather than train itself."""
        launched = "LOCAL_RANK" in os.environ  # set for every rank by accelerate/torchrun
        return not launched and (
            self.num_processes is not None or self.accelerate_config is not None
        )


def resolve_accelerate_config(name: str) -> tuple[Path, dict[str, Any]]:
    """A shipped config name or a YAML path, checked (with its DeepSpeed JSON) before launch.

    Returns the path and the YAML mapping the check read.
    """
    from training.launch_check import check_accelerate_file

    path = (
        ACCELERATE_DIR / f"{name}.yaml"
        if "/" not in name and not name.endswith((".yaml", ".yml"))
        else Path(name)
    )
    if not path.is_file():
        raise ConfigError(
            f"accelerate_config {name!r} is neither a file nor a shipped config "
            f"({', '.join(shipped_configs())})"
        )
    return path, check_accelerate_file(path)


def _deepspeed_file(cfg: dict[str, Any]) -> Path | None:
    """The accelerate config's DeepSpeed JSON as an absolute path, so any working directory works."""
    name = (cfg.get("deepspeed_config") or {}).get("deepspeed_config_file")
    if not name:
        return None
    for base in (Path.cwd(), ACCELERATE_DIR.parent.parent):
        if (base / name).is_file():
            return (base / name).resolve()
    return None


def launch_command(launch: LaunchArguments, argv: Sequence[str]) -> list[str]:
    """The ``accelerate launch`` command running ``training.sft`` with ``argv`` on every rank."""
    config, cfg = resolve_accelerate_config(launch.accelerate_config or "ddp")
    check_fsdp_device(cfg.get("distributed_type") == "FSDP", f"accelerate_config {config}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    if launch.num_processes is not None:
        cmd += ["--num_processes", str(launch.num_processes)]
    if launch.main_process_port is not None:
        cmd += ["--main_process_port", str(launch.main_process_port)]
    ds_file = _deepspeed_file(cfg)
    if ds_file is not None:
        cmd += ["--deepspeed_config_file", str(ds_file)]
    return [*cmd, "-m", "training.sft", *argv]


def run_launch(launch: LaunchArguments, argv: Sequence[str]) -> int:
    """Start the processes, wait for them and return their exit code."""
    cmd = launch_command(launch, argv)
    logger.info("launching: %s", " ".join(cmd[1:]))
    return subprocess.run(cmd, check=False).returncode

"""Checkpoints that are safe to resume from, and a clean stop on a scheduler's signal.

A job can die at any moment: a node failure, ``kill -9``, a time limit.  The
Trainer writes a checkpoint as many files from every rank (weights, ZeRO
optimizer shards, one RNG file per rank, ``trainer_state.json``), so a
``checkpoint-N`` folder can exist while it is still half written.
transformers' ``get_last_checkpoint`` picks the highest-numbered folder
anyway; resuming from a torn one either crashes or silently loads garbage.

Here a checkpoint counts as complete only when every rank has finished writing
it: after the Trainer's save, all ranks meet at a barrier and only then does
rank 0 write :data:`COMPLETE_MARKER` (atomically, last).  Resuming picks the
highest-numbered folder holding both the marker and ``trainer_state.json``.

:class:`StopOnSignal` turns ``SIGUSR1`` (what ``slurm/train.sbatch`` forwards
shortly before the time limit) into "save a checkpoint at the end of this
step, then stop", agreed between all ranks so they save at the same step.
"""

from __future__ import annotations

import logging
import re
import signal
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from leapt.files import atomic_write_text

logger = logging.getLogger(__name__)

#: written by rank 0 into checkpoint-N after every rank finished writing it
COMPLETE_MARKER = "leapt_checkpoint_complete"
#: the Trainer writes it (rank 0) after weights, optimizer and scheduler
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def is_complete(checkpoint: str | Path) -> bool:
    """True when ``checkpoint`` was fully written by every rank."""
    checkpoint = Path(checkpoint)
    return (checkpoint / COMPLETE_MARKER).is_file() and (checkpoint / TRAINER_STATE).is_file()


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders of ``output_dir`` as (step, path), lowest step first."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in out.iterdir()
        if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))
    ]
    return sorted(found)


def last_complete_checkpoint(output_dir: str | Path) -> tuple[Path | None, list[Path]]:
    """The newest complete checkpoint (or None) and the incomplete ones newer than it."""
    skipped: list[Path] = []
    for _, path in reversed(checkpoints(output_dir)):
        if is_complete(path):
            return path, skipped
        skipped.append(path)
    return None, skipped


def zero_world_size(checkpoint: str | Path) -> int | None:
    """How many ranks saved the ZeRO optimizer shards of ``checkpoint`` (None: not ZeRO).

    DeepSpeed writes one ``zero_pp_rank_<r>_mp_rank_..._optim_states.pt`` per
    rank and cannot load them at another world size.
    """
    shards = Path(checkpoint).glob("global_step*/*zero_pp_rank_*_optim_states.pt")
    ranks = {m.group(1) for p in shards if (m := re.search(r"zero_pp_rank_(\d+)_", p.name))}
    return len(ranks) or None


def check_resume_world_size(checkpoint: str | Path, world_size: int) -> None:
    """Refuse, before any model loads, to resume ZeRO shards at another world size."""
    from leapt.config import ConfigError

    saved = zero_world_size(checkpoint)
    if saved is not None and saved != world_size:
        raise ConfigError(
            f"{checkpoint} holds ZeRO optimizer states of {saved} processes but this run has "
            f"{world_size}; resume with {saved} processes (same nodes x GPUs), or start from its "
            "weights (--model_name_or_path) in a new output_dir"
        )


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class MarkCompleteCheckpoints(TrainerCallback):
    """After each save: wait for all ranks, then rank 0 marks the checkpoint complete."""

    def on_save(self, args, state, control, **kwargs):
        _barrier()
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if (folder / TRAINER_STATE).is_file():
                # on disk before its name appears
                atomic_write_text(folder / COMPLETE_MARKER, f"step {state.global_step}\n")
        _barrier()
        return control


class StopOnSignal(TrainerCallback):
    """On ``signum`` (default SIGUSR1): checkpoint at the end of the current step, then stop.

    The handler only sets a flag; the decision is taken at a step boundary and
    reduced over all ranks (one tiny all-reduce per step), so a rank that got
    the signal a step later than another still saves at the same step.
    """

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signum
        self.received = False
        self.stopped = False
        signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.received = True
        logger.info("got %s: saving a checkpoint after this step", signal.Signals(signum).name)

    def _anyone_received(self) -> bool:
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.received
        from accelerate import PartialState

        flag = torch.tensor([int(self.received)], device=PartialState().device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_step_end(self, args, state, control, **kwargs):
        if self._anyone_received():
            control.should_save = True
            control.should_training_stop = True
            self.stopped = True
        return control

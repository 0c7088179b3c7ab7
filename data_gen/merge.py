"""``leapt generate merge DIR... --output_dir OUT``: one dataset from several shard datasets.

The dataset directories of a Slurm array's shards (or a folder of ``shard-*``
datasets) are combined into one, keyed by (problem id, path index) so a shard
given twice adds no duplicate rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leapt.config import ConfigError, check_output_dir, parse_config


@dataclass
class MergeArguments:
    """What to merge, where to, and whether to publish the result."""

    dirs: list[str] = field(
        default_factory=list,
        metadata={"help": "dataset directories, or folders of shard-* dirs", "metavar": "DIR"},
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "where the merged dataset is written (required)"}
    )
    dataset_name: str = field(default="leapt-sft", metadata={"help": "name shown on the card"})
    push_to_hub: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset repo to publish to (token from HF_TOKEN or a cached login)",
            "metavar": "REPO",
        },
    )
    private: bool = field(default=False, metadata={"help": "create the Hub repo as private"})
    allow_partial: bool = field(
        default=False,
        metadata={
            "help": "merge even when shards are missing or come from runs with different "
            "shard counts"
        },
    )

    def __post_init__(self) -> None:
        if not self.dirs:
            raise ConfigError("name at least one dataset directory to merge")
        if not self.output_dir:
            raise ConfigError("--output_dir is required: where the merged dataset is written")
        check_output_dir(self.output_dir)


def merge(args: MergeArguments) -> Path:
    """Union of the shard datasets, written to ``args.output_dir`` (and pushed, if asked)."""
    from data_gen.output import (
        check_dataset_target,
        check_shard_set,
        expand_dirs,
        merge_rows,
        merge_stats,
        read_dataset_dir,
        write_dataset,
    )
    from leapt.hub import check_push_target

    if args.push_to_hub:
        check_push_target(args.push_to_hub, "push_to_hub")
    inputs = expand_dirs(args.dirs)
    out = Path(args.output_dir)
    if any(out.resolve() == d.resolve() for d in inputs):
        raise ConfigError(f"--output_dir {out} is one of the inputs; choose a new directory")
    check_dataset_target(out, merged=True)
    loaded = [read_dataset_dir(d) for d in inputs]
    if not args.allow_partial:
        check_shard_set(inputs, [stats for _, stats in loaded])
    rows, repeats = merge_rows(rows for rows, _ in loaded)
    stats = merge_stats([stats for _, stats in loaded], kept_rows=len(rows), repeats=repeats)
    write_dataset(out, rows, stats, args.dataset_name)
    print(f"merged {len(inputs)} datasets into {out}: {len(rows)} rows ({repeats} repeats removed)")
    if args.push_to_hub:
        from data_gen.hub import push_dataset

        push_dataset(out, args.push_to_hub, private=args.private)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt generate merge``; returns the exit code."""
    (args,) = parse_config(
        (MergeArguments,),
        argv,
        prog="leapt generate merge",
        description="Combine generated dataset directories (e.g. the shards of a Slurm array) "
        "into one dataset without duplicate rows.",
        positional="dirs",
    )
    merge(args)
    return 0

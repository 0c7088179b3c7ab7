"""``leapt generate``: harvest a teacher's LeaP traces into an SFT dataset.

Two forms::

    leapt generate --config configs/generate/<name>.yaml [--key value ...]
    leapt generate merge DIR... --output-dir OUT [--allow-partial] [--push-to-hub REPO]

The first harvests one shard (``--shard I/N``); the second combines the
dataset directories of several shards (or a folder of ``shard-*`` datasets)
into one, without duplicate rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from leapt.config import ConfigError

DESCRIPTION = (
    "Harvest a teacher's LeaP traces into an SFT dataset: the teacher runs the LeaP engine on "
    "the source problems (shard I of N), paths are filtered and decontaminated, and the kept "
    "paths are written as a dataset (data/*.parquet, stats.json, README.md). "
    "Combine shards with `leapt generate merge DIR... --output-dir OUT`."
)


def merge_main(argv: Sequence[str]) -> int:
    """``leapt generate merge``: union of shard datasets, keyed by (problem id, path index)."""
    from data_gen.output import (
        check_shard_set,
        expand_dirs,
        merge_rows,
        merge_stats,
        read_dataset_dir,
        write_dataset,
    )

    parser = argparse.ArgumentParser(
        prog="leapt generate merge",
        description="Combine generated dataset directories (e.g. the shards of a Slurm array) "
        "into one dataset without duplicate rows.",
    )
    parser.add_argument("dirs", nargs="+", help="dataset directories, or folders of shard-* dirs")
    parser.add_argument(
        "--output-dir", "--output_dir", required=True, help="where the merged dataset is written"
    )
    parser.add_argument(
        "--dataset-name", "--dataset_name", default="leapt-sft", help="name shown on the card"
    )
    parser.add_argument(
        "--push-to-hub",
        "--push_to_hub",
        default=None,
        metavar="REPO",
        help="Hub dataset repo to publish to (token from HF_TOKEN or a cached login)",
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument(
        "--allow-partial",
        "--allow_partial",
        action="store_true",
        help="merge even when shards are missing or come from runs with different shard counts",
    )
    args = parser.parse_args(list(argv))

    inputs = expand_dirs(args.dirs)
    out = Path(args.output_dir)
    if any(out.resolve() == d.resolve() for d in inputs):
        raise ConfigError(f"--output-dir {out} is one of the inputs; choose a new directory")
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
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt generate``; returns the exit code."""
    from data_gen.args import GenerateArguments
    from inference.args import LeapArguments, ModelArguments
    from leapt.config import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        return merge_main(argv[1:])
    args, model_args, leap_args = parse_config(
        [GenerateArguments, ModelArguments, LeapArguments],
        argv,
        prog="leapt generate",
        description=DESCRIPTION,
    )
    from data_gen.harvest import harvest

    stats = harvest(args, model_args, leap_args)
    counts = stats["counts"]
    print(
        json.dumps(
            {
                "kept": counts["kept"],
                "paths": counts["paths"],
                "problems": counts["problems"],
                "dropped": counts["dropped"],
                "decontaminated": stats["decontamination"]["dropped"],
            },
            indent=2,
        )
    )
    return 0

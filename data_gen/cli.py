"""``leapt generate``: harvest a teacher's LeaP traces into an SFT dataset.

Two forms::

    leapt generate --config configs/generate/<name>.yaml [--key value ...]
    leapt generate merge DIR... --output_dir OUT [--allow_partial] [--push_to_hub REPO]

The first harvests one shard (``--shard I/N``); the second (:mod:`data_gen.merge`)
combines the dataset directories of several shards into one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

DESCRIPTION = (
    "Harvest a teacher's LeaP traces into an SFT dataset: the teacher runs the LeaP engine on "
    "the source problems (shard I of N), paths are filtered and decontaminated, and the kept "
    "paths are written as a dataset (data/*.parquet, stats.json, README.md). "
    "Combine shards with `leapt generate merge DIR... --output_dir OUT`."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``leapt generate``; returns the exit code."""
    from data_gen.args import GenerateArguments
    from inference.args import LeapArguments, ModelArguments
    from leapt.config import parse_config

    args, model_args, leap_args = parse_config(
        [GenerateArguments, ModelArguments, LeapArguments],
        argv,
        prog="leapt generate",
        description=DESCRIPTION,
    )
    from data_gen.harvest import harvest

    if args.push_to_hub:  # before the harvest, not after it
        from leapt.hub import check_push_target

        check_push_target(args.push_to_hub, "push_to_hub")

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

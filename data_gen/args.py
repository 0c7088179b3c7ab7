"""Options of ``leapt generate`` beside the engine's ModelArguments/LeapArguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inference.args import DataArguments
from leapt.config import ConfigError, check_at_least, check_choice, warn_renamed

#: the paper's evaluation sets, by eval.benchmarks registry name
DEFAULT_BENCHMARKS = ("aime24", "aime25", "aimo25")


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with 0 <= I < N (I is 0-based, like a Slurm array index)."""
    index, sep, count = spec.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"'shard' must be I/N with 0 <= I < N (e.g. 0/4), got {spec!r}")
    return i, n


@dataclass
class GenerateArguments(DataArguments):
    """Where problems come from (the keys of ``leapt infer``), which traces to keep, and where
    the dataset goes."""

    source: str = field(
        default="synthetic",
        metadata={
            "help": "problems: a Hub dataset id, a local .json/.jsonl/.parquet file, "
            "'synthetic' (seeded arithmetic) or 'builtin:easy'"
        },
    )
    output_dir: str = field(
        default="outputs/generate",
        metadata={"help": "dataset directory (raw traces go to OUTPUT_DIR/raw/shard-I-of-N/)"},
    )
    shard: str = field(
        default="0/1",
        metadata={
            "help": "I/N: harvest only shard I (0-based) of N; problems are assigned by a hash "
            "of their id, so shards are stable when the source grows or is reordered"
        },
    )
    filter_natural_end: bool = field(
        default=True, metadata={"help": "drop paths cut by the budget or forced to answer"}
    )
    filter_summaries: bool = field(
        default=True,
        metadata={"help": "drop paths with a summary the model did not close within the cap"},
    )
    filter_summary_max_tokens: int | None = field(
        default=None,
        metadata={"help": "summary token cap of that filter (default: the engine's cap)"},
    )
    filter_imitation: bool = field(
        default=True,
        metadata={
            "help": "drop paths whose own text imitates the protocol (writes a peer block or "
            "peer label, copies the summary trigger or the reflection cue)"
        },
    )
    filter_peer_exchange: bool = field(
        default=True, metadata={"help": "drop paths that never received a peer's summary"}
    )
    filter_correct: bool = field(
        default=True, metadata={"help": "drop paths whose final answer the grader rejects"}
    )
    filter_duplicates: bool = field(
        default=True, metadata={"help": "drop exact duplicates of a kept path of the same problem"}
    )
    max_paths_per_problem: int | None = field(
        default=None, metadata={"help": "keep at most this many paths per problem (lowest first)"}
    )
    sft_prompt: str = field(
        default="plain",
        metadata={
            "help": "prompt of each training row: 'plain' (the problem alone, as a LeaP-T "
            "student is given it in leap_t mode; an announced teacher's preamble and pre-fill "
            "are left out) or 'teacher' (the prompt the teacher was given)"
        },
    )
    decontaminate: bool = field(
        default=True,
        metadata={
            "help": "drop problems sharing a word n-gram with the eval benchmarks "
            "(skipped for 'synthetic' and 'builtin:' sources unless decontam_benchmarks is set)"
        },
    )
    decontam_benchmarks: list[str] = field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS),
        metadata={"help": "eval.benchmarks registry names or local json/jsonl/parquet files"},
    )
    local_files: dict | None = field(
        default=None,
        metadata={
            "help": "replace a benchmark's Hub source by a local json/jsonl/parquet file, "
            "e.g. aimo25=data/aimo25.jsonl (as in `leapt eval`)"
        },
    )
    decontam_ngram: int = field(default=8, metadata={"help": "n-gram length in words"})
    dataset_name: str = field(
        default="leapt-sft", metadata={"help": "dataset name shown on the card"}
    )
    push_to_hub: str | None = field(
        default=None,
        metadata={"help": "Hub dataset repo to publish to (token from HF_TOKEN or a cached login)"},
    )
    private: bool = field(default=False, metadata={"help": "create the Hub repo as private"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.shard_index, self.shard_count = parse_shard(self.shard)
        check_choice("sft_prompt", self.sft_prompt, ("plain", "teacher"), what="setting")
        if self.push_to_hub and self.shard_count > 1:
            raise ConfigError(
                "'push_to_hub' publishes a whole dataset: leave it off for shards and run "
                "`leapt generate merge OUTPUT_DIR --output_dir MERGED --push_to_hub REPO`"
            )
        check_at_least(
            self, 1, "decontam_ngram", "max_paths_per_problem", "filter_summary_max_tokens"
        )
        if self.decontaminate and not self.decontam_benchmarks:
            raise ConfigError("'decontaminate' is on but 'decontam_benchmarks' is empty")
        self._move_named_files()
        from eval.benchmarks import check_local_files, get_benchmark

        for entry in self.decontam_benchmarks:  # a registry name, or a file read at harvest
            if Path(entry).suffix.lower() not in (".json", ".jsonl", ".parquet"):
                get_benchmark(entry, key="decontam_benchmarks")

        check_local_files(self.local_files, exist=False)

    def _move_named_files(self) -> None:
        """Turn the deprecated ``NAME=FILE`` entries of ``decontam_benchmarks`` into
        ``local_files`` (the mapping ``leapt eval`` takes), with a FutureWarning."""
        local_files = dict(self.local_files or {})
        for i, entry in enumerate(self.decontam_benchmarks):
            name, sep, path = entry.partition("=")
            if not sep:
                continue
            if name in local_files:
                raise ConfigError(
                    f"benchmark '{name}' has a file in both 'local_files' and "
                    f"'decontam_benchmarks' ({entry!r}): keep only 'local_files'"
                )
            warn_renamed(
                f"decontam_benchmarks: [{entry}]", f"local_files: {{{name}: {path}}}", "config"
            )
            local_files[name] = path
            self.decontam_benchmarks[i] = name
        if local_files:
            self.local_files = local_files

    @property
    def checks_contamination(self) -> bool:
        """Decontamination runs unless switched off, or the problems are generated ones
        checked against the default (paper) benchmarks: those cannot leak into made-up
        arithmetic, and smoke runs stay offline.  Benchmarks named explicitly are always
        checked (e.g. a held-out synthetic set)."""
        generated = self.source == "synthetic" or self.source.startswith("builtin:")
        explicit = list(self.decontam_benchmarks) != list(DEFAULT_BENCHMARKS)
        return self.decontaminate and (not generated or explicit)

    @property
    def shard_name(self) -> str:
        return f"shard-{self.shard_index}-of-{self.shard_count}"

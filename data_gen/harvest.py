"""``leapt generate``: run a teacher through LeaP, keep the good paths, write an SFT dataset.

The teacher runs through exactly the engine and backends of ``leapt infer``
(``inference.run.run_inference``), so training data shows the protocol the
student will meet at inference.  Steps, each cheap to redo:

1. load the source problems (a bad column mapping fails here, before any model loads);
2. keep this shard's problems (hash of the problem id, so shards never depend on order);
3. drop problems that overlap the eval benchmarks (n-gram decontamination);
4. generate into ``OUTPUT_DIR/raw/shard-I-of-N/traces.jsonl``: append-only and
   resumable, so a killed job rerun skips finished problems and duplicates none;
5. filter every finished trace and rewrite the dataset directory from them.

Step 5 always starts from the whole raw file, so the dataset after a rerun is
the same as after an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_gen.args import GenerateArguments
from data_gen.decontaminate import build_index, decontaminate
from data_gen.filters import (
    FilterResult,
    FilterSettings,
    ImitationCheck,
    filter_trace,
    filter_traces,
)
from data_gen.output import check_dataset_target, write_dataset
from data_gen.sft_format import to_row
from inference.args import LeapArguments, ModelArguments
from inference.problems import load_problems
from inference.protocol import Protocol, load_protocol
from inference.summaries import Tags
from inference.trace import Segment, Trace, TraceFile
from leapt.chat import use_chat_template
from leapt.config import ConfigError, to_dict
from leapt.redact import redact_urls, redact_values
from leapt.wall_time import WALL_TIME_JSON, StageClock

#: LeapArguments keys shown on the dataset card (everything that shapes the text)
CARD_LEAP_KEYS = (
    "method",
    "n",
    "T",
    "top_k",
    "router",
    "summary_max_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "sampling_top_k",
    "min_p",
    "seed",
    "task",
)


def shard_of(problem_id: str, count: int) -> int:
    """Stable shard of a problem: a hash of its id, independent of position and process."""
    digest = hashlib.sha256(problem_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def filter_settings(args: GenerateArguments, leap_args: LeapArguments, protocol: Protocol):
    """FilterSettings from the config; the summary cap defaults to the engine's."""
    return FilterSettings(
        natural_end=args.filter_natural_end,
        summaries=args.filter_summaries,
        imitation=args.filter_imitation,
        peer_exchange=args.filter_peer_exchange,
        correct=args.filter_correct,
        duplicates=args.filter_duplicates,
        max_paths_per_problem=args.max_paths_per_problem,
        summary_max_tokens=args.filter_summary_max_tokens or leap_args.summary_max_tokens,
        tags=Tags(protocol.summary_open, protocol.summary_close),
        imitation_check=ImitationCheck.from_protocol(protocol),
    )


class RowPrompt:
    """The prompt of each SFT row, checked against the prompt the engine rendered.

    Training re-renders ``messages`` through the chat template and masks by
    ``segments``; if the trace's prompt disagreed with the protocol's the
    student would be trained on a prompt the teacher never saw, so a mismatch
    is an error, not a warning.

    With ``plain`` a row whose teacher was given the announced protocol (the
    preamble explaining the tags, and the assistant pre-fill) gets the plain
    prompt instead: that is what a LeaP-T student is given in ``leap_t``
    mode, and a student trained on a prompt it never sees at inference
    learns the protocol only when it is explained.
    """

    def __init__(
        self,
        protocol: Protocol,
        tokenizer: Any,
        task: str,
        plain: bool,
        system_prompt: str | None = None,
    ):
        self.protocol, self.tokenizer, self.task, self.plain = protocol, tokenizer, task, plain
        self.system_prompt = system_prompt

    def row(self, trace: Trace, index: int, source: str) -> dict:
        announced = bool((trace.config.get("protocol_switches") or {}).get("announce", False))
        segments = trace.paths[index].segments
        prefill = self.protocol.assistant_prefill(announced)
        expected = [self.render(trace, announced), *([prefill] if prefill else [])]
        if [s.text for s in segments[: len(expected)]] != expected:
            raise ConfigError(
                f"problem {trace.id}: the trace's prompt segments differ from the prompt the "
                "protocol renders now (was the protocol file or chat template changed?)"
            )
        if self.plain and announced:
            announced = False
            segments = [Segment("prompt", self.render(trace, False)), *segments[len(expected) :]]
        messages = self.protocol.prompt_messages(
            trace.problem, trace.options, self.task, announced, self.system_prompt
        )
        return to_row(trace, index, messages, source, segments)

    def render(self, trace: Trace, announced: bool) -> str:
        return self.protocol.build_prompt(
            self.tokenizer, trace.problem, trace.options, self.task, announced, self.system_prompt
        )


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def load_tokenizer(model_args: ModelArguments) -> Any:
    """The teacher's tokenizer alone, for re-filtering when nothing is left to generate."""
    from transformers import AutoTokenizer

    from inference.models import resolve_model

    return AutoTokenizer.from_pretrained(
        resolve_model(model_args), trust_remote_code=model_args.trust_remote_code
    )


def harvest(
    args: GenerateArguments,
    model_args: ModelArguments,
    leap_args: LeapArguments,
    *,
    backend: Any = None,
    progress: bool = True,
) -> dict:
    """Run the whole pipeline for one shard; returns the stats also written to stats.json."""
    from eval.grading import make_grader
    from inference.run_folder import RunSpec, open_runs

    clock = StageClock("generate")
    protocol = load_protocol(leap_args.protocol)
    # a bad column mapping fails here, before any model loads; ids are unique (checked there)
    problems = load_problems(args, seed=leap_args.seed)
    mine = [p for p in problems if shard_of(p.id, args.shard_count) == args.shard_index]
    decon_report: list[dict] = []
    if args.checks_contamination:
        index = build_index(args.decontam_benchmarks, args.decontam_ngram, args.local_files)
        mine, dropped = decontaminate(mine, index)
        decon_report = [d.to_dict() for d in dropped]
    wanted = {p.id for p in mine}

    out = Path(args.output_dir)
    raw_dir = out / "raw" / args.shard_name
    dataset_dir = out if args.shard_count == 1 else out / args.shard_name
    check_dataset_target(dataset_dir, merged=False, keep=("raw", WALL_TIME_JSON))
    settings = filter_settings(args, leap_args, protocol)
    spec = RunSpec(raw_dir, leap_args, mine, args.source, extra=run_extra(args, settings))
    with open_runs(model_args, [spec], lock_dir=raw_dir, backend=backend) as session:
        backend = session.backend
        tokenizer = backend.tokenizer if backend is not None else load_tokenizer(model_args)
        use_chat_template(tokenizer, leap_args.chat_template)  # as the engine renders prompts
        count_tokens = token_counter(tokenizer)
        pending = bool(session.pending[raw_dir])
        if pending:
            live = LiveCounts(settings, count_tokens, len(session.pending[raw_dir]), progress)
            try:
                session.run(
                    spec,
                    grade=make_grader(leap_args.task),
                    progress=progress,
                    concurrent_problems=args.concurrent_problems,
                    on_trace=live,
                )
            finally:
                live.close()

        traces = [t for t in TraceFile(spec.traces_path) if t.id in wanted]
        result = filter_traces(traces, settings, count_tokens)
        prompt = RowPrompt(
            protocol,
            tokenizer,
            leap_args.task,
            plain=args.sft_prompt == "plain",
            system_prompt=leap_args.system_prompt,
        )
        source = redact_urls(args.source)  # rows and stats are sent to the Hub: no credentials
        rows = [prompt.row(t, i, source) for t, i in result.kept]
        teacher = traces[0].model if traces else model_args.model
        stats = build_stats(
            args, leap_args, teacher, len(wanted), decon_report, result, settings, protocol
        )
        stats = redact_values(stats)
        write_dataset(dataset_dir, rows, stats, args.dataset_name)
        if pending:  # a rerun that only re-filters finished traces costs nothing worth counting
            clock.record(dataset_dir)
    if args.push_to_hub:
        from data_gen.hub import push_dataset

        push_dataset(dataset_dir, args.push_to_hub, private=args.private)
    return stats


def run_extra(args: GenerateArguments, settings: FilterSettings) -> dict[str, Any]:
    """What a raw shard folder records beside the engine's inputs: the shard and what makes a
    dataset row out of its traces (filters, prompt, decontamination), so one folder's dataset
    is always built one way."""
    return {
        "shard": args.shard,
        "filters": settings.as_dict(),
        "sft_prompt": args.sft_prompt,
        "decontamination": {
            "enabled": args.checks_contamination,
            "ngram": args.decontam_ngram,
            "benchmarks": list(args.decontam_benchmarks) if args.checks_contamination else [],
        },
    }


def build_stats(
    args: GenerateArguments,
    leap_args: LeapArguments,
    teacher: str,
    harvested: int,
    decon_report: list[dict],
    result: FilterResult,
    settings: FilterSettings,
    protocol: Protocol,
) -> dict:
    """``stats.json``: what made the data (for the card) and what every filter dropped.

    The protocol's wording is recorded whole, so training can take the summary
    tag of the protocol the data was made with (``training.dataset``).
    """
    checked = args.checks_contamination
    return {
        "source": args.source,
        "split": args.split,
        "teacher": teacher,
        "method": leap_args.method,
        "shards": [args.shard],
        "leap": {k: v for k, v in to_dict(leap_args).items() if k in CARD_LEAP_KEYS},
        "protocol": {
            "summary_open": protocol.summary_open,
            "summary_close": protocol.summary_close,
            **dataclasses.asdict(protocol),
        },
        "filters": settings.as_dict(),
        "sft_prompt": args.sft_prompt,
        "decontamination": {
            "enabled": checked,
            "ngram": args.decontam_ngram,
            "benchmarks": list(args.decontam_benchmarks) if checked else [],
            "local_files": dict(args.local_files or {}) if checked else {},
            "checked": harvested + len(decon_report) if checked else 0,
            "dropped": len(decon_report),
            "dropped_problems": decon_report,
        },
        "counts": result.stats(),
    }


class LiveCounts:
    """Running kept/dropped path counts of the problems finished in this run, on a bar.

    Only for display: the dataset's stats are recomputed from the whole raw file.
    """

    def __init__(
        self,
        settings: FilterSettings,
        count_tokens: Callable[[str], int],
        total: int,
        enabled: bool,
    ):
        from tqdm.auto import tqdm

        self.settings, self.count_tokens = settings, count_tokens
        self.result = FilterResult()
        self.bar = tqdm(
            total=total, desc="harvest", unit="problem", position=2, disable=not enabled
        )

    def __call__(self, trace: Trace) -> None:
        filter_trace(self.result, trace, self.settings, self.count_tokens)
        self.bar.update(1)
        self.bar.set_postfix(kept=len(self.result.kept), dropped=sum(self.result.dropped.values()))

    def close(self) -> None:
        self.bar.close()

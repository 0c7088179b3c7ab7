"""``run_inference``: problems in, ``traces.jsonl`` + ``summary.json`` out, resumable.

Called through :func:`inference.run_folder.open_runs` (lock, identity checks,
backend) by ``leapt infer``, ``leapt eval`` and ``leapt generate``.  Finished
problems already in ``traces.jsonl`` are skipped, each newly finished problem
is appended (and fsync'ed) the moment it ends, and ``summary.json`` is rebuilt
from the whole file, so an interrupted run rerun into the same directory ends
with every problem exactly once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from inference.args import LeapArguments, ModelArguments
from inference.backends.base import Backend
from inference.problems import Problem
from inference.trace import Trace, TraceFile
from leapt.config import ConfigError, to_dict
from leapt.files import atomic_write_text

logger = logging.getLogger(__name__)

Grader = Callable[[Problem, "str | None"], "bool | None"]


def default_concurrency(n: int) -> int:
    """Problems in flight at once: enough to fill a batch, few enough to finish early ones."""
    return max(1, 256 // max(1, n))


def run_inference(
    model_args: ModelArguments,
    leap_args: LeapArguments,
    problems: list[Problem],
    output_dir: str | Path,
    *,
    backend: Backend | None = None,
    grade: Grader | None = None,
    progress: bool = True,
    concurrent_problems: int | None = None,
    on_trace: Callable[[Trace], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``leap_args.method`` on every problem not yet in ``output_dir``; return the summary.

    ``concurrent_problems`` bounds the problems in flight (default: enough to fill a batch).
    ``on_trace`` sees each newly finished (graded) trace right after it is written,
    e.g. for ``leapt generate``'s running kept/dropped counts.
    ``settings`` are recorded in every trace's ``config`` beside the method's
    (e.g. ``leapt eval``'s option order, which the report states).
    """
    from inference.answers import answer_text, extract_answer
    from inference.engine import EngineContext, method_runner, run_problems
    from inference.methods import REGISTRY
    from inference.protocol import load_protocol

    started = time.monotonic()
    out = Path(output_dir)
    if leap_args.method not in REGISTRY:
        raise ConfigError(f"unknown method '{leap_args.method}' (key 'method')")
    protocol = load_protocol(leap_args.protocol)
    traces = TraceFile(out / "traces.jsonl")
    done = traces.done_ids()
    todo = [p for p in problems if p.id not in done]
    by_id = {p.id: p for p in problems}

    owned = backend is None and bool(todo)
    if todo and backend is None:
        from inference.backends import load_backend

        backend = load_backend(model_args)
    try:
        if todo:
            config = {**to_dict(leap_args), "backend": model_args.backend, **(settings or {})}
            ctx = EngineContext(backend, protocol, leap_args, config)
            bars = _Progress(len(problems), len(problems) - len(todo), progress)

            def on_done(trace: Trace) -> None:
                problem = by_id[trace.id]
                for path in trace.paths:
                    path.final_answer = extract_answer(answer_text(path), leap_args.task)
                    if grade is not None:
                        path.correct = grade(problem, path.final_answer)
                traces.append(trace)
                bars.problem_done()
                if on_trace is not None:
                    on_trace(trace)

            run_problems(
                todo,
                method_runner(leap_args.method),
                ctx,
                on_done,
                concurrent_problems or default_concurrency(leap_args.n),
                on_round=bars.round_done,
            )
            bars.close()
    finally:
        if owned and backend is not None:
            backend.close()

    wanted = set(by_id)
    finished = (t for t in traces if t.id in wanted)  # streamed: one trace in memory at a time
    summary = summarize(finished, len(problems), len(todo), time.monotonic() - started)
    summary["method"], summary["model"] = leap_args.method, model_args.model
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    if progress:
        logger.info("per-problem results:\n%s", format_table(summary))
    return summary


def summarize(traces: Iterable[Trace], total: int, ran: int, seconds: float) -> dict[str, Any]:
    """Counts, token totals and per-problem answers (and correctness when graded).

    Reads ``traces`` once and keeps only the per-problem rows, not the traces.
    """
    per_problem, paths = [], 0
    for t in traces:
        paths += len(t.paths)
        correct = [p.correct for p in t.paths]
        per_problem.append(
            {
                "id": t.id,
                "answer": t.answer,
                "answers": [p.final_answer for p in t.paths],
                "correct": correct if any(c is not None for c in correct) else None,
                "finish": [p.finish for p in t.paths],
                "generated_tokens": sum(p.generated_tokens for p in t.paths),
                "summary_tokens": sum(p.summary_tokens for p in t.paths),
                "peer_exchanges": len(t.routing),
            }
        )
    graded = [c for row in per_problem if row["correct"] for c in row["correct"] if c is not None]
    finished = len(per_problem)
    return {
        "problems": total,
        "finished": finished,
        "run_now": ran,
        "resumed": finished - ran if finished >= ran else 0,
        "paths": paths,
        "generated_tokens": sum(r["generated_tokens"] for r in per_problem),
        "summary_tokens": sum(r["summary_tokens"] for r in per_problem),
        "accuracy": sum(graded) / len(graded) if graded else None,
        "seconds": round(seconds, 1),
        "per_problem": per_problem,
    }


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of the run for the terminal."""
    rows = [("id", "gold", "answers", "correct", "tokens", "exchanges")]
    for r in summary["per_problem"]:
        correct = (
            "-" if r["correct"] is None else f"{sum(map(bool, r['correct']))}/{len(r['correct'])}"
        )
        answers = ", ".join("∅" if a is None else str(a) for a in r["answers"])
        rows.append(
            (
                r["id"],
                str(r["answer"]),
                answers,
                correct,
                str(r["generated_tokens"]),
                str(r["peer_exchanges"]),
            )
        )
    widths = [min(40, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell[:40].ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    acc = summary["accuracy"]
    lines.append(
        f"{summary['finished']}/{summary['problems']} problems, {summary['generated_tokens']} generated "
        f"tokens ({summary['summary_tokens']} in summaries)"
        + ("" if acc is None else f", path accuracy {acc:.3f}")
        + f", {summary['seconds']} s"
    )
    return "\n".join(lines)


class _Progress:
    """tqdm bars over problems and over generation rounds (turns), on stderr."""

    def __init__(self, total: int, already: int, enabled: bool):
        from tqdm.auto import tqdm

        self.problems = tqdm(
            total=total,
            initial=already,
            desc="problems",
            unit="problem",
            disable=not enabled,
            position=0,
        )
        self.rounds = tqdm(desc="rounds", unit="round", disable=not enabled, position=1)

    def problem_done(self) -> None:
        self.problems.update(1)

    def round_done(self, active: int, requests: int) -> None:
        self.rounds.update(1)
        self.rounds.set_postfix(active_problems=active, requests=requests)

    def close(self) -> None:
        self.rounds.close()
        self.problems.close()

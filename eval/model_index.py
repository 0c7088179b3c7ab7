"""`leapt eval` results as the Hub's ``model-index`` (one Pass@1 and one Cons@N per run).

Reads the ``results.json`` that :mod:`eval.report` writes and turns every
(benchmark, method) entry into ``huggingface_hub.EvalResult`` objects that
carry the settings the number was measured with (method, N, T, router,
top-k, token budget, problems), so a reader of the card can tell a LeaP
Cons@32 from an independent one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.report import RESULTS_JSON
from leapt.config import ConfigError
from leapt.markdown import markdown_table

#: trace-config keys shown beside each number
SETTINGS = ("method", "n", "T", "router", "top_k", "max_tokens", "temperature")


@dataclass
class MeasuredRun:
    """One (benchmark, method) entry of a results.json."""

    benchmark: str
    method: str
    model: str
    pass_at_1: float | None
    cons_at_n: float | None
    problems: int
    settings: dict[str, Any]
    source: Path


def find_results(dirs: list[Path]) -> list[Path]:
    """Every results.json in ``dirs`` (a folder or the file itself), checkpoints skipped."""
    found: list[Path] = []
    for d in dirs:
        if d.is_file():
            found.append(d)
            continue
        if not d.is_dir():
            raise ConfigError(f"eval_dir {d} does not exist")
        found += [
            p
            for p in sorted(d.rglob(RESULTS_JSON))
            if not any(part.startswith("checkpoint-") for part in p.relative_to(d).parts)
        ]
    return found


def read_runs(path: Path) -> list[MeasuredRun]:
    """The runs of one results.json, with errors naming the file."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = results["benchmarks"]
        return [
            MeasuredRun(
                benchmark=bench,
                method=method,
                model=m["model"],
                pass_at_1=m["pass@1"],
                cons_at_n=m["cons@n"],
                problems=m["problems"],
                settings={k: m["config"].get(k) for k in SETTINGS} | {"n": m["n"]},
                source=path,
            )
            for bench, entry in sorted(benchmarks.items())
            for method, m in sorted(entry["methods"].items())
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a `leapt eval` results.json ({exc!r})") from exc


def _pct(value: float) -> float:
    return round(100 * value, 2)


def eval_results(runs: list[MeasuredRun]) -> list:
    """``huggingface_hub.EvalResult`` entries for the card's model-index."""
    from huggingface_hub import EvalResult

    from eval.benchmarks import BENCHMARKS

    out = []
    for run in runs:
        bench = BENCHMARKS.get(run.benchmark)
        s = run.settings
        label = (
            f"{run.method}, N={s['n']}, T={s['T']}, router={s['router']}, budget={s['max_tokens']}"
        )
        common = {
            "task_type": "text-generation",
            "dataset_type": bench.source if bench and bench.source else run.benchmark,
            "dataset_name": run.benchmark,
            "metric_args": {**s, "problems": run.problems},
        }
        if bench and bench.source:
            common["dataset_split"] = bench.split
            if bench.subset:
                common["dataset_config"] = bench.subset
        if run.pass_at_1 is not None:
            out.append(
                EvalResult(
                    metric_type="pass@1",
                    metric_value=_pct(run.pass_at_1),
                    metric_name=f"Pass@1 ({label})",
                    **common,
                )
            )
        if run.cons_at_n is not None:
            out.append(
                EvalResult(
                    metric_type=f"cons@{s['n']}",
                    metric_value=_pct(run.cons_at_n),
                    metric_name=f"Cons@{s['n']} ({label})",
                    **common,
                )
            )
    return out


def results_table(runs: list[MeasuredRun]) -> str:
    """The same numbers as a Markdown table for the card's body."""
    header = ("benchmark", "method", "N", "T", "router", "top-k", "budget (tokens)", "problems")
    header += ("Pass@1 (%)", "Cons@N (%)")
    rows = []
    for run in runs:
        s = run.settings
        rows.append(
            [
                run.benchmark,
                run.method,
                s["n"],
                s["T"],
                s["router"],
                s["top_k"],
                s["max_tokens"],
                run.problems,
                "-" if run.pass_at_1 is None else f"{_pct(run.pass_at_1):.2f}",
                "-" if run.cons_at_n is None else f"{_pct(run.cons_at_n):.2f}",
            ]
        )
    return "\n".join(markdown_table(header, rows))

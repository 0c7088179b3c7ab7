"""`leapt eval` results as the Hub's ``model-index`` and ``.eval_results`` leaderboard entries.

Reads the ``results.json`` that :mod:`eval.report` writes and turns every
(benchmark, method) entry into ``huggingface_hub.EvalResult`` objects (the
card's ``model-index``: one Pass@1 and one Cons@N per run) that carry the
settings the number was measured with (method, N, T, router, top-k, token
budget, problems), so a reader of the card can tell a LeaP Cons@32 from an
independent one.  The Hub's newer leaderboard format,
``.eval_results/<benchmark>.yaml`` (``huggingface_hub.EvalResultEntry``),
gets the Pass@1 of every run on a benchmark that is a Hub dataset, the
settings in its ``notes``.
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


def _hub_dataset(benchmark: str) -> Any:
    """The registry entry of ``benchmark`` when its problems are a Hub dataset, else None."""
    from eval.benchmarks import BENCHMARKS

    bench = BENCHMARKS.get(benchmark)
    return bench if bench and bench.source and "/" in bench.source else None


def _leaderboard_entry(run: MeasuredRun) -> Any:
    """The ``huggingface_hub.EvalResultEntry`` of a run's Pass@1 (None off a Hub benchmark)."""
    from huggingface_hub import EvalResultEntry

    bench = _hub_dataset(run.benchmark)
    if bench is None or run.pass_at_1 is None:
        return None
    s = run.settings
    notes = (
        f"Pass@1 measured with leapt eval: method {run.method}, N={s['n']}, T={s['T']}, "
        f"router={s['router']}, top-k={s['top_k']}, budget={s['max_tokens']} tokens, "
        f"temperature={s['temperature']}, {run.problems} problems"
    )
    return EvalResultEntry(
        dataset_id=bench.source,
        task_id=bench.subset or "default",
        value=_pct(run.pass_at_1),
        notes=notes,
    )


def eval_result_entries(runs: list[MeasuredRun]) -> list:
    """The leaderboard entries of ``runs`` (Pass@1 of each run on a Hub benchmark)."""
    return [entry for run in runs if (entry := _leaderboard_entry(run)) is not None]


def eval_result_files(runs: list[MeasuredRun]) -> dict[str, str]:
    """``{".eval_results/<benchmark>.yaml": text}``: the leaderboard entries, one file per benchmark."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml
    from huggingface_hub.constants import EVAL_RESULTS_FOLDER

    files: dict[str, list] = {}
    for run in runs:
        entry = _leaderboard_entry(run)
        if entry is not None:
            files.setdefault(f"{EVAL_RESULTS_FOLDER}/{run.benchmark}.yaml", []).append(entry)
    return {
        name: yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False)
        for name, entries in files.items()
    }


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

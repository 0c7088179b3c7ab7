"""A `leapt eval` run's traces as a "details" dataset: one row per reasoning path.

What open-r1 and lighteval publish beside a score (``details-<model>``
datasets) so that anyone can read what the model wrote for each problem and
check the grading: here one parquet file per (benchmark, method), each a
config of the dataset, with the problem, the method and its settings, the
path's full text (prompt, model, peer blocks), its answer, the gold answer
and the verdict.  Nothing is regenerated or regraded: verdicts are the ones
the traces hold (graded once, as `leapt report` reads them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.grading import grade_trace
from eval.report import Run, discover_runs
from leapt.config import ConfigError
from leapt.markdown import markdown_table
from leapt.redact import public_name, redact_values

#: the split every config's rows are in (lighteval's details name their newest split so)
SPLIT = "latest"
COLUMNS = (
    "problem_id",
    "problem",
    "options",
    "method",
    "seed",
    "settings",
    "path_index",
    "text",
    "answer",
    "gold",
    "correct",
    "finish",
    "generated_tokens",
    "model",
)


@dataclass
class DetailsConfig:
    """One config of the dataset: the paths of one method on one benchmark."""

    name: str
    benchmark: str
    method: str
    rows: list[dict[str, Any]]

    @property
    def data_file(self) -> str:
        return f"data/{self.name}.parquet"


def _config_name(benchmark: str, method: str) -> str:
    return re.sub(r"[^\w-]+", "_", f"{benchmark}_{method}").strip("_")


def _public_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A trace's settings as published: a protocol file by its name, URLs without credentials."""
    settings = redact_values(config)
    if settings.get("protocol"):
        settings["protocol"] = public_name(settings["protocol"])
    return settings


def _rows(run: Run) -> list[dict[str, Any]]:
    seeds = run.seeds or {None: run.traces}
    rows = []
    for seed, traces in sorted(seeds.items(), key=lambda item: -1 if item[0] is None else item[0]):
        for trace in traces:
            grade_trace(trace)
            settings = json.dumps(_public_settings(trace.config), sort_keys=True)
            for index, path in enumerate(trace.paths):
                rows.append(
                    {
                        "problem_id": trace.id,
                        "problem": trace.problem,
                        "options": trace.options,
                        "method": trace.method,
                        "seed": seed if seed is not None else trace.config.get("seed"),
                        "settings": settings,
                        "path_index": index,
                        "text": path.text(),
                        "answer": path.final_answer,
                        "gold": trace.answer,
                        "correct": path.correct,
                        "finish": path.finish,
                        "generated_tokens": path.generated_tokens,
                        "model": public_name(trace.model) if trace.model else "",
                    }
                )
    return rows


def details_configs(run_dir: Path) -> list[DetailsConfig]:
    """The configs of a run folder's traces; a folder without eval traces is an error."""
    configs = [
        DetailsConfig(
            _config_name(run.benchmark, run.method), run.benchmark, run.method, _rows(run)
        )
        for run in discover_runs([run_dir])
    ]
    if not configs:
        raise ConfigError(
            f"{run_dir} holds no `leapt eval` traces (<benchmark>/<method>/traces.jsonl); "
            "nothing to publish (key 'details')"
        )
    return configs


def write_details(configs: Sequence[DetailsConfig], folder: Path) -> list[str]:
    """Write each config's parquet file under ``folder``; returns their paths relative to it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = []
    for config in configs:
        path = folder / config.data_file
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([{c: row[c] for c in COLUMNS} for row in config.rows])
        pq.write_table(table, path)
        written.append(config.data_file)
    return written


def _pass_at_1(rows: list[dict[str, Any]]) -> str:
    graded = [row["correct"] for row in rows if row["correct"] is not None]
    return f"{100 * sum(graded) / len(graded):.2f}" if graded else "-"


def details_card(configs: Sequence[DetailsConfig], repo_id: str) -> str:
    """The dataset card: one config per (benchmark, method), what each row holds, Pass@1 per config."""
    name = repo_id.split("/")[-1]
    models = sorted({row["model"] for c in configs for row in c.rows if row["model"]})
    front = ["---", f"pretty_name: {json.dumps(name)}", "tags:"]
    front += [f"- {tag}" for tag in ("leapt", "leap", "evaluation", "details")]
    front.append("configs:")
    for config in configs:
        front += [
            f"- config_name: {config.name}",
            "  data_files:",
            f"  - split: {SPLIT}",
            f"    path: {config.data_file}",
        ]
    front.append("---")
    rows = [
        (
            c.name,
            c.benchmark,
            c.method,
            len({row["problem_id"] for row in c.rows}),
            len(c.rows),
            _pass_at_1(c.rows),
        )
        for c in configs
    ]
    table = markdown_table(
        ("config", "benchmark", "method", "problems", "paths", "Pass@1 (%)"), rows
    )
    first = configs[0].name
    body = [
        f"# {name}",
        "",
        "Every reasoning path of a `leapt eval` run (LeaP: Learning from Peers, arXiv "
        "2505.07787), one row per path, so that each score can be read and checked"
        + (f". Model: {', '.join(f'`{m}`' for m in models)}." if models else "."),
        "",
        *table,
        "",
        "Pass@1 here is the mean verdict over the paths (all seeds); `results.json` of the run "
        "holds the reported numbers with their intervals.",
        "",
        "## Columns",
        "",
        "- `problem_id`, `problem`, `options` (choice benchmarks), `gold`: the problem;",
        "- `method`, `seed`, `settings` (JSON: N, T, router, top-k, budget, sampling, protocol "
        "switches): how the path was made;",
        "- `path_index`, `text` (the path in order: engine prompt, the model's words, peer "
        "blocks), `finish`, `generated_tokens`;",
        "- `answer` (extracted from the path), `correct` (its verdict; empty when ungradable).",
        "",
        "```python",
        "from datasets import load_dataset",
        f'rows = load_dataset("{repo_id}", "{first}", split="{SPLIT}")',
        "```",
        "",
    ]
    return "\n".join([*front, "", *body])

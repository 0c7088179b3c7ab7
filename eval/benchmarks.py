"""The benchmarks of the LeaP paper: where each lives on the Hub and how its columns map.

Every entry can be replaced by a local json/jsonl/parquet file (``local=``;
the ``local_files`` mapping of ``leapt eval`` and ``leapt generate``), read by the
same ``inference.problems.load_problems`` as ``leapt infer``; a local file uses the
canonical columns ``problem``, ``answer`` and optionally ``id`` and ``options``.

Multiple choice (GPQA Diamond): options are shuffled deterministically per
problem and seed (:func:`eval.grading.shuffle_options`), and the problem's
``answer`` becomes the gold *letter*.  Where the correct option is found:
a letter ``answer`` with options already in place is kept as is; an
``answer`` equal to one of the options marks that option; otherwise the first
option is the correct one (GPQA's "Correct Answer" column comes first).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from eval.grading import choice_letter, shuffle_options
from inference.args import DataArguments
from inference.problems import Problem, load_problems
from leapt.config import ConfigError, check_choice


@dataclass(frozen=True)
class Benchmark:
    """One registry entry: where its problems come from, how its columns map, its answer format."""

    name: str
    task: str
    #: Hub dataset id, or a built-in source (``synthetic``, ``builtin:easy``); None: local file only
    source: str | None
    split: str = "train"
    subset: str | None = None
    #: Hub column names mapped onto problem/answer/id (as for ``leapt infer --columns``)
    columns: dict[str, str] = field(default_factory=dict)
    #: choice benchmarks stored one option per column: the correct one first
    option_columns: tuple[str, ...] = ()
    note: str = ""
    #: seed and count of a ``synthetic`` source (its problems are made, not downloaded)
    problem_seed: int = 0
    num_synthetic: int = 8
    synthetic_ops: int = 2


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "aime24",
            "math",
            "HuggingFaceH4/aime_2024",
            columns={"problem": "problem", "answer": "answer", "id": "id"},
            note="AIME 2024 I+II",
        ),
        Benchmark(
            "aime25",
            "math",
            "yentinglin/aime_2025",
            columns={"problem": "problem", "answer": "answer", "id": "id"},
            note="AIME 2025 I+II",
        ),
        Benchmark(
            "aimo25",
            "math",
            None,
            note="the 10 public reference problems of the AIMO Progress Prize 2 (Kaggle); no "
            "canonical Hub copy exists, so pass a local file with problem/answer[/id] columns",
        ),
        Benchmark(
            "gpqa_diamond",
            "choice",
            "Idavidrein/gpqa",
            subset="gpqa_diamond",
            columns={"problem": "Question", "id": "Record ID"},
            option_columns=(
                "Correct Answer",
                "Incorrect Answer 1",
                "Incorrect Answer 2",
                "Incorrect Answer 3",
            ),
            note="gated: accept the terms on the Hub and set HF_TOKEN",
        ),
        Benchmark(
            "builtin_easy",
            "math",
            "builtin:easy",
            note="four one-step word problems shipped with leapt, for smoke runs",
        ),
        Benchmark(
            "synthetic",
            "math",
            "synthetic",
            note="eight seeded two-step arithmetic problems, for smoke runs",
        ),
        Benchmark(
            "synthetic_heldout",
            "math",
            "synthetic",
            problem_seed=1_000_003,
            num_synthetic=64,
            note="64 seeded two-step arithmetic problems from their own seed, held out from "
            "`leapt generate --source synthetic` data (decontaminate against it to prove it)",
        ),
        Benchmark(
            "addition_heldout",
            "math",
            "synthetic",
            problem_seed=1_000_003,
            num_synthetic=64,
            synthetic_ops=1,
            note="64 seeded one-step additions from their own seed, held out from "
            "`leapt generate --source synthetic --synthetic_ops 1` data (the e2e run's)",
        ),
    )
}


def get_benchmark(name: str, key: str = "benchmarks") -> Benchmark:
    """The registry entry ``name``, or a ConfigError naming ``key`` and the valid names."""
    check_choice(key, name, sorted(BENCHMARKS), what="benchmark")
    return BENCHMARKS[name]


def check_local_files(local_files: dict | None, exist: bool = True) -> None:
    """Refuse a ``local_files`` entry for an unknown benchmark or (``exist``) a missing file.

    ``leapt generate`` checks the files only when it reads them, before any model
    loads, so its shipped configs parse on a machine without the data.
    """
    for name, path in (local_files or {}).items():
        get_benchmark(name, key="local_files")  # entries for unselected benchmarks are allowed
        if exist:
            _require_local_file(name, path)


def _require_local_file(name: str, path: str) -> None:
    if not Path(path).is_file():
        raise ConfigError(
            f"local file {path} for benchmark '{name}' does not exist (key 'local_files')"
        )


def load_benchmark(
    name: str, local: str | None = None, limit: int | None = None, seed: int = 0
) -> list[Problem]:
    """Problems of benchmark ``name`` from the Hub, or from the local file ``local``."""
    bench = get_benchmark(name)
    if local is not None:
        _require_local_file(name, local)
        problems = load_problems(DataArguments(source=str(local), limit=limit), columns_key=None)
    elif bench.source is None:
        raise ConfigError(f"benchmark '{name}' has no Hub source: {bench.note} (key 'local_files')")
    elif bench.option_columns:
        problems = _hub_choice_problems(bench, limit)
    else:
        problems = load_problems(
            DataArguments(
                source=bench.source,
                split=bench.split,
                subset=bench.subset,
                columns=dict(bench.columns),
                limit=limit,
                num_synthetic=bench.num_synthetic,
                synthetic_ops=bench.synthetic_ops,
            ),
            seed=bench.problem_seed,
        )
    if bench.task == "choice":
        problems = [_with_shuffled_options(p, seed, name) for p in problems]
    return problems


def _hub_choice_problems(bench: Benchmark, limit: int | None) -> list[Problem]:
    """Rows of a Hub dataset that stores one option per column, options gathered in order.

    ``load_problems`` maps one ``options`` column holding a list; GPQA spreads
    its options over four columns, so they are gathered here.
    """
    from datasets import load_dataset

    try:
        rows = load_dataset(bench.source, bench.subset, split=bench.split)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"cannot load benchmark '{bench.name}' ({bench.source}): {first}"
        ) from exc
    wanted = [bench.columns["problem"], *bench.option_columns]
    missing = [c for c in wanted if c not in rows.column_names]
    if missing:
        raise ConfigError(f"column '{missing[0]}' missing in {bench.source} ({bench.subset})")
    id_col = bench.columns.get("id")
    problems = []
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            break
        problems.append(
            Problem(
                id=str(row[id_col]) if id_col and row.get(id_col) else f"{bench.name}-{i}",
                problem=str(row[bench.columns["problem"]]).strip(),
                answer=None,
                options=[str(row[c]).strip() for c in bench.option_columns],
            )
        )
    return problems


def _with_shuffled_options(problem: Problem, seed: int, name: str) -> Problem:
    """The problem with options in their seeded order and the gold letter as ``answer``."""
    if not problem.options:
        raise ConfigError(f"problem '{problem.id}' of '{name}' has no options (column 'options')")
    if problem.answer is not None and choice_letter(problem.answer) is not None:
        return problem  # options already placed, gold letter given
    options = list(problem.options)
    correct = options.index(problem.answer) if problem.answer in options else 0
    shuffled, letter = shuffle_options(options, key=problem.id, seed=seed, correct_index=correct)
    return dataclasses.replace(problem, options=shuffled, answer=letter)

"""The benchmarks of the LeaP paper: where each lives on the Hub and how its columns map.

Every entry can be replaced by a local json/jsonl/parquet file (``local=``;
the ``local_files`` mapping of ``leapt eval`` and ``leapt generate``), read by the
same ``inference.problems.load_problems`` as ``leapt infer``; a local file uses the
canonical columns ``problem``, ``answer`` and optionally ``id`` and ``options``
(the shapes a choice file may take: ``inference.problems``).

Multiple choice (GPQA Diamond): wherever the file put the gold option (a
letter, an index, its text; none: the first), the options are shuffled
deterministically per problem and seed (:func:`eval.grading.shuffle_options`)
unless ``shuffle_options`` is false, and the problem's ``answer`` is the gold
*letter* of the order shown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from eval.grading import choice_letter, shuffle_options
from inference.answers import OPTION_LETTERS
from inference.args import DataArguments
from inference.problems import Problem, load_problems, read_rows
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
    #: Hub column names mapped onto problem/answer/id/options (as for ``leapt infer
    #: --columns``); ``options`` may list one column per option (GPQA: the correct one first)
    columns: dict[str, str | list[str]] = field(default_factory=dict)
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
            "math500",
            "math",
            "HuggingFaceH4/MATH-500",
            split="test",
            columns={"problem": "problem", "answer": "answer", "id": "unique_id"},
            note="500 MATH test problems (the subset of Lightman et al.), as R1-style reports quote",
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
            columns={
                "problem": "Question",
                "id": "Record ID",
                "options": [
                    "Correct Answer",
                    "Incorrect Answer 1",
                    "Incorrect Answer 2",
                    "Incorrect Answer 3",
                ],
            },
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
    name: str,
    local: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    shuffle: bool = True,
) -> list[Problem]:
    """Problems of benchmark ``name`` from the Hub, or from the local file ``local``.

    Choice problems have their options shuffled with ``seed`` unless ``shuffle``
    is False (then they keep the file's order).
    """
    bench = get_benchmark(name)
    if local is not None:
        _require_local_file(name, local)
        problems = load_problems(
            DataArguments(source=str(local), limit=limit, columns=_local_columns(bench, local)),
            columns_key=None,
        )
    elif bench.source is None:
        raise ConfigError(f"benchmark '{name}' has no Hub source: {bench.note} (key 'local_files')")
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
        problems = [_placed_options(p, seed, name, shuffle) for p in problems]
    return problems


def _local_columns(bench: Benchmark, local: str) -> dict:
    """The Hub copy's column mapping for a file exported from it, else the canonical names.

    A file that has the Hub's problem column (e.g. GPQA's ``Question``) and no
    ``problem`` column is read as the Hub copy is.
    """
    hub_problem = bench.columns.get("problem")
    if not hub_problem or hub_problem == "problem":
        return {}
    rows = read_rows(DataArguments(source=str(local)))
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    return dict(bench.columns) if hub_problem in first and "problem" not in first else {}


def _placed_options(problem: Problem, seed: int, name: str, shuffle: bool) -> Problem:
    """The problem with options in their seeded order (or the file's) and the gold letter."""
    if not problem.options:
        raise ConfigError(f"problem '{problem.id}' of '{name}' has no options (column 'options')")
    if not shuffle:
        return problem
    gold = OPTION_LETTERS.index(choice_letter(problem.answer) or "A")
    shuffled, letter = shuffle_options(
        problem.options, key=problem.id, seed=seed, correct_index=gold
    )
    return dataclasses.replace(problem, options=shuffled, answer=letter)

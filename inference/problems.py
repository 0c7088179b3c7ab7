"""Where problems come from: local files, Hub datasets, and built-in sets for smoke runs.

Every source ends as a list of :class:`Problem`.  A column mapping renames a
dataset's columns onto ``problem``/``answer``/``options``/``id``; a missing
column or unreadable file is a :class:`ConfigError` naming it, raised before
any model is loaded.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.args import DataArguments
from leapt.config import ConfigError

FIELDS = ("problem", "answer", "options", "id")


@dataclass
class Problem:
    """One question; ``options`` only for multiple-choice tasks."""

    id: str
    problem: str
    answer: str | None
    options: list[str] | None = None


#: very easy word problems with integer answers, for the embedded demo
EASY_PROBLEMS = [
    Problem("easy-1", "Tom has 3 apples and buys 4 more. How many apples does he have now?", "7"),
    Problem(
        "easy-2",
        "A box holds 6 eggs. How many eggs are in 2 full boxes?",
        "12",
    ),
    Problem(
        "easy-3",
        "Sara had 10 pencils and gave 3 of them to a friend. How many pencils does she have left?",
        "7",
    ),
    Problem(
        "easy-4",
        "There are 5 birds on a fence and 5 more land beside them. How many birds are on the fence?",
        "10",
    ),
]


def synthetic_problems(n: int, seed: int, ops: int = 2) -> list[Problem]:
    """``n`` distinct seeded arithmetic problems with integer answers.

    ``ops`` 2 (``Compute (a ± b) * c.``) is beyond the embedded 135M model;
    ``ops`` 1 (``Compute a + b.``) is one it solves now and then, so a teacher
    run keeps some correct paths.  The kinds have their own ids.
    """
    rng = random.Random(seed)
    problems: dict[str, Problem] = {}
    while len(problems) < n:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        if ops == 1:
            text, value, kind = f"Compute {a} + {b}.", a + b, "addition"
        else:
            c, op = rng.randint(2, 9), rng.choice(["+", "-"])
            value = (a + b) * c if op == "+" else (a - b) * c
            text, kind = f"Compute ({a} {op} {b}) * {c}.", "synthetic"
        if text not in problems:
            problems[text] = Problem(f"{kind}-{seed}-{len(problems)}", text, str(value))
    return list(problems.values())


def load_problems(
    data_args: DataArguments, seed: int = 0, columns_key: str | None = "columns"
) -> list[Problem]:
    """All problems named by ``data_args`` (after ``limit``); none at all is a ConfigError.

    ``columns_key`` is the option that maps a file's column names, named in
    the missing-column message; None for a caller that has no such option.
    """
    source = data_args.source
    if source == "builtin:easy":
        problems = [Problem(**vars(p)) for p in EASY_PROBLEMS]
    elif source == "synthetic":
        problems = synthetic_problems(data_args.num_synthetic, seed, data_args.synthetic_ops)
    elif source.startswith("builtin:"):
        raise ConfigError(
            f"unknown built-in problem set '{source}' (key 'source'; use builtin:easy)"
        )
    else:
        rows = _read_rows(data_args)
        problems = _to_problems(rows, data_args.columns or {}, source, columns_key)
    if data_args.limit is not None:
        problems = problems[: data_args.limit]
    if not problems:
        raise ConfigError(f"the problem source {source} holds no problems (key 'source')")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"problem id '{duplicate}' appears twice in {source} (column 'id')")
    return problems


def _read_rows(data_args: DataArguments) -> list[dict[str, Any]]:
    path = Path(data_args.source)
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".parquet") or path.exists():
        try:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                return pq.read_table(path).to_pylist()
            text = path.read_text(encoding="utf-8")
            if suffix == ".jsonl":
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read problems file {path}: {exc}") from exc
        except Exception as exc:  # pyarrow raises its own error types
            raise ConfigError(f"cannot read problems file {path}: {exc}") from exc
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise ConfigError(f"problems file {path} must hold a list of records")
        return data
    return _hub_rows(data_args)


def _hub_rows(data_args: DataArguments) -> list[dict[str, Any]]:
    from datasets import load_dataset

    try:
        ds = load_dataset(data_args.source, data_args.subset, split=data_args.split)
    except Exception as exc:
        raise ConfigError(
            f"cannot load dataset '{data_args.source}' (key 'source'): {str(exc).splitlines()[0]}"
        ) from exc
    return list(ds)


def _to_problems(
    rows: list[dict[str, Any]], columns: dict[str, str], source: str, columns_key: str | None
) -> list[Problem]:
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown field '{unknown[0]}' in 'columns' (valid: {', '.join(FIELDS)})")
    names = {f: columns.get(f, f) for f in FIELDS}
    problems = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"record {i} of {source} is not an object")
        for required in ("problem", "answer"):
            if names[required] not in row:
                fix = (
                    f"map it with --{columns_key} {required}=NAME"
                    if columns_key
                    else f"the file needs a '{required}' field in every record"
                )
                raise ConfigError(
                    f"column '{names[required]}' missing in {source} (record {i}); {fix}"
                )
        options = row.get(names["options"])
        answer = row[names["answer"]]
        problems.append(
            Problem(
                id=str(row.get(names["id"], i)),
                problem=str(row[names["problem"]]),
                answer=None if answer is None else str(answer),
                options=[str(o) for o in options] if options is not None else None,
            )
        )
    return problems

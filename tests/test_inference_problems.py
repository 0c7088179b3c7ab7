"""Problem sources: local files with a column mapping, built-in sets, seeded synthetic."""

from __future__ import annotations

import json

import pytest

from inference.args import DataArguments
from inference.problems import load_problems, synthetic_problems
from leapt.config import ConfigError

ROWS = [
    {"question": "1 + 1?", "solution": "2", "qid": "a", "choices": ["1", "2", "3", "4"]},
    {"question": "2 + 2?", "solution": "4", "qid": "b", "choices": ["4", "5", "6", "7"]},
]
MAPPING = {"problem": "question", "answer": "solution", "id": "qid", "options": "choices"}


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_local_files_with_column_mapping(tmp_path, suffix):
    path = tmp_path / f"problems{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(ROWS))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(ROWS), path)
    problems = load_problems(DataArguments(source=str(path), columns=MAPPING))
    assert [(p.id, p.problem, p.answer) for p in problems] == [
        ("a", "1 + 1?", "B"),  # a choice problem's gold is the letter of its option
        ("b", "2 + 2?", "A"),
    ]
    assert problems[1].options == ["4", "5", "6", "7"]
    assert len(load_problems(DataArguments(source=str(path), columns=MAPPING, limit=1))) == 1


def test_missing_column_names_it(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"question": "x", "answer": "1"}) + "\n")
    with pytest.raises(ConfigError, match="column 'problem'"):
        load_problems(DataArguments(source=str(path)))


def test_builtin_and_synthetic_sets():
    easy = load_problems(DataArguments(source="builtin:easy"))
    assert len(easy) >= 3 and all(p.answer.isdigit() for p in easy)
    first, again = synthetic_problems(5, seed=1), synthetic_problems(5, seed=1)
    assert first == again and first != synthetic_problems(5, seed=2)
    for p in first:  # the stated answer is the value of the stated expression
        expr = p.problem.removeprefix("Compute ").removesuffix(".")
        assert str(eval(expr)) == p.answer  # noqa: S307 - our own generated arithmetic

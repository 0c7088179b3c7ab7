"""Local benchmark files in the shapes groups hold them all load into the same problems."""

from __future__ import annotations

import json
import logging
import re

import pytest

from eval.benchmarks import load_benchmark
from inference.args import DataArguments
from inference.problems import load_problems
from inference.protocol import load_protocol
from leapt.config import ConfigError

QUESTIONS = [
    (
        "q1",
        "Which gas makes up most of Earth's atmosphere?",
        ["Oxygen", "Nitrogen", "Argon", "CO2"],
        1,
    ),
    ("q2", "What is the chemical symbol of sodium?", ["Na", "So", "Sd", "S"], 0),
    ("q3", "How many chambers has a human heart?", ["2", "3", "4", "6"], 2),
    ("q4", "Which planet is largest?", ["Mars", "Venus", "Earth", "Jupiter"], 3),
]
LETTERS = "ABCD"


def _shape(kind: str) -> tuple[list[dict], dict | None]:
    """The four questions as one export shape: (rows, column mapping)."""
    rows = []
    for qid, text, options, gold in QUESTIONS:
        row: dict = {"id": qid, "problem": text, "source": "quiz", "difficulty": 2}
        if kind == "list+letter":
            row |= {"options": options, "answer": LETTERS[gold]}
        elif kind == "list+index":
            row |= {"options": options, "answer": gold}
        elif kind == "list+text":
            row |= {"options": options, "answer": options[gold]}
        elif kind == "mapping+letter":  # keys out of order on purpose
            row |= {
                "options": dict(reversed(list(zip(LETTERS, options, strict=True)))),
                "answer": f"({LETTERS[gold]})",
            }
        elif kind == "columns+letter":
            row |= dict(zip(LETTERS, options, strict=True)) | {"answer": LETTERS[gold].lower()}
        elif kind == "labelled+text":
            row |= {
                "options": [f"{c}) {o}" for c, o in zip(LETTERS, options, strict=True)],
                "answer": f"{LETTERS[gold]}) {options[gold]}",
            }
        elif kind == "gpqa_columns":  # correct option first, no answer column
            others = [o for i, o in enumerate(options) if i != gold]
            row |= {"right": options[gold], "w1": others[0], "w2": others[1], "w3": others[2]}
        rows.append(row)
    mapping = {"options": ["right", "w1", "w2", "w3"]} if kind == "gpqa_columns" else None
    return rows, mapping


SHAPES = [
    "list+letter",
    "list+index",
    "list+text",
    "mapping+letter",
    "columns+letter",
    "labelled+text",
]


def _write(tmp_path, rows: list[dict], suffix: str):
    path = tmp_path / f"bench{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps({"data": rows}))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _file_order(kind: str, tmp_path) -> list:
    rows, mapping = _shape(kind)
    return load_problems(
        DataArguments(source=str(_write(tmp_path, rows, ".jsonl")), columns=mapping)
    )


@pytest.mark.parametrize("kind", SHAPES)
def test_every_shape_gives_the_same_problems(tmp_path, kind):
    (tmp_path / "ref").mkdir()
    reference = _file_order("list+letter", tmp_path / "ref")
    problems = _file_order(kind, tmp_path)
    assert problems == reference
    assert [p.options for p in problems] == [q[2] for q in QUESTIONS]  # texts, never the labels
    assert [p.answer for p in problems] == [LETTERS[q[3]] for q in QUESTIONS]
    shuffled = load_benchmark(
        "gpqa_diamond", local=str(_write(tmp_path, _shape(kind)[0], ".parquet")), seed=4
    )
    ref_shuffled = load_benchmark(
        "gpqa_diamond", local=str(_write(tmp_path, _shape("list+letter")[0], ".json")), seed=4
    )
    assert shuffled == ref_shuffled
    for p, (_, _, options, gold) in zip(shuffled, QUESTIONS, strict=True):
        assert sorted(p.options) == sorted(options)
        assert p.options[LETTERS.index(p.answer)] == options[gold]


def test_separate_option_columns_by_mapping(tmp_path):
    rows, mapping = _shape("gpqa_columns")
    path = _write(tmp_path, rows, ".jsonl")
    gpqa_names = [
        "Correct Answer",
        "Incorrect Answer 1",
        "Incorrect Answer 2",
        "Incorrect Answer 3",
    ]
    export = [  # a file exported from the Hub copy keeps its column names
        {"Record ID": r["id"], "Question": r["problem"], "Subdomain": "x"}
        | dict(zip(gpqa_names, (r["right"], r["w1"], r["w2"], r["w3"]), strict=True))
        for r in rows
    ]
    problems = load_benchmark("gpqa_diamond", local=str(_write(tmp_path, export, ".json")), seed=4)
    assert [p.id for p in problems] == [q[0] for q in QUESTIONS]
    for p, (_, _, options, gold) in zip(problems, QUESTIONS, strict=True):
        assert sorted(p.options) == sorted(options)
        assert p.options[LETTERS.index(p.answer)] == options[gold]
    # a mapping of columns goes through --columns like any other
    raw = load_problems(DataArguments(source=str(path), columns=mapping))
    assert {p.answer for p in raw} == {"A"}


def test_prompt_shows_option_texts_not_file_letters(tmp_path):
    rows, _ = _shape("mapping+letter")
    (problem,) = load_benchmark(
        "gpqa_diamond", local=str(_write(tmp_path, rows[:1], ".jsonl")), seed=0
    )
    text = load_protocol(None).user_message(problem.problem, problem.options, "choice")
    for letter, option in zip(LETTERS, problem.options, strict=True):
        assert f"{letter}) {option}\n" in text + "\n"
    assert not re.search(r"^[A-D]\) \(?[A-D]\)?$", text, re.M)  # no option is a bare letter


def test_options_are_shuffled_unless_told_not_to(tmp_path):
    rows, _ = _shape("list+letter")
    path = str(_write(tmp_path, rows, ".jsonl"))
    shuffled = load_benchmark("gpqa_diamond", local=path, seed=0)
    kept = load_benchmark("gpqa_diamond", local=path, seed=0, shuffle=False)
    assert [p.options for p in kept] == [q[2] for q in QUESTIONS]
    assert [p.answer for p in kept] == [LETTERS[q[3]] for q in QUESTIONS]
    assert [p.options for p in shuffled] != [p.options for p in kept]
    # a gold letter in the file no longer pins the order: the letter follows its option
    assert load_benchmark("gpqa_diamond", local=path, seed=1) != shuffled


def test_gold_in_one_position_for_every_problem_warns(tmp_path, caplog):
    rows, _ = _shape("gpqa_columns")
    fixed = [
        {
            "id": r["id"],
            "problem": r["problem"],
            "options": [r["right"], r["w1"], r["w2"], r["w3"]],
            "answer": "A",
        }
        for r in rows
    ]
    with caplog.at_level(logging.WARNING):
        load_benchmark("gpqa_diamond", local=str(_write(tmp_path, fixed, ".jsonl")))
    assert any("gold option at position A" in r.getMessage() for r in caplog.records)
    caplog.clear()
    varied, _ = _shape("list+index")
    with caplog.at_level(logging.WARNING):
        load_benchmark("gpqa_diamond", local=str(_write(tmp_path, varied, ".json")))
    assert not any("gold option" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("gold", ["E", 7, "Pluto", "", None])
def test_a_gold_that_is_no_option_names_the_record(tmp_path, gold):
    """A missing gold (a gold column under another name) must not silently become option A."""
    rows, _ = _shape("list+letter")
    rows[2]["answer"] = gold
    if gold is None:  # no gold column at all (not an explicit null, which means the first)
        del rows[2]["answer"]
    path = _write(tmp_path, rows, ".jsonl")
    with pytest.raises(ConfigError, match="record 2 of .*column 'answer'"):
        load_problems(DataArguments(source=str(path)))


def test_csv_like_columns_stop_at_the_first_missing_letter(tmp_path):
    rows = [{"problem": "Pick one.", "A": "x", "B": "y", "D": "z", "answer": "B"}]
    (problem,) = load_problems(DataArguments(source=str(_write(tmp_path, rows, ".jsonl"))))
    assert problem.options == ["x", "y"] and problem.answer == "B"


MATH_SHAPES = {
    "int answers, id": [
        {"id": "p0", "problem": "1+1?", "answer": 2},
        {"id": "p1", "problem": "2+3?", "answer": 5},
    ],
    "str answers, id, extras": [
        {"id": "p0", "problem": "1+1?", "answer": "2", "solution": "...", "level": 1},
        {"id": "p1", "problem": "2+3?", "answer": "5", "url": "", "year": 2024},
    ],
}


@pytest.mark.parametrize("shape", sorted(MATH_SHAPES))
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_math_files(tmp_path, shape, suffix):
    rows = MATH_SHAPES[shape]
    problems = load_benchmark("aime24", local=str(_write(tmp_path, rows, suffix)))
    assert [(p.id, p.problem, p.answer, p.options) for p in problems] == [
        ("p0", "1+1?", "2", None),
        ("p1", "2+3?", "5", None),
    ]
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    anonymous = load_benchmark("aime24", local=str(_write(tmp_path, no_ids, suffix)))
    assert [p.id for p in anonymous] == ["0", "1"]
    assert [(p.problem, p.answer) for p in anonymous] == [(p.problem, p.answer) for p in problems]

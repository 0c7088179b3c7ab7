"""Benchmark registry: local replacements of real AIME/AIMO text, choice shuffling, errors."""

from __future__ import annotations

import json

import pytest

from eval.benchmarks import BENCHMARKS, load_benchmark
from leapt.config import ConfigError


def test_registry_has_the_paper_benchmarks():
    assert set(BENCHMARKS) >= {"aime24", "aime25", "aimo25", "gpqa_diamond"}
    # GPQA is graded by letter: its gold option is the "Correct Answer" column, gathered first
    assert BENCHMARKS["gpqa_diamond"].task == "choice"
    assert BENCHMARKS["gpqa_diamond"].columns["options"][0] == "Correct Answer"
    assert BENCHMARKS["gpqa_diamond"].subset == "gpqa_diamond"
    assert all(BENCHMARKS[b].task == "math" for b in ("aime24", "aime25", "aimo25"))


@pytest.mark.parametrize(
    ("name", "file", "size"),
    [
        ("aime24", "aime_2024.json", 5),
        ("aime25", "aime_2025.json", 5),
        ("aimo25", "aimo_2025.json", 4),
    ],
)
def test_local_file_replaces_hub_source(reference_data, name, file, size):
    problems = load_benchmark(name, local=str(reference_data / file))
    rows = json.loads((reference_data / file).read_text())
    assert len(problems) == size
    assert [p.answer for p in problems] == [str(r["answer"]) for r in rows]
    assert problems[0].problem == rows[0]["problem"]
    assert len({p.id for p in problems}) == size
    assert len(load_benchmark(name, local=str(reference_data / file), limit=3)) == 3


def test_aimo25_without_a_local_file_says_what_to_do():
    with pytest.raises(ConfigError, match="local"):
        load_benchmark("aimo25")
    with pytest.raises(ConfigError, match="unknown benchmark 'mmlu'"):
        load_benchmark("mmlu")


def test_choice_options_are_shuffled_deterministically(tmp_path):
    rows = [
        {
            "id": f"g{i}",
            "problem": f"question {i}",
            "answer": None,
            "options": [f"right {i}", "w1", "w2", "w3"],
        }
        for i in range(12)
    ]
    rows.append(
        {"id": "named", "problem": "q", "answer": "blue", "options": ["red", "blue", "green"]}
    )
    rows.append({"id": "letter", "problem": "q", "answer": "C", "options": ["a", "b", "c"]})
    path = tmp_path / "gpqa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    problems = load_benchmark("gpqa_diamond", local=str(path), seed=5)
    assert problems == load_benchmark("gpqa_diamond", local=str(path), seed=5)
    for p in problems[:12]:
        assert p.options["ABCD".index(p.answer)].startswith("right")
    assert len({p.answer for p in problems[:12]}) > 1
    named = problems[12]
    assert named.options["ABC".index(named.answer)] == "blue"
    # a gold letter marks its option, which is shuffled like any other
    letter = problems[13]
    assert (
        sorted(letter.options) == ["a", "b", "c"]
        and letter.options["ABC".index(letter.answer)] == "c"
    )
    other_seed = load_benchmark("gpqa_diamond", local=str(path), seed=6)
    assert [p.options for p in other_seed] != [p.options for p in problems]


def test_choice_file_without_options_is_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x", "problem": "q", "answer": "A"}) + "\n")
    with pytest.raises(ConfigError, match="no options"):
        load_benchmark("gpqa_diamond", local=str(path))


@pytest.mark.parametrize("name, ops", [("synthetic_heldout", 2), ("addition_heldout", 1)])
def test_heldout_synthetic_set_is_disjoint_from_generated_training_problems(tmp_path, name, ops):
    from data_gen.args import GenerateArguments
    from inference.problems import synthetic_problems

    heldout = load_benchmark(name)
    assert len(heldout) == 64 and len({p.problem for p in heldout}) == 64
    training = synthetic_problems(64, 0, ops)
    assert all(p.problem.count(" ") == 2 * ops + 1 for p in heldout + training)  # its kind
    assert all(str(eval(p.problem[8:-1])) == p.answer for p in heldout)  # noqa: S307
    assert not {p.id for p in heldout} & {p.id for p in training}
    from data_gen.decontaminate import build_index, decontaminate
    from inference.problems import Problem

    twin = Problem("synthetic-0-99", heldout[3].problem, heldout[3].answer)
    kept, dropped = decontaminate([twin, *synthetic_problems(4, 0, ops)], build_index([name], 8))
    assert [d.id for d in dropped] == [twin.id] and len(kept) == 4
    # generated sources are checked when benchmarks are named, not against the paper's sets
    named = GenerateArguments(source="synthetic", decontam_benchmarks=["synthetic_heldout"])
    assert (
        named.checks_contamination
        and not GenerateArguments(source="synthetic").checks_contamination
    )

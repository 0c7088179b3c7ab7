"""Grading scopes over committed, real-looking R1-style outputs: where they agree and differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import authors_grader
from eval.grading import GRADING_SCOPES, grade_trace, scoped_grade, task_of
from inference.trace import Trace
from leapt.config import ConfigError

OUTPUTS = Path(__file__).resolve().parent / "data" / "grading_outputs.jsonl"

#: verdict per scope: path, after_think, lighteval, authors
EXPECTED = {
    "clean": (True, True, True, True),
    "boxed_in_thinking_only": (True, False, True, True),
    "peer_box_only": (False, False, True, True),
    "fraction_forms": (True, True, True, True),
    "revised_answer": (True, True, True, True),
    "expression_spacing": (True, True, True, True),
    "lenient_substring": (False, False, False, True),
    "forced_answer": (True, True, True, True),
    "plain_text_answer": (False, False, True, True),
    "last_number_wrong": (False, False, False, False),
    "choice_answer_line": (True, True, True, False),
    "choice_boxed_letter": (True, True, True, True),
    "wrong_then_peer_right": (False, False, False, False),
    "peer_last_box": (True, True, True, False),
}


def load_outputs() -> list[Trace]:
    traces = []
    for line in OUTPUTS.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        data.pop("note")
        traces.append(Trace.from_dict(data))
    return traces


def test_every_scope_over_the_committed_outputs():
    traces = load_outputs()
    assert sorted(t.id for t in traces) == sorted(EXPECTED)
    for trace in traces:
        got = tuple(
            scoped_grade(trace.paths[0], trace.answer, task_of(trace), s)[1] for s in GRADING_SCOPES
        )
        assert got == EXPECTED[trace.id], trace.id
    # where the authors' grader and ours part ways, both directions occur
    differ = {k for k, v in EXPECTED.items() if v[0] != v[3]}
    assert differ == {
        "peer_box_only",
        "lenient_substring",
        "plain_text_answer",
        "choice_answer_line",
        "peer_last_box",
    }


def test_authors_scope_reads_peer_blocks_and_the_whole_text():
    by_id = {t.id: t for t in load_outputs()}
    answer, ok = scoped_grade(by_id["peer_last_box"].paths[0], "9", "math", "authors")
    assert (answer, ok) == ("8", False)  # the peer's box came last
    answer, _ = scoped_grade(by_id["plain_text_answer"].paths[0], "42", "math", "authors")
    assert answer == "42"  # the instruction's empty \boxed{} sends it to the last number


def test_grade_trace_with_a_scope_overwrites_answers_and_verdicts():
    trace = {t.id: t for t in load_outputs()}["peer_box_only"]
    grade_trace(trace)
    assert (trace.paths[0].final_answer, trace.paths[0].correct) == (None, False)
    grade_trace(trace, scope="authors")
    assert (trace.paths[0].final_answer, trace.paths[0].correct) == ("27", True)


@pytest.mark.parametrize(
    ("pred", "gold", "same"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\dfrac12", "\\frac{1}{2}", True),
        ("k = 3", "3", True),
        ("5\\text{ cm}", "5", True),
        ("10\\%", "10", True),
        ("1,000", "1000", True),
        ("3/4", "\\frac{3}{4}", True),
        ("\\sqrt3", "\\sqrt{3}", True),
        ("x+1", "x+1 and more", True),  # their substring rule
        ("-x+1", "-x+1 and more", False),  # ... never for a negative
        ("12", "121", False),  # numbers compare as numbers
    ],
)
def test_authors_lenient_matching(pred, gold, same):
    assert authors_grader.equivalent(pred, gold) is same


def test_unknown_scope_is_a_config_error():
    trace = load_outputs()[0]
    with pytest.raises(ConfigError, match="grading_scope"):
        scoped_grade(trace.paths[0], "70", "math", "lenient")

"""Grading: every reference answer in several boxed forms, wrong answers, choices, traces."""

from __future__ import annotations

import json
import threading

import pytest

from eval.grading import (
    grade_answer,
    grade_trace,
    make_grader,
    math_equal,
    shuffle_options,
)
from inference.answers import extract_boxed
from inference.trace import PathRecord, Segment, Trace

BOXED_FORMS = (
    "The answer is $\\boxed{{{a}}}$.",
    "so \\boxed{{ {a} }}",
    "\\fbox{{{a}}}",
    "therefore $\\boxed {a}$",
    "\\boxed{{0{a}}}",  # zero-padded, as AIME answer sheets write 070
    "\\boxed{{{a}.0}}",
)


def _reference_answers(reference_data):
    answers = []
    for name in ("aime_2024.json", "aime_2025.json", "aimo_2025.json"):
        rows = json.loads((reference_data / name).read_text())
        answers += [str(row["answer"]) for row in rows]
    return answers


def test_every_reference_answer_in_every_boxed_form_is_right(reference_data):
    answers = _reference_answers(reference_data)
    assert len(answers) == 14
    for gold in answers:
        for form in BOXED_FORMS:
            text = form.format(a=int(gold))
            assert grade_answer(extract_boxed(text), gold, "math"), (text, gold)


def test_wrong_reference_answers_are_wrong(reference_data):
    for gold in _reference_answers(reference_data):
        for wrong in (int(gold) + 1, int(gold) * 10 + 7, f"\\frac{{{gold}}}{{7}}", "x"):
            assert not grade_answer(extract_boxed(f"\\boxed{{{wrong}}}"), gold, "math"), wrong


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("070", "70"),
        (r"\frac{1}{2}", "0.5"),
        (r"\dfrac34", "3/4"),
        (r"\frac{\sqrt2}{2}", r"\sqrt{2}/2"),
        ("x = 5", "5"),
        ("1,000", "1000"),
        ("10^{3}", "1000"),
    ],
)
def test_equivalent_math_answers(pred, gold):
    assert grade_answer(pred, gold, "math")


@pytest.mark.parametrize(("pred", "gold"), [(None, "5"), ("", "5"), ("5", None), ("}{", "5")])
def test_missing_or_garbled_answers_are_wrong_not_errors(pred, gold):
    assert grade_answer(pred, gold, "math") is False


def test_grading_works_off_the_main_thread():
    results = []
    worker = threading.Thread(
        target=lambda: results.append(math_equal(r"\frac{6}{8}", "0.75", timeout=7))
    )
    worker.start()
    worker.join()
    assert results == [True]


def test_choice_grading_and_unknown_task():
    assert grade_answer("C", "C", "choice")
    assert grade_answer("(c)", "C", "choice")
    assert not grade_answer("B", "C", "choice")
    assert not grade_answer("C is right", "C", "choice")
    with pytest.raises(ValueError, match="unknown task"):
        grade_answer("1", "1", "essay")


def test_shuffle_options_is_deterministic_and_tracks_the_gold_letter():
    options = ["right", "wrong 1", "wrong 2", "wrong 3"]
    letters = set()
    for pid in range(40):
        shuffled, gold = shuffle_options(options, key=f"q{pid}", seed=3)
        assert sorted(shuffled) == sorted(options)
        assert shuffled["ABCD".index(gold)] == "right"
        assert shuffle_options(options, key=f"q{pid}", seed=3) == (shuffled, gold)
        letters.add(gold)
    assert letters == set("ABCD")  # the gold letter is not always the same position
    assert shuffle_options(options, "q1", seed=3) != shuffle_options(options, "q1", seed=4) or (
        shuffle_options(options, "q2", seed=3) != shuffle_options(options, "q2", seed=4)
    )
    shuffled, gold = shuffle_options(["a", "b", "c"], key="k", correct_index=2)
    assert shuffled["ABC".index(gold)] == "c"


def _path(*segments: tuple[str, str], **kw) -> PathRecord:
    return PathRecord(segments=[Segment(kind=k, text=t) for k, t in segments], **kw)


def test_grade_trace_ignores_boxes_in_the_prompt_and_in_peer_summaries():
    trace = Trace(
        id="p1",
        problem="2+2?",
        answer="4",
        paths=[
            _path(("prompt", "Put the answer in \\boxed{}"), ("model", "so \\boxed{4}")),
            _path(
                ("prompt", "Q"),
                ("model", "I think \\boxed{5}"),
                ("peer", '<comment> Peer 1: "\\boxed{4}" </comment>'),
            ),
            _path(("prompt", "Q"), ("model", "no idea")),
            _path(
                ("prompt", "Q"),
                ("model", "hmm"),
                ("prompt", "Final answer: \\boxed{"),
                ("model", "4}"),
            ),
        ],
    )
    grade_trace(trace)
    assert [p.final_answer for p in trace.paths] == ["4", "5", None, "4"]
    assert [p.correct for p in trace.paths] == [True, False, False, True]


def test_grade_trace_keeps_recorded_verdicts_unless_overwritten():
    trace = Trace(
        id="p",
        problem="q",
        answer="4",
        paths=[_path(("prompt", "Q"), ("model", "\\boxed{4}"), correct=False)],
    )
    assert grade_trace(trace).paths[0].correct is False
    assert grade_trace(trace, overwrite=True).paths[0].correct is True


def test_choice_trace_and_ungradable_problem():
    trace = Trace(
        id="g",
        problem="q",
        answer="B",
        options=["x", "y"],
        paths=[_path(("prompt", "Q"), ("model", '"ANSWER": "B"'))],
    )
    assert grade_trace(trace).paths[0].correct is True
    nogold = Trace(
        id="n", problem="q", answer=None, paths=[_path(("prompt", "Q"), ("model", "\\boxed{1}"))]
    )
    assert grade_trace(nogold).paths[0].correct is None


def test_make_grader_matches_run_inference_hook():
    from inference.problems import Problem

    grade = make_grader("math")
    assert grade(Problem(id="a", problem="q", answer="070"), "70") is True
    assert grade(Problem(id="a", problem="q", answer="070"), None) is False
    assert grade(Problem(id="a", problem="q", answer=None), "70") is None

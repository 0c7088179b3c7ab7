"""Answer extraction: what the engine records as a path's final answer."""

from __future__ import annotations

import pytest

from inference.answers import extract_answer, extract_boxed, extract_choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the answer is $\boxed{204}$.", "204"),
        (r"\boxed{1} then on reflection \boxed{2}", "2"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}}+1}", r"\sqrt{\frac{a}{b}}+1"),
        (r"\fbox{70}", "70"),
        (r"$\framebox{204}$ minutes", "204"),
        (r"so $\boxed 5$.", "5"),
        (r"the result \boxed 42.", "42"),
        (r"\boxed{ 7 }", "7"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),
        (r"\boxed {3}", "3"),
    ],
)
def test_extract_boxed_finds_last_box(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    "text",
    [None, "", "no box here, answer 5", r"\boxed{unclosed 5", r"\boxed{}", r"\boxedx{3}"],
)
def test_extract_boxed_returns_none_without_answer(text):
    assert extract_boxed(text) is None


def test_truncated_box_falls_back_to_earlier_complete_box():
    assert extract_boxed(r"first \boxed{12} then \boxed{13") == "12"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"ANSWER": "C"}', "C"),
        ("\"ANSWER\": 'b'", "B"),
        ("ANSWER: D", "D"),
        ("Answer: (A)", "A"),
        ("**Answer:** **B**", "B"),
        ("Answer: $C$", "C"),  # open-r1's GPQA instruction asks for "Answer: $LETTER"
        ("so the final line reads Answer: $D$.", "D"),
        (r"so \boxed{C}", "C"),
        (r"\boxed{\text{(D)}}", "D"),
        (r"\boxed{B. 42 eV}", "B"),
        ("Therefore the answer is (C).", "C"),
        ("the correct option is: D", "D"),
        # last match wins across formats
        ('"ANSWER": "A" ... wait, actually the answer is B', "B"),
        (r'\boxed{A} hmm no. "ANSWER": "D"', "D"),
    ],
)
def test_extract_choice_formats(text, expected):
    assert extract_choice(text) == expected


@pytest.mark.parametrize(
    "text",
    [None, "", "the answer is a bit tricky", r"\boxed{42}", "ANSWER: Z", "I am not sure."],
)
def test_extract_choice_none(text):
    assert extract_choice(text) is None


def test_extract_answer_dispatches_on_task():
    text = r'"ANSWER": "B" and \boxed{17}'
    assert extract_answer(text, "math") == "17"
    assert extract_answer(text, "choice") == "B"
    with pytest.raises(ValueError, match="unknown task"):
        extract_answer(text, "essay")

"""The forced answer's default token allowance holds long ``\\boxed{...}`` answers.

A path out of budget gets the forced-answer suffix, which opens ``\\boxed{``,
and ``forced_answer_tokens`` tokens to finish it; an answer cut before its
closing brace is unreadable and grades as wrong.  The allowance is measured
with the real R1-Distill tokenizer (the students' vocabulary) on answers as
long as competition math produces: matrices, unions of intervals, tuples,
expressions (docs/fidelity.md, "Budget spent").
"""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from inference.answers import extract_answer
from inference.args import LeapArguments
from tests.scripted_model import RAMBLE, run_one

LONG_ANSWERS = [
    r"\begin{pmatrix} \frac{1}{3} & -\frac{2}{3} & \frac{2}{3} \\ \frac{2}{3} & \frac{2}{3} & "
    r"\frac{1}{3} \\ -\frac{2}{3} & \frac{1}{3} & \frac{2}{3} \end{pmatrix}",
    r"\begin{pmatrix} \frac{1}{2} & -\frac{\sqrt{3}}{2} \\ \frac{\sqrt{3}}{2} & \frac{1}{2} "
    r"\end{pmatrix}",
    r"\begin{pmatrix} 1 & 0 & -2 \\ 3 & 4 & 5 \\ -1 & 2 & 7 \end{pmatrix}",
    r"\left[\frac{-1-\sqrt{17}}{4}, \frac{-1+\sqrt{17}}{4}\right] \cup "
    r"\left[\frac{3}{2}, \frac{7+\sqrt{33}}{4}\right)",
    r"\left(-\infty, -\frac{3}{2}\right) \cup \left(\frac{5}{4}, \infty\right)",
    r"\frac{\pi}{12}, \frac{5\pi}{12}, \frac{13\pi}{12}, \frac{17\pi}{12}",
    r"\left( \frac{4}{3}, -\frac{7}{9}, \frac{11}{27} \right)",
    r"2\sqrt{2} - \frac{\pi}{4} + \ln\left(1 + \sqrt{2}\right)",
    r"\{(1, 2), (2, 1), (-1, -2), (-2, -1)\}",
    r"x^4 - 6x^3 + 11x^2 - 6x + 24",
]


def test_default_allowance_holds_every_long_answer_with_margin(r1_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(r1_tokenizer_dir)
    default = LeapArguments().forced_answer_tokens
    lengths = [len(tok.encode(a + "}", add_special_tokens=False)) for a in LONG_ANSWERS]
    assert max(lengths) > 16, "the set must include answers the old default of 16 cut"
    # room for a few words before the answer besides the longest one measured (85 tokens)
    assert max(lengths) + 32 <= default, lengths


@pytest.mark.parametrize("answer", LONG_ANSWERS[:4], ids=["3x3-fractions", "2x2", "3x3", "union"])
def test_long_boxed_answer_is_not_truncated_at_the_default(tmp_path, r1_tiny_model_dir, answer):
    def script(path, turn, phase):
        if phase == "forced":
            return answer + "}\n\nSo that is the answer. " + RAMBLE
        return "ok</summarize>" if phase == "summary" else RAMBLE

    trace, _ = run_one(tmp_path, r1_tiny_model_dir, script)
    for path in trace.paths:
        assert path.finish == "forced"
        assert path.final_answer == extract_answer("\\boxed{" + answer + "}", "math") == answer

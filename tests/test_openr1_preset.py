"""configs/eval/openr1_compat.yaml: open-r1's evaluation settings and wording, as it states them."""

from __future__ import annotations

import json
from pathlib import Path

from eval.cli import EvalArguments, plan_runs
from inference.args import LeapArguments, ModelArguments
from inference.protocol import load_protocol
from leapt.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs" / "eval" / "openr1_compat.yaml"
#: open-r1's src/open_r1/evaluate.py (MATH_QUERY_TEMPLATE, GPQA_QUERY_TEMPLATE), verbatim
OPENR1_MATH = (
    "Solve the following math problem efficiently and clearly.  The last line of your response "
    "should be of the following format: 'Therefore, the final answer is: $\\boxed{ANSWER}$. I "
    "hope it is correct' (without quotes) where ANSWER is just the final number or expression "
    "that solves the problem. Think step by step before answering.\n\n{Question}"
)
OPENR1_GPQA = (
    "Answer the following multiple choice question. The last line of your response should be of "
    "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think "
    "step by step before answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)


def _parsed(monkeypatch):
    monkeypatch.chdir(ROOT)
    stages = (ModelArguments, LeapArguments, EvalArguments)
    return parse_config(stages, ["--config", str(PRESET)], "leapt eval", "")


def test_preset_has_open_r1_settings(monkeypatch):
    model, leap, ev = _parsed(monkeypatch)
    assert (model.model, model.dtype, model.max_model_len) == (
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "bfloat16",
        32768,
    )
    assert ev.methods == ["independent"] and ev.grading_scope == "lighteval"
    assert (leap.max_tokens, leap.temperature, leap.top_p) == (32768, 0.6, 0.95)
    assert (leap.sampling_top_k, leap.min_p, leap.forced_answer_tokens) == (-1, 0.0, 0)
    paths = {bench: args.n for _, bench, args in plan_runs(ev, leap)}
    assert paths == {"aime24": 64, "math500": 4, "gpqa_diamond": 8}


def test_preset_prompts_are_open_r1_wording(monkeypatch):
    _, leap, _ = _parsed(monkeypatch)
    protocol = load_protocol(leap.protocol)
    row = json.loads(
        (ROOT / "tests/data/hub/HuggingFaceH4/MATH-500/test.jsonl").read_text().splitlines()[3]
    )
    assert protocol.user_message(row["problem"], None, "math") == OPENR1_MATH.replace(
        "{Question}", row["problem"]
    )
    options = ["620 nm", "310 nm", "1240 nm", "413 nm"]
    want = OPENR1_GPQA.replace("{Question}", "Which wavelength?")
    for letter, option in zip("ABCD", options, strict=True):
        want = want.replace("{" + letter + "}", option)
    assert protocol.user_message("Which wavelength?", options, "choice") == want


def test_reference_numbers_are_in_the_preset_and_the_readme():
    readme = (ROOT / "README.md").read_text()
    preset = PRESET.read_text()
    for number in ("28.9", "83.9", "33.8", "30.7", "83.1", "35.8", "55.5", "92.8", "49.1"):
        assert number in preset and number in readme, number
    for number in ("50.8", "94.5", "50.5"):
        assert number in preset and number in readme, number

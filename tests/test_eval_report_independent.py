"""`leapt report` against an independent computation of Pass@1 and Cons@N from the traces.

Traces with integer answers are written as `leapt eval` writes them; the
expected numbers are computed here from the raw JSON lines with the
definitions of the paper (Pass@1: mean fraction of correct paths; Cons@N:
majority vote of the answers, paths without an answer do not vote, a tie goes
to the answer written first, no answer at all is wrong), sharing no code with
eval/metrics.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eval.report import build_results, discover_runs
from inference.trace import PathRecord, Segment, Trace, TraceFile

answers_st = st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=6)
problems_st = st.lists(st.tuples(st.integers(0, 4), answers_st), min_size=1, max_size=8)


def write_traces(path: Path, problems: list[tuple[int, list[int | None]]]) -> None:
    traces = TraceFile(path)
    for i, (gold, answers) in enumerate(problems):
        paths = [
            PathRecord(
                segments=[
                    Segment("prompt", "q"),
                    Segment("model", "no answer" if a is None else f"so \\boxed{{{a}}}"),
                ],
                final_answer=None if a is None else str(a),
                correct=a == gold,
                generated_tokens=10,
                finish="eos",
            )
            for a in answers
        ]
        traces.append(
            Trace(
                id=f"p{i:02d}", problem="q", answer=str(gold), config={"task": "math"}, paths=paths
            )
        )


def independent_metrics(path: Path) -> tuple[float, float]:
    """Pass@1 and Cons@N from the raw trace lines."""
    pass1, cons = [], []
    for line in path.read_text().splitlines():
        trace = json.loads(line)
        gold = int(trace["answer"])
        answers = [p["final_answer"] for p in trace["paths"]]
        pass1.append(sum(a is not None and int(a) == gold for a in answers) / len(answers))
        votes = Counter(int(a) for a in answers if a is not None)
        if not votes:
            cons.append(0.0)
            continue
        top = max(votes.values())
        first = next(int(a) for a in answers if a is not None and votes[int(a)] == top)
        cons.append(float(first == gold))
    return sum(pass1) / len(pass1), sum(cons) / len(cons)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(problems=problems_st)
def test_report_equals_the_independent_pass1_and_consn(tmp_path_factory, problems):
    root = tmp_path_factory.mktemp("run")
    write_traces(root / "aime24" / "leap" / "traces.jsonl", problems)
    (metrics,) = build_results(discover_runs([root]))["benchmarks"]["aime24"]["methods"].values()
    pass1, cons = independent_metrics(root / "aime24" / "leap" / "traces.jsonl")
    assert metrics["pass@1"] == pytest.approx(pass1, abs=1e-6)
    assert metrics["cons@n"] == pytest.approx(cons, abs=1e-6)


def test_a_tie_goes_to_the_answer_written_first_and_silence_is_wrong(tmp_path):
    problems = [(3, [1, 3, 3, 1]), (3, [3, 1, 1, 3]), (2, [None, None]), (4, [None, 4, 0])]
    write_traces(tmp_path / "b" / "leap" / "traces.jsonl", problems)
    (metrics,) = build_results(discover_runs([tmp_path]))["benchmarks"]["b"]["methods"].values()
    assert metrics["cons@n"] == 0.5  # p00 votes 1 (first), p01 votes 3, p02 silent, p03 votes 4
    assert metrics["pass@1"] == pytest.approx((0.5 + 0.5 + 0 + 1 / 3) / 4, abs=1e-6)
    pass1, cons = independent_metrics(tmp_path / "b" / "leap" / "traces.jsonl")
    assert (pass1, cons) == (pytest.approx(metrics["pass@1"], abs=1e-6), 0.5)

"""`leapt infer` end to end on the tiny real model with the hf backend."""

from __future__ import annotations

import json

from inference.args import LeapArguments
from inference.trace import read_traces
from leapt.cli import main
from tests.trace_shape import check_trace, trace_shape

TINY_RUN = [
    "--n", "3", "--top_k", "1", "--T", "10", "--max_tokens", "24",
    "--summary_max_tokens", "6", "--forced_answer_tokens", "3",
    "--source", "synthetic", "--num_synthetic", "2", "--seed", "3",
]  # fmt: skip


def test_leapt_infer_writes_traces_and_summary(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    argv = ["infer", "--model", str(tiny_model_dir), "--output_dir", str(out), *TINY_RUN]
    assert main(argv) == 0

    traces = read_traces(out / "traces.jsonl")
    assert sorted(t.id for t in traces) == ["synthetic-3-0", "synthetic-3-1"]
    leap_args = LeapArguments(
        n=3, top_k=1, T=10, max_tokens=24, summary_max_tokens=6, forced_answer_tokens=3, seed=3
    )
    for trace in traces:
        check_trace(trace, leap_args)
        shape = trace_shape(trace)
        assert shape["kinds"] == ["model", "peer", "prompt"]
        assert shape["first_kinds"] == ["prompt"]
        assert trace.routing and trace.config["n"] == 3 and trace.model == str(tiny_model_dir)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == summary["problems"] == 2
    assert summary["generated_tokens"] == sum(p.generated_tokens for t in traces for p in t.paths)
    assert summary["summary_tokens"] > 0
    rows = {row["id"]: row for row in summary["per_problem"]}
    for trace in traces:
        assert rows[trace.id]["answers"] == [p.final_answer for p in trace.paths]
        assert rows[trace.id]["answer"] == trace.answer

    # a rerun into the same folder finds everything done and duplicates nothing
    assert main(argv) == 0
    assert len(read_traces(out / "traces.jsonl")) == 2

    # other settings never mix into finished traces: refused, the file untouched
    before = (out / "traces.jsonl").read_bytes()
    assert main([*argv, "--T", "11"]) == 2
    assert (out / "traces.jsonl").read_bytes() == before


def test_independent_method_has_no_exchange(tmp_path, tiny_model_dir):
    out = tmp_path / "ind"
    argv = ["infer", "--model", str(tiny_model_dir), "--output_dir", str(out), *TINY_RUN]
    assert main([*argv, "--method", "independent", "--limit", "1"]) == 0
    (trace,) = read_traces(out / "traces.jsonl")
    assert trace.method == "independent" and trace.routing == []
    assert trace_shape(trace)["kinds"] == ["model", "prompt"]

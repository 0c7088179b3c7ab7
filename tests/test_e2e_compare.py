"""`leapt eval` of leap and leap_t on the hf backend, through the before/after report.

The first quick e2e report showed identical leap and leap_t rows.  The cause
was not the report: then, leap_t differed from leap only where the model
wrote ``<summarize>`` inside a reasoning chunk (the unannounced leap_t prompt
came later), with the same per-chunk seeds, and the 135M models never did,
so both runs sampled the same text.  This pins what tells a real mapping or
backend bug from that: with a model that does write the tag and the same
prompt for both, each method's row is its own traces' numbers, and they
differ the way LeaP-T should (blocks the model opened).  A rerun into the
finished folder generates nothing.
"""

from __future__ import annotations

import json

import pytest

from eval.adherence import adherence_metrics
from eval.grading import grade_trace
from inference.trace import read_traces
from leapt.cli import main as leapt
from tests.summarizing_model import build_summarizing_model

BENCH = "aime24"


@pytest.fixture(scope="module")
def summarizing_model(tiny_model_dir, tmp_path_factory):
    return build_summarizing_model(tiny_model_dir, tmp_path_factory.mktemp("summarizing"))


def test_each_method_row_is_its_own_run_and_leap_t_differs(summarizing_model, tmp_path):
    bench = tmp_path / "bench.jsonl"
    rows = [{"id": f"x{i}", "problem": f"What is {i} + 3?", "answer": str(i + 3)} for i in (1, 2)]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(summarizing_model), "--backend", "hf", "--dtype", "float32"]
    argv += ["--benchmarks", BENCH, "--local_files", f"{BENCH}={bench}"]
    argv += ["--methods", "leap", "leap_t", "--announce", "false", "--seeds", "0", "1"]
    argv += ["--n", "2", "--top_k", "1", "--T", "8", "--max_tokens", "24"]
    argv += ["--summary_max_tokens", "4", "--forced_answer_tokens", "2", "--output_dir", str(out)]
    assert leapt(argv) == 0
    report = tmp_path / "cmp"
    assert leapt(["report", "--compare", f"before={out}", "--output-dir", str(report)]) == 0
    doc = json.loads((report / "results.json").read_text())["before"][BENCH]
    blocks = {}
    for method in ("leap", "leap_t"):
        traces = [
            grade_trace(t)
            for seed in (0, 1)
            for t in read_traces(out / f"seed-{seed}" / BENCH / method / "traces.jsonl")
        ]
        assert {t.method for t in traces} == {method}
        row = doc[method]
        assert row["adherence"]["counts"] == adherence_metrics(traces)["counts"]
        tokens = [p.generated_tokens for t in traces for p in t.paths]
        assert row["tokens_per_path"] == pytest.approx(sum(tokens) / len(tokens))
        blocks[method] = sum(s.kind == "peer" for t in traces for p in t.paths for s in p.segments)
    # leap: one block per T=8 tokens; leap_t: one at every tag the model writes (every 4 tokens)
    assert blocks["leap_t"] > blocks["leap"] > 0
    assert doc["leap_t"]["adherence"]["counts"] != doc["leap"]["adherence"]["counts"]

    clock = json.loads((out / "wall_time.json").read_text())
    before = {p: p.read_bytes() for p in sorted(out.rglob("traces.jsonl"))}
    assert leapt(argv) == 0  # rerun into the finished folder: resumes with nothing to do
    assert {p: p.read_bytes() for p in sorted(out.rglob("traces.jsonl"))} == before
    assert json.loads((out / "wall_time.json").read_text()) == clock

"""`leapt eval` end to end on the tiny model, then `leapt report` from its traces."""

from __future__ import annotations

import dataclasses
import json

import pytest

from inference.args import LeapArguments
from inference.trace import read_traces
from leapt.cli import main as leapt
from tests.trace_shape import check_trace

METHODS = ["independent", "leap", "leap_s", "moa"]


@pytest.fixture
def local_benchmarks(tmp_path, reference_data):
    """Two real AIME 2024 problems and two made-up multiple-choice questions, as local files."""
    rows = json.loads((reference_data / "aime_2024.json").read_text())[:2]
    aime = tmp_path / "aime24.jsonl"
    aime.write_text(
        "".join(
            json.dumps({"id": f"aime24-{i}", "problem": r["problem"], "answer": r["answer"]}) + "\n"
            for i, r in enumerate(rows)
        )
    )
    gpqa = tmp_path / "gpqa.jsonl"
    gpqa.write_text(
        "".join(
            json.dumps({"id": f"g{i}", "problem": q, "answer": None, "options": opts}) + "\n"
            for i, (q, opts) in enumerate(
                [
                    ("Which gas do plants absorb?", ["carbon dioxide", "helium", "neon", "argon"]),
                    ("Which is a prime?", ["7", "8", "9", "10"]),
                ]
            )
        )
    )
    return aime, gpqa


@pytest.mark.slow
def test_leapt_eval_writes_results_and_report_reproduces_them(
    tmp_path, tiny_model_dir, local_benchmarks
):
    aime, gpqa = local_benchmarks
    out = tmp_path / "eval"
    argv = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--backend",
        "hf",
        "--dtype",
        "float32",
        "--benchmarks",
        "aime24",
        "gpqa_diamond",
        "--methods",
        *METHODS,
        "--local_files",
        f"aime24={aime},gpqa_diamond={gpqa}",
        "--n",
        "3",
        "--n_per_benchmark",
        "gpqa_diamond=2",
        "--top_k",
        "1",
        "--T",
        "8",
        "--max_tokens",
        "20",
        "--summary_max_tokens",
        "6",
        "--forced_answer_tokens",
        "4",
        "--moa_layers",
        "2",
        "--output_dir",
        str(out),
    ]
    assert leapt(argv) == 0

    results = json.loads((out / "results.json").read_text())
    assert sorted(results["benchmarks"]) == ["aime24", "gpqa_diamond"]
    for bench, n in (("aime24", 3), ("gpqa_diamond", 2)):
        methods = results["benchmarks"][bench]["methods"]
        assert sorted(methods) == sorted(METHODS)
        for method in METHODS:
            m = methods[method]
            assert m["problems"] == 2
            assert m["n"] == (1 if method == "leap_s" else n)
            assert m["config"]["method"] == method
            traces = read_traces(out / bench / method / "traces.jsonl")
            assert all(p.correct is not None for t in traces for p in t.paths)  # graded
            # the report's numbers, recomputed from the traces
            pass1 = sum(sum(p.correct for p in t.paths) / len(t.paths) for t in traces) / 2
            assert m["pass@1"] == pytest.approx(pass1, abs=1e-6)
            paths = [p for t in traces for p in t.paths]
            tokens = sum(p.generated_tokens for p in paths) / len(paths)
            assert m["tokens_per_path"] == pytest.approx(tokens, abs=1e-6)
            if method in ("independent", "leap"):
                fields = {f.name for f in dataclasses.fields(LeapArguments)}
                for t in traces:
                    check_trace(t, LeapArguments(**{k: t.config[k] for k in fields}))
        assert set(results["benchmarks"][bench]["compute_matched"]) == {"leap", "leap_s", "moa"}
    gpqa_traces = read_traces(out / "gpqa_diamond" / "leap" / "traces.jsonl")
    assert all(t.answer in "ABCD" and len(t.options) == 4 for t in gpqa_traces)
    md = (out / "results.md").read_text()
    assert "| leap_s |" in md and "| moa |" in md and "gpqa_diamond" in md
    for png in ("accuracy.png", "accuracy_vs_tokens.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    # resume: a rerun generates nothing and leaves every trace file as it was
    before = {p: p.read_bytes() for p in out.rglob("traces.jsonl")}
    assert leapt(argv) == 0
    assert {p: p.read_bytes() for p in out.rglob("traces.jsonl")} == before

    # changed settings never mix into finished traces
    assert leapt([*argv, "--T", "9"]) == 2

    # `leapt report` rebuilds results.json byte for byte from the traces alone
    assert leapt(["report", str(out), "--output-dir", str(tmp_path / "re")]) == 0
    assert (tmp_path / "re" / "results.json").read_bytes() == (out / "results.json").read_bytes()

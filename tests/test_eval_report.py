"""`leapt report`: results from hand-built traces, reproducible byte for byte."""

from __future__ import annotations

import json

import pytest

from inference.trace import PathRecord, Segment, Trace, TraceFile
from leapt.cli import main as leapt


def _path(answer: str, tokens: int, summary: int = 0) -> PathRecord:
    return PathRecord(
        segments=[
            Segment("prompt", "Solve it and put the answer in \\boxed{}."),
            Segment("model", f"thinking... \\boxed{{{answer}}}"),
        ],
        generated_tokens=tokens,
        summary_tokens=summary,
        finish="eos",
    )


def _write_run(root, bench, method, rows, seed=0):
    tf = TraceFile(root / bench / method / "traces.jsonl")
    for pid, gold, answers in rows:
        tf.append(
            Trace(
                id=pid,
                problem="q",
                answer=gold,
                method=method,
                config={"seed": seed, "task": "math", "n": len(answers)},
                model="tiny",
                paths=[
                    _path(a, 100 + 10 * i, 5 if method == "leap" else 0)
                    for i, a in enumerate(answers)
                ],
            )
        )


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "run"
    _write_run(
        root,
        "aime24",
        "independent",
        [("p1", "70", ["70", "071", "70", "3"]), ("p2", "5", ["4", "4", "5", "6"])],
    )
    _write_run(
        root,
        "aime24",
        "leap",
        [("p1", "70", ["070", "70", "70", "70"]), ("p2", "5", ["5", "5", "4", "5"])],
    )
    _write_run(root, "aime25", "leap", [("q1", "1/2", ["0.5", "\\frac{1}{2}", "2", "x"])])
    return root


def test_report_writes_results_table_and_plots(run_dir, capsys):
    assert leapt(["report", str(run_dir)]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    leap = results["benchmarks"]["aime24"]["methods"]["leap"]
    indep = results["benchmarks"]["aime24"]["methods"]["independent"]
    assert leap["pass@1"] == pytest.approx((4 / 4 + 3 / 4) / 2)
    assert leap["cons@n"] == 1.0
    assert indep["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert indep["cons@n"] == 0.5  # p1 right by vote, p2 wrong ("4" x2)
    assert leap["tokens_per_path_without_summaries"] == pytest.approx(leap["tokens_per_path"] - 5)
    assert [p["paths"] for p in indep["vote_curve"]] == [1, 2, 4]
    matched = results["benchmarks"]["aime24"]["compute_matched"]["leap"]
    assert matched["mean_paths_used"] == 4  # leap spent more tokens (summaries) than 4 samples
    assert results["benchmarks"]["aime25"]["methods"]["leap"]["pass@1"] == 0.5
    md = (run_dir / "results.md").read_text()
    assert "| leap | 87.50 / 100.00 (N=4) |" in md
    assert "Compute-matched" in md
    paired = results["benchmarks"]["aime24"]["paired_vs_independent"]["leap"]
    assert paired["problems"] == 2
    assert paired["pass@1_diff"] == pytest.approx(leap["pass@1"] - indep["pass@1"])
    assert paired["cons@n_diff"] == pytest.approx(0.5)
    low, high = paired["pass@1_diff_ci"]  # per-problem differences 0.5 and 0.5: no spread
    assert low == high == pytest.approx(0.5)
    assert "aime25" not in [
        b for b, e in results["benchmarks"].items() if e["paired_vs_independent"]
    ]
    assert "| aime24 | leap | 2 | +50.00 [50.0, 50.0] | +50.00 [0.0, 100.0] |" in md
    for png in ("accuracy.png", "accuracy_vs_tokens.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_byte_for_byte_reproducible(run_dir, tmp_path):
    assert leapt(["report", str(run_dir), "--output-dir", str(tmp_path / "a")]) == 0
    assert leapt(["report", str(run_dir), "--output-dir", str(tmp_path / "b")]) == 0
    first = (tmp_path / "a" / "results.json").read_bytes()
    assert first == (tmp_path / "b" / "results.json").read_bytes()


def test_report_merges_shards_and_separates_overlapping_runs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write_run(a, "aime24", "leap", [("p1", "1", ["1", "1"])])
    _write_run(b, "aime24", "leap", [("p2", "2", ["2", "3"])])
    _write_run(c, "aime24", "leap", [("p1", "1", ["2", "2"])], seed=1)
    assert leapt(["report", str(a), str(b), "--output-dir", str(tmp_path / "ab")]) == 0
    merged = json.loads((tmp_path / "ab" / "results.json").read_text())
    assert merged["benchmarks"]["aime24"]["methods"]["leap"]["problems"] == 2
    assert leapt(["report", str(a), str(c), "--output-dir", str(tmp_path / "ac")]) == 0
    split = json.loads((tmp_path / "ac" / "results.json").read_text())
    assert sorted(split["benchmarks"]["aime24"]["methods"]) == ["leap (a)", "leap (c)"]


def test_report_errors_are_one_line(tmp_path, capsys):
    assert leapt(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert leapt(["report", str(tmp_path), str(tmp_path)]) == 2
    assert leapt(["report", str(tmp_path)]) == 2
    assert "no traces.jsonl" in capsys.readouterr().err


def test_report_reads_a_plain_leapt_infer_directory(tmp_path):
    run = tmp_path / "my-infer-run"
    _write_run(run.parent, run.name, "leap", [("p1", "3", ["3", "4"])])
    # _write_run made my-infer-run/leap/traces.jsonl; move it to the infer layout
    (run / "leap" / "traces.jsonl").rename(run / "traces.jsonl")
    (run / "leap").rmdir()
    assert leapt(["report", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["benchmarks"]["my-infer-run"]["methods"]["leap"]["pass@1"] == 0.5

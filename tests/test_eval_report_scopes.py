"""The report's grading scopes, standard errors and pass@k flag, and what `leapt eval` records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eval.grading import GRADING_SCOPES
from eval.report import RESULTS_JSON, RESULTS_MD, write_report
from leapt.config import ConfigError
from tests.test_grading_scopes import EXPECTED, load_outputs


def _write_run(root, traces, method="leap"):
    by_bench: dict[str, list] = {}
    for trace in traces:
        trace.method = method
        by_bench.setdefault("gpqa" if trace.options else "math", []).append(trace)
    for bench, group in by_bench.items():
        folder = root / bench / method
        folder.mkdir(parents=True)
        (folder / "traces.jsonl").write_text("".join(t.to_json() + "\n" for t in group))


def test_report_shows_every_scope_and_the_authors_disagreement(tmp_path):
    _write_run(tmp_path / "run", load_outputs())
    _write_run(tmp_path / "run", load_outputs(), method="independent")
    results = write_report([tmp_path / "run"], tmp_path / "run")
    md = (tmp_path / "run" / RESULTS_MD).read_text()
    math_ids = [t.id for t in load_outputs() if not t.options]
    for method in ("leap", "independent"):
        scopes = results["benchmarks"]["math"]["methods"][method]["grading_scope"]
        assert scopes["chosen"] == "path"
        for i, scope in enumerate(GRADING_SCOPES):
            want = np.mean([EXPECTED[k][i] for k in math_ids])
            assert math.isclose(scopes["pass@1"][scope], want, abs_tol=1e-6), scope
        assert scopes["authors_disagree_paths"] == sum(
            EXPECTED[k][0] != EXPECTED[k][3] for k in math_ids
        )
        assert scopes["paths"] == len(math_ids)
    assert f"(authors differ on 4/{len(math_ids)} paths)" in md
    assert "(authors differ on 1/2 paths)" in md  # the choice answer line

    # another scope grades everything, and it is the one in bold
    again = write_report([tmp_path / "run"], tmp_path / "authors", grading_scope="authors")
    leap = again["benchmarks"]["math"]["methods"]["leap"]
    assert math.isclose(leap["pass@1"], np.mean([EXPECTED[k][3] for k in math_ids]), abs_tol=1e-6)
    assert leap["grading_scope"]["chosen"] == "authors"
    assert leap["grading_scope"]["authors_disagree_paths"] == 0
    assert "Graded with `grading_scope`: authors" in (tmp_path / "authors" / RESULTS_MD).read_text()


def test_standard_error_beside_every_interval_and_pass_at_k_flag(tmp_path):
    _write_run(tmp_path / "run", load_outputs())
    _write_run(tmp_path / "run", load_outputs(), method="independent")
    results = json.loads(
        (
            write_report([tmp_path / "run"], tmp_path / "run") and tmp_path / "run" / RESULTS_JSON
        ).read_text()
    )
    leap = results["benchmarks"]["math"]["methods"]["leap"]
    values = [float(EXPECTED[t.id][0]) for t in load_outputs() if not t.options]
    assert math.isclose(
        leap["pass@1_stderr"], np.std(values, ddof=1) / math.sqrt(len(values)), abs_tol=1e-6
    )
    assert leap["cons@n_stderr"] is not None
    assert all(f"{r}_stderr" in leap["adherence"] for r in ("summary_closed_rate", "peer_use_rate"))
    matched = results["benchmarks"]["math"]["compute_matched"]["leap"]
    assert matched["accuracy_stderr"] is not None
    md = (tmp_path / "run" / RESULTS_MD).read_text()
    se = f"±{100 * leap['pass@1_stderr']:.1f}"
    lo, hi = leap["pass@1_ci"]
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}] {se}" in md
    # pass@k: the i.i.d. estimator only for independent paths; LeaP's is flagged
    assert (
        leap["pass@k_iid"],
        results["benchmarks"]["math"]["methods"]["independent"]["pass@k_iid"],
    ) == (False, True)
    rows = {
        line.split("|")[1].strip(): line
        for line in md.splitlines()
        if "pass@1" in line and "|" in line
    }
    assert "pass@1*" in rows["leap"] and "pass@1*" not in rows["independent"]
    assert "not that estimator" in md


def test_eval_records_scope_and_option_order(tmp_path, tiny_model_dir):
    from eval.cli import EvalArguments, run_eval
    from inference.args import LeapArguments, ModelArguments
    from inference.trace import read_traces

    rows = [
        {"id": f"g{i}", "problem": q, "options": opts, "answer": 0}
        for i, (q, opts) in enumerate(
            [
                ("Which gas do plants absorb?", ["CO2", "He", "Ne", "Ar"]),
                ("A prime?", ["7", "8", "9", "10"]),
            ]
        )
    ]
    path = tmp_path / "gpqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"

    def run(shuffle: bool, scope: str) -> None:
        run_eval(
            ModelArguments(model=str(tiny_model_dir), dtype="float32"),
            LeapArguments(n=2, max_tokens=4, forced_answer_tokens=2, T=4, top_k=1),
            EvalArguments(
                benchmarks=["gpqa_diamond"],
                methods=["independent"],
                output_dir=str(out),
                local_files={"gpqa_diamond": str(path)},
                shuffle_options=shuffle,
                grading_scope=scope,
            ),
            progress=False,
        )

    run(False, "after_think")
    traces = read_traces(out / "gpqa_diamond" / "independent" / "traces.jsonl")
    assert [t.options for t in traces] == [r["options"] for r in rows]  # the file's order
    assert {t.answer for t in traces} == {"A"}
    config = traces[0].config
    assert (config["grading_scope"], config["shuffle_options"], config["option_seed"]) == (
        "after_think",
        False,
        0,
    )
    md = (out / RESULTS_MD).read_text()
    assert "Graded with `grading_scope`: after_think" in md
    assert "file's order (`shuffle_options: false`), not shuffled: gpqa_diamond / independent" in md
    # rerun: another scope only regrades; another option order is refused
    run(False, "authors")
    assert "Graded with `grading_scope`: authors" in (out / RESULTS_MD).read_text()
    with pytest.raises(ConfigError, match="shuffle_options False, not True"):
        run(True, "path")

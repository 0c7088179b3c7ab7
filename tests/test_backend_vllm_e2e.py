"""The same tiny LeaP run through ``hf``, ``vllm`` and ``openai`` gives traces of one structure.

Samples differ between backends (different kernels and samplers), so the
comparison is structural: every trace satisfies the protocol invariants
(``check_trace``), the backends agree on the coarse signature
(``trace_shape``: paths, segment kinds, routing at turn 1), and on every
backend the N paths of a problem are distinct samples.  The ``openai`` run
goes through ``leapt infer`` itself, so backend dispatch and the server
probe are exercised as a user would.
"""

from __future__ import annotations

import pytest

from inference.args import DataArguments, LeapArguments
from inference.problems import load_problems
from inference.run import run_inference
from inference.trace import Trace, read_traces
from leapt.cli import main
from tests.trace_shape import check_trace, trace_shape
from tests.vllm_server import tiny_model_args

pytest_plugins = ["tests.backend_fixtures"]

pytestmark = pytest.mark.slow

LEAP = {
    "n": 3, "top_k": 1, "T": 10, "max_tokens": 24,
    "summary_max_tokens": 6, "forced_answer_tokens": 3, "seed": 3,
}  # fmt: skip
PROBLEMS = {"source": "synthetic", "num_synthetic": 2}


def run_tiny(model_args, out, backend=None) -> dict[str, Trace]:
    leap_args = LeapArguments(**LEAP)
    problems = load_problems(DataArguments(**PROBLEMS), seed=leap_args.seed)
    run_inference(model_args, leap_args, problems, out, backend=backend, progress=False)
    return {t.id: t for t in read_traces(out / "traces.jsonl")}


@pytest.fixture(scope="module")
def hf_traces(tiny_model_dir, tmp_path_factory) -> dict[str, Trace]:
    out = tmp_path_factory.mktemp("hf-run")
    return run_tiny(tiny_model_args(tiny_model_dir, "hf"), out)


def assert_same_structure(traces: dict[str, Trace], reference: dict[str, Trace]) -> None:
    leap_args = LeapArguments(**LEAP)
    assert sorted(traces) == sorted(reference)
    for problem_id, trace in traces.items():
        check_trace(trace, leap_args)
        assert trace_shape(trace) == trace_shape(reference[problem_id])
        assert trace.routing, "no peer exchange happened"
        samples = {p.text(["model"]) for p in trace.paths}
        assert len(samples) == len(trace.paths), "paths of one problem must be distinct samples"


def test_vllm_backend_traces_match_hf(vllm_backend, hf_traces, tiny_model_dir, tmp_path):
    args = tiny_model_args(tiny_model_dir, "vllm")
    traces = run_tiny(args, tmp_path / "vllm", backend=vllm_backend)
    assert_same_structure(traces, hf_traces)
    assert {t.config["backend"] for t in traces.values()} == {"vllm"}


def test_openai_backend_via_leapt_infer_matches_hf(
    vllm_server, hf_traces, tiny_model_dir, tmp_path
):
    out = tmp_path / "openai"
    argv = ["infer", "--backend", "openai", "--api_base", vllm_server.base_url]
    argv += ["--model", str(tiny_model_dir), "--output_dir", str(out)]
    argv += [f"--{key}={value}" for key, value in {**LEAP, **PROBLEMS}.items()]
    assert main(argv) == 0
    traces = {t.id: t for t in read_traces(out / "traces.jsonl")}
    assert_same_structure(traces, hf_traces)
    assert {t.config["backend"] for t in traces.values()} == {"openai"}

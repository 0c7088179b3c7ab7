"""The server's engine thread and request parsing, without HTTP (fast).

Requests arriving while the engine runs must batch together the way one
``leapt infer`` run's problems do and produce the very same paths; a
cancelled request must stop; a bad body must be refused naming its field.
"""

from __future__ import annotations

import dataclasses

import pytest

from inference.args import LeapArguments, ModelArguments
from inference.backends import load_backend
from inference.engine import EngineContext, method_runner
from inference.problems import synthetic_problems
from inference.protocol import load_protocol
from inference.run import run_inference
from inference.trace import read_traces
from serving.requests import RequestError, model_ids, parse_request, served_name
from serving.worker import EngineWorker, Job

SETTINGS = LeapArguments(n=3, top_k=2, T=6, max_tokens=24, summary_max_tokens=5, seed=5)


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = load_backend(ModelArguments(model=str(tiny_model_dir)))
    yield backend
    backend.close()


class GroupsSeen:
    """The backend, recording the most groups (problems' rounds) in flight at once."""

    def __init__(self, backend) -> None:
        self.backend, self.tokenizer, self.most = backend, backend.tokenizer, 0

    def submit(self, key, requests, sampling) -> None:
        self.backend.submit(key, requests, sampling)
        self.most = max(self.most, len(self.backend.groups))

    def collect(self):
        return self.backend.collect()


def test_requests_arriving_while_it_runs_batch_together_and_match_leapt_infer(hf_backend, tmp_path):
    problems = synthetic_problems(24, seed=1)
    run_inference(
        ModelArguments(model="unused"),
        SETTINGS,
        problems,
        tmp_path,
        backend=hf_backend,
        progress=False,
    )
    offline = {t.id: t for t in read_traces(tmp_path / "traces.jsonl")}

    seen = GroupsSeen(hf_backend)
    worker = EngineWorker(seen, max_concurrent=64)
    ctx = EngineContext(hf_backend, load_protocol(None), SETTINGS)
    worker.start()
    try:
        jobs = [Job(p, ctx, method_runner("leap"), lambda t: None) for p in problems]
        for job in jobs:
            worker.submit(job)
        served = {job.problem.id: job.future.result(timeout=600) for job in jobs}
    finally:
        worker.stop()
    assert seen.most >= 16  # the arrivals shared the batch (a serial server would show 1)
    for pid, trace in served.items():
        assert [p.segments for p in trace.paths] == [p.segments for p in offline[pid].paths]
        assert trace.routing == offline[pid].routing
    generated = sum(p.generated_tokens for t in served.values() for p in t.paths)
    assert sum(job.usage.completion_tokens for job in jobs) == generated
    assert all(job.usage.prompt_tokens > 0 for job in jobs)


def test_a_cancelled_job_stops_and_the_others_finish(hf_backend):
    long = dataclasses.replace(SETTINGS, max_tokens=100_000, T=16)
    worker = EngineWorker(hf_backend, max_concurrent=8)
    worker.start()
    try:
        [p1, p2] = synthetic_problems(2, seed=2)
        doomed = Job(p1, EngineContext(hf_backend, load_protocol(None), long), method_runner("leap"), lambda t: None)  # fmt: skip
        fine = Job(p2, EngineContext(hf_backend, load_protocol(None), SETTINGS), method_runner("leap"), lambda t: None)  # fmt: skip
        worker.submit(doomed)
        worker.submit(fine)
        assert len(fine.future.result(timeout=300).paths) == 3
        worker.cancel(doomed)
        with pytest.raises(Exception):  # noqa: B017 (CancelledError)
            doomed.future.result(timeout=60)
        assert doomed.future.cancelled()
    finally:
        worker.stop()
    assert not worker.scheduler.active and worker.failure is None


NAME = "tiny"


def parse(body, **kw):
    return parse_request(body, NAME, SETTINGS, "voted", **kw)


def chat(**fields):
    return {"model": "leap-tiny", "messages": [{"role": "user", "content": "1 + 1?"}], **fields}


def test_the_model_name_picks_the_method_and_openai_fields_map_to_the_leap_settings():
    assert model_ids("tiny")[:3] == ["independent-tiny", "leap-tiny", "leap_t-tiny"]
    assert served_name("/models/R1-7B/") == "R1-7B" and served_name("org/m") == "org/m"
    assert served_name("tests") == "tests"  # a relative folder: its name, not its path
    assert parse(chat(model="leap_t-tiny")).leap_args.method == "leap_t"
    request = parse(
        chat(n=5, temperature=0, top_p=0.5, top_k=7, min_p=0.1, seed=9, max_tokens=99)
        | {"leapt": {"T": 11, "top_k": 3, "router": "clustered"}}
    )
    a = request.leap_args
    assert (a.n, a.temperature, a.top_p, a.sampling_top_k, a.min_p, a.seed) == (
        5,
        0,
        0.5,
        7,
        0.1,
        9,
    )
    assert (a.max_tokens, a.T, a.top_k, a.router) == (99, 11, 3, "clustered")
    assert not request.voted and SETTINGS.n == 3  # the server's defaults are untouched
    one = parse(chat())
    assert one.voted and one.leap_args.n == 3  # n=1: the server's n paths, voted
    assert not parse(chat(leapt={"n1": "all"})).voted
    assert parse(chat(max_completion_tokens=7)).leap_args.max_tokens == 7
    # the same problem text is the same problem (so the same seed gives the same paths)
    assert parse(chat()).problem.id == parse(chat(seed=3)).problem.id
    assert parse(chat(leapt={"problem_id": "aime-1"})).problem.id == "aime-1"
    assert parse({"model": "leap-tiny", "prompt": "2 + 2?"}, chat=False).problem.problem == "2 + 2?"
    # a harness's system message is the run's system_prompt, rendered as infer renders it
    system = chat() | {
        "messages": [{"role": "system", "content": "Be brief."}, *chat()["messages"]]
    }
    served = parse(system)
    assert (served.leap_args.system_prompt, served.problem.problem) == ("Be brief.", "1 + 1?")
    assert parse(chat()).leap_args.system_prompt is None


def test_a_request_may_not_ask_for_more_paths_than_the_server_allows():
    assert parse_request(chat(n=8), NAME, SETTINGS, "voted", max_paths=8).leap_args.n == 8
    for body, field in ((chat(n=9), "n"), (chat(leapt={"n": 9}), "leapt.n")):
        with pytest.raises(
            RequestError, match=f"'{field}' \\(9\\) exceeds this server's max_paths"
        ):
            parse_request(body, NAME, SETTINGS, "voted", max_paths=8)


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (chat(model="beam-tiny"), "model", "unknown method prefix 'beam'"),
        (chat(model="leap-big"), "model", "this server runs 'tiny'"),
        (chat(n=0), "n", "'n' must be >= 1"),
        (chat(n=2), "n", "'top_k' (2) must be smaller than 'n' (2)"),
        (chat(leapt={"top_k": 3}), "leapt.top_k", "'leapt.top_k' (3) must be smaller than 'n' (3)"),
        (chat(leapt={"router": "nearest"}), "leapt.router", "unknown router 'nearest'"),
        (chat(leapt={"method": "moa"}), "leapt.method", "unknown field 'leapt.method'"),
        (chat(leapt={"protocol": "/etc/passwd"}), "leapt.protocol", "unknown field"),
        (chat(top_p=2), "top_p", "'top_p' must be in (0, 1]"),
        (chat(seed="x"), "seed", "'seed' must be int"),
        (chat(n=True), "n", "'n' must be int"),
        (chat(stop=[1]), "stop", "'stop' must be"),
        (chat(n=4, leapt={"n": 5}), "n", "disagree"),
        (chat(tools=[{"type": "function"}]), "tools", "not supported"),
        ({"model": "leap-tiny", "messages": [{"role": "user", "content": ""}]}, "messages", "non-empty"),
        ({"model": "leap-tiny"}, "messages", "'messages' must be a non-empty list"),
    ],
)  # fmt: skip
def test_a_bad_field_is_refused_naming_it(body, field, says):
    with pytest.raises(RequestError) as refused:
        parse(body)
    assert refused.value.field == field and refused.value.status == 400
    assert says in str(refused.value)


def test_a_folder_of_offline_traces_is_refused_and_left_as_it_was(tmp_path):
    from leapt.config import ConfigError
    from serving.runs import ServedRun, check_run_dir

    check_run_dir(tmp_path / "new")  # nothing there yet: fine
    traces = tmp_path / "traces.jsonl"
    traces.write_text('{"id": "a", "problem": "p", "answer": "1", "config": {"n": 4}}\n{"id": "b"')
    before = traces.read_bytes()
    with pytest.raises(ConfigError, match="not served .*key 'output_dir'"):
        ServedRun(tmp_path, {})
    assert traces.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.jsonl"]


def test_a_served_folder_takes_one_server_and_refuses_another_model(tmp_path, tiny_model_dir):
    """Two servers on one folder would interleave their lines; a restart with another model
    would report its answers beside the first model's."""
    from inference.args import LeapArguments, ModelArguments
    from leapt.config import ConfigError
    from serving.runs import ServedRun, served_manifest

    def manifest(**model):
        return served_manifest(ModelArguments(model=str(tiny_model_dir), **model), LeapArguments())

    first = ServedRun(tmp_path, manifest())
    with pytest.raises(ConfigError, match=f"{tmp_path} is in use by another run: PID"):
        ServedRun(tmp_path, manifest())
    first.record()
    first.close()
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match="dtype 'auto', not 'float32' .*key 'dtype'"):
        ServedRun(tmp_path, manifest(dtype="float32"))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == kept  # no lock left behind
    again = ServedRun(tmp_path, manifest())  # the same model continues the folder
    again.close()

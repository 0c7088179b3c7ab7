"""The openai backend at a cluster's scale: how many requests fly at once, and retries.

A paper-size run sends N=32 paths of many problems at once, for hours, to a
shared server: the number of requests in flight is a setting, and a timed-out
request or a 5xx answer is retried (a bounded number of times, with capped
back-off) instead of ending the run.  The servers are real HTTP servers on
127.0.0.1: a proxy that fails or stalls its first answers, in front of the
schema-only server of test_backend_openai.py or of a real vLLM server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from inference.args import ModelArguments
from inference.backends import openai_api
from inference.backends.base import GenerationRequest, SamplingSettings
from leapt.config import ConfigError
from tests.processes import free_port
from tests.test_backend_openai import SERVED, PlainServer
from tests.vllm_server import tiny_model_args

pytest_plugins = ["tests.backend_fixtures"]


class FlakyProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``; its first ``fail`` completions get HTTP ``status`` (or, with
    ``stall``, no answer for ``stall`` seconds, past the client's timeout).

    The capability probe (``max_tokens`` 1) is always forwarded.  It holds each
    completion ``hold`` seconds and counts how many are in flight at most.
    """

    daemon_threads = True

    def __init__(self, upstream: str, fail: int = 0, status: int = 503, stall: float = 0.0):
        super().__init__(("127.0.0.1", free_port()), _ProxyHandler)
        self.upstream = upstream.rstrip("/")
        self.fail, self.status, self.stall = fail, status, stall
        self.hold = 0.0
        self.lock = threading.Lock()
        self.tries = 0
        self.in_flight = self.most_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def log_message(self, *args) -> None:
        pass

    def _relay(self, response: httpx.Response) -> None:
        self.send_response(response.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    def do_GET(self) -> None:
        self._relay(httpx.get(self.server.upstream + self.path.removeprefix("/v1")))

    def do_POST(self) -> None:
        proxy = self.server
        data = self.rfile.read(int(self.headers["Content-Length"]))
        probe = json.loads(data)["max_tokens"] == 1
        with proxy.lock:
            if not probe:
                proxy.tries += 1
            failing = not probe and proxy.tries <= proxy.fail
            proxy.in_flight += 1
            proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
        # counted until the answer is ready: once it is sent the client may start its next call
        response = None
        if failing and proxy.stall:
            time.sleep(proxy.stall)  # the client has given up by now
        elif failing:
            response = httpx.Response(proxy.status, json={"error": "try again"})
        else:
            time.sleep(proxy.hold)
            url = proxy.upstream + self.path.removeprefix("/v1")
            headers = {"Content-Type": "application/json"}
            response = httpx.post(url, content=data, headers=headers, timeout=120)
        with proxy.lock:
            proxy.in_flight -= 1
        if response is None:
            return
        with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up and left
            self._relay(response)


@contextmanager
def serving(server):
    """Run ``server`` on a thread for the ``with`` block."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def plain() -> Iterator[PlainServer]:
    with serving(PlainServer()) as server:
        yield server


def _backend(proxy: FlakyProxy, model_dir, served: str | None = SERVED, **settings):
    keys = {"request_attempts": 4, "retry_max_delay": 0.1, **settings}
    args = tiny_model_args(
        model_dir, "openai", api_base=proxy.base_url, served_model_name=served, **keys
    )
    return openai_api.load(args, str(model_dir))


def _requests(backend, count: int) -> list[GenerationRequest]:
    context = backend.tokenizer.encode("Solve 3x + 5 = 20.", add_special_tokens=False)
    return [GenerationRequest(context, 6, seed=s) for s in range(count)]


def test_more_than_64_requests_fly_at_once(tiny_model_dir):
    """Four problems at N=32 in one round: all 128 reach the server together by default."""
    with serving(PlainServer(expect=128)) as server:  # answers only once all 128 are in
        args = tiny_model_args(
            tiny_model_dir, "openai", api_base=server.base_url, served_model_name=SERVED
        )
        backend = openai_api.load(args, str(tiny_model_dir))
        try:
            results = backend.generate(_requests(backend, 128), SamplingSettings())
        finally:
            backend.close()
        assert [r.text for r in results] == [f" seed {s} answer 42" for s in range(128)]


def test_requests_in_flight_never_exceed_the_setting(plain, tiny_model_dir):
    with serving(FlakyProxy(plain.base_url)) as proxy:
        proxy.hold = 0.3  # each answer takes a while, so requests overlap
        backend = _backend(proxy, tiny_model_dir, max_concurrent_requests=3)
        try:
            results = backend.generate(_requests(backend, 12), SamplingSettings())
        finally:
            backend.close()
        assert len(results) == 12 and proxy.most_in_flight == 3


@pytest.mark.parametrize("failure", [{"status": 503}, {"status": 429}, {"stall": 3.0}])
def test_5xx_and_timeouts_are_retried(plain, tiny_model_dir, failure):
    with serving(FlakyProxy(plain.base_url, fail=2, **failure)) as proxy:
        backend = _backend(proxy, tiny_model_dir, request_timeout=1.0, max_concurrent_requests=1)
        try:
            (result,) = backend.generate(_requests(backend, 1), SamplingSettings())
        finally:
            backend.close()
        assert result.text == " seed 0 answer 42"
        assert proxy.tries == 3  # two failures, then the answer


def test_retries_are_bounded_and_the_error_names_the_url(plain, tiny_model_dir):
    with serving(FlakyProxy(plain.base_url, fail=100, status=502)) as proxy:
        backend = _backend(proxy, tiny_model_dir, request_attempts=3)
        try:
            with pytest.raises(openai_api.OpenAIBackendError, match="answered HTTP 502") as err:
                backend.generate(_requests(backend, 1), SamplingSettings())
        finally:
            backend.close()
        assert proxy.base_url in str(err.value) and proxy.tries == 3


def test_a_client_error_is_not_retried(plain, tiny_model_dir):
    with serving(FlakyProxy(plain.base_url, fail=100, status=400)) as proxy:
        backend = _backend(proxy, tiny_model_dir)
        try:
            with pytest.raises(openai_api.OpenAIBackendError, match="answered HTTP 400"):
                backend.generate(_requests(backend, 1), SamplingSettings())
        finally:
            backend.close()
        assert proxy.tries == 1


def test_backoff_doubles_up_to_the_cap():
    assert [openai_api.backoff(a, 5.0) for a in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_concurrent_requests", 0),
        ("request_attempts", 0),
        ("retry_max_delay", -1.0),
        ("request_timeout", 0.0),
    ],
)
def test_bad_request_settings_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        ModelArguments(backend="openai", **{key: value})


@pytest.mark.slow
def test_a_real_vllm_server_through_failures_and_a_concurrency_cap(vllm_server, tiny_model_dir):
    """Against real vLLM: two 503s and a stalled answer are retried, and at most 3 requests fly."""
    with serving(FlakyProxy(vllm_server.base_url, fail=3, status=503)) as proxy:
        proxy.hold = 0.2
        backend = _backend(proxy, tiny_model_dir, served=None, max_concurrent_requests=3)
        assert backend.token_prompts and backend.returns_token_ids
        try:
            requests = _requests(backend, 9)
            results = backend.generate(requests, SamplingSettings())
            proxy.fail, proxy.tries, proxy.stall = 1, 0, 5.0
            backend.client.timeout = httpx.Timeout(2.0, connect=30.0)
            (late,) = backend.generate(requests[:1], SamplingSettings())
        finally:
            backend.close()
        assert all(len(r.token_ids) == 6 for r in results)
        assert len({tuple(r.token_ids) for r in results}) > 1, "seeds give different samples"
        assert proxy.most_in_flight == 3
        assert late.token_ids == results[0].token_ids, "the retried request is the same sample"
        assert proxy.tries == 2

"""The openai backend's behaviour beyond the shared contract (see test_backend_vllm.py).

Two kinds of servers: the real vLLM server (shared session fixture) and a
small plain OpenAI-style HTTP server defined here that knows nothing of
vLLM's extensions (no token-id prompts, no ``token_ids``/``stop_reason`` in
answers), standing in for the many servers that only speak the OpenAI schema.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inference.backends import openai_api
from inference.backends.base import GenerationRequest, SamplingSettings
from tests.processes import free_port
from tests.vllm_server import MAX_MODEL_LEN, tiny_model_args

pytest_plugins = ["tests.backend_fixtures"]

SERVED = "plain-model"


class PlainServer(ThreadingHTTPServer):
    """Answers /v1/models and /v1/completions the way a schema-only server would.

    A completion is only answered once ``expect`` completions are in flight at
    the same time (or after a 30 s wait, with HTTP 500), so a client that sends
    requests one by one fails instead of passing slowly.
    """

    daemon_threads = True

    def __init__(self, expect: int = 1, status: int = 200) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.barrier = threading.Barrier(expect, timeout=30)
        self.status = status
        self.seen: list[dict] = []
        self.auth: list[str | None] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: PlainServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.auth.append(self.headers.get("Authorization"))
        if self.server.status != 200:
            self._send(self.server.status, {"error": "no entry"})
            return
        self._send(200, {"data": [{"id": SERVED}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not isinstance(body["prompt"], str):
            self._send(400, {"error": "prompt must be a string"})
            return
        if body["max_tokens"] == 1:  # the backend's capability probe
            self._send(200, {"choices": [{"text": " x", "finish_reason": "length"}]})
            return
        self.server.seen.append(body)
        try:
            self.server.barrier.wait()
        except threading.BrokenBarrierError:
            self._send(500, {"error": "requests did not arrive together"})
            return
        # honours include_stop_str_in_output, but says nothing about which stop matched
        text = f" seed {body['seed']} answer 42" + "".join(body.get("stop", []))
        self._send(200, {"choices": [{"text": text, "finish_reason": "stop"}]})


@pytest.fixture
def plain_server(request) -> Iterator[PlainServer]:
    server = PlainServer(**getattr(request, "param", {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def plain_backend(server: PlainServer, model_dir, **overrides) -> openai_api.OpenAIBackend:
    args = tiny_model_args(
        model_dir, "openai", api_base=server.base_url, served_model_name=SERVED, **overrides
    )
    return openai_api.load(args, str(model_dir))


@pytest.mark.parametrize("plain_server", [{"expect": 6}], indirect=True)
def test_plain_server_gets_text_prompts_all_at_once(plain_server, tiny_model_dir):
    backend = plain_backend(plain_server, tiny_model_dir)
    assert not backend.token_prompts and not backend.returns_token_ids
    tok = backend.tokenizer
    context = tok.encode("Solve 3x + 5 = 20.", add_special_tokens=False)
    requests = [GenerationRequest(context, 8, stop=[" done"], seed=s) for s in range(3)]
    requests += [GenerationRequest(context, 8, seed=s) for s in range(3, 6)]  # end at EOS

    results = backend.generate(requests, SamplingSettings())
    backend.close()

    assert [b["prompt"] for b in plain_server.seen] == [tok.decode(context)] * 6
    assert sorted(b["seed"] for b in plain_server.seen) == list(range(6))
    for request, result in zip(requests, results, strict=True):
        assert result.text == f" seed {request.seed} answer 42" + "".join(request.stop)
        assert result.token_ids == tok.encode(result.text, add_special_tokens=False)
        if request.stop:
            assert (result.stop_reason, result.stop_string) == ("stop", " done")
        else:
            assert (result.stop_reason, result.stop_string) == ("eos", None)


def test_api_key_is_sent_but_never_shown(plain_server, tiny_model_dir, monkeypatch):
    secret = "sk-test-do-not-print-7d1f"
    monkeypatch.setenv("LEAPT_TEST_KEY", secret)
    plain_server.status = 401
    with pytest.raises(openai_api.OpenAIBackendError) as err:
        plain_backend(plain_server, tiny_model_dir, api_key_env="LEAPT_TEST_KEY")
    assert plain_server.auth == [f"Bearer {secret}"]
    assert plain_server.base_url in str(err.value) and "401" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value.__cause__)


def test_unreachable_server_error_names_url(tiny_model_dir):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(openai_api.OpenAIBackendError, match="cannot reach " + url):
        openai_api.load(
            tiny_model_args(tiny_model_dir, "openai", api_base=url), str(tiny_model_dir)
        )


@pytest.mark.slow
def test_vllm_server_is_driven_with_token_ids(openai_backend, vllm_server):
    assert openai_backend.token_prompts and openai_backend.returns_token_ids
    assert openai_backend.max_model_len == MAX_MODEL_LEN


@pytest.mark.slow
def test_unknown_served_model_is_named(vllm_server, tiny_model_dir):
    args = tiny_model_args(
        tiny_model_dir, "openai", api_base=vllm_server.base_url, served_model_name="nope"
    )
    with pytest.raises(openai_api.OpenAIBackendError, match="does not serve model 'nope'"):
        openai_api.load(args, str(tiny_model_dir))

"""Completions endpoint of an OpenAI-compatible server (vLLM, SGLang, ...) as a Backend.

A cluster that already serves the teacher can run LeaP without loading the
model again.  Why it is built this way:

* One HTTP request per path (each has its own seed), sent from one thread
  pool of ``max_concurrent_requests`` as soon as a problem submits its round,
  so the server's continuous batching sees every path of every problem
  together and a problem moves on as soon as its own requests have answered.
* A timed-out request, an unreachable server and HTTP 429/5xx are retried
  ``request_attempts`` times in all, after 1, 2, 4, ... seconds capped at
  ``retry_max_delay``: on a shared cluster server one slow answer or a restart
  must not end a run of many hours, and every wait stays bounded.
* The context goes out as token ids when the server accepts them (vLLM does)
  and the new tokens come back as ids (vLLM's ``return_token_ids``), so paths
  are continued exactly as with the offline engine.  Servers without these
  get the decoded text and their output is tokenized locally: a fallback that
  may differ by a token at a boundary, decided once by a probe at load time.
* Which stop string ended a sample comes from vLLM's ``stop_reason``; other
  servers must return the stop string in the text (vLLM's
  ``include_stop_str_in_output``), else a stop cannot be told from an EOS and
  the path is recorded as ended by EOS.
* Sampling knobs vLLM accepts beyond the OpenAI schema (``top_k``, ``min_p``,
  ``include_stop_str_in_output``, ``skip_special_tokens``) ride in the body.
* The API key comes from the environment variable named in the config and is
  only ever put in the Authorization header, never in messages or logs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx

from inference.args import ModelArguments
from inference.backends.base import (
    GenerationRequest,
    GenerationResult,
    GroupedBackend,
    SamplingSettings,
)
from inference.backends.vllm_offline import context_limited, map_finish, result_from_ids
from leapt.config import ConfigError

_RETRY_STATUS = {429, 500, 502, 503, 504}


def backoff(attempt: int, max_delay: float) -> float:
    """Seconds to wait after failed try ``attempt`` (0-based): 1, 2, 4, ..., at most ``max_delay``."""
    return min(max_delay, 2.0**attempt)


class OpenAIBackendError(RuntimeError):
    """A server error or unreachable server, always naming the URL."""


class ServerUnusableError(OpenAIBackendError, ConfigError):
    """The server cannot be used at all (unreachable, refuses us, lacks the model).

    Found by the probe at load time, before any work: a ConfigError, so the CLI
    prints one line naming ``api_base`` and exits 2 instead of a traceback.
    """


class OpenAIBackend(GroupedBackend):
    """Backend that sends every request to ``{api_base}/completions``."""

    def __init__(self, model_args: ModelArguments, tokenizer: Any) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model_name = model_args.model
        self.served_name = model_args.served_model_name or model_args.model
        self.base_url = model_args.api_base.rstrip("/")
        headers = {}
        api_key = os.environ.get(model_args.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        concurrency = model_args.max_concurrent_requests
        self.attempts = model_args.request_attempts
        self.max_delay = model_args.retry_max_delay
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(model_args.request_timeout, connect=30.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        eos_id = tokenizer.eos_token_id
        self._eos_text = tokenizer.decode([eos_id]) if eos_id is not None else ""
        self.max_model_len: int | None = None
        #: at most max_concurrent_requests calls in flight across all problems' rounds
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="leapt-openai")
        #: each call in flight and the (group, slot) its result belongs to
        self.calls: dict[Future, tuple[Hashable, int]] = {}
        #: what the probe found the server to support (vLLM: both True)
        self.token_prompts = True
        self.returns_token_ids = True

    # -- HTTP ---------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One JSON call, retried on transient failures (see the module docstring); errors name the URL."""
        url = f"{self.base_url}{path}"
        for attempt in range(self.attempts):
            cause: Exception | None = None
            try:
                response = self.client.request(method, url, json=body)
            except httpx.TimeoutException as exc:
                cause, error = exc, OpenAIBackendError(f"request to {url} timed out ({exc})")
            except httpx.TransportError as exc:
                cause, error = exc, OpenAIBackendError(f"cannot reach {url}: {exc}")
            else:
                if response.status_code < 400:
                    return response.json()
                error = OpenAIBackendError(
                    f"{url} answered HTTP {response.status_code}: {response.text[:500]}"
                )
                if response.status_code not in _RETRY_STATUS:
                    raise error
            if attempt + 1 < self.attempts:
                time.sleep(backoff(attempt, self.max_delay))
        raise error from cause

    def probe(self) -> None:
        """Check the server serves our model and learn whether it speaks token ids."""
        models = self._call("GET", "/models").get("data", [])
        card = next((m for m in models if m.get("id") == self.served_name), None)
        if card is None:
            served = ", ".join(str(m.get("id")) for m in models) or "none"
            raise OpenAIBackendError(
                f"{self.base_url} does not serve model '{self.served_name}' (serves: {served}); "
                "set 'served_model_name'"
            )
        self.max_model_len = card.get("max_model_len")
        ids = self.tokenizer.encode("Hello", add_special_tokens=False)
        body = {"model": self.served_name, "prompt": ids, "max_tokens": 1, "return_token_ids": True}
        try:
            choice = self._call("POST", "/completions", body)["choices"][0]
        except OpenAIBackendError:
            self.token_prompts = False
            body["prompt"] = self.tokenizer.decode(ids)
            choice = self._call("POST", "/completions", body)["choices"][0]
        self.returns_token_ids = choice.get("token_ids") is not None

    # -- generation ---------------------------------------------------------

    def _body(self, request: GenerationRequest, sampling: SamplingSettings) -> dict:
        max_tokens = request.max_tokens
        if self.max_model_len is not None:
            max_tokens = min(max_tokens, self.max_model_len - len(request.token_ids))
        prompt: list[int] | str = list(request.token_ids)
        if not self.token_prompts:
            prompt = self.tokenizer.decode(request.token_ids, skip_special_tokens=False)
        body: dict[str, Any] = {
            "model": self.served_name,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "seed": request.seed,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else -1,
            "min_p": sampling.min_p,
            "include_stop_str_in_output": True,
            "skip_special_tokens": False,
            "return_token_ids": True,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _one(self, request: GenerationRequest, sampling: SamplingSettings) -> GenerationResult:
        choice = self._call("POST", "/completions", self._body(request, sampling))["choices"][0]
        return context_limited(self._result(choice, request.stop), request, self.max_model_len)

    def _result(self, choice: dict, stop: list[str]) -> GenerationResult:
        text: str = choice.get("text") or ""
        finish = choice.get("finish_reason")
        if "stop_reason" in choice:  # vLLM
            stop_reason, stop_string = map_finish(finish, choice["stop_reason"])
        elif finish == "stop":  # other servers: a stop string, if any, ends the text
            stop_string = next((s for s in stop if text.endswith(s)), None)
            stop_reason = "stop" if stop_string else "eos"
        else:
            stop_reason, stop_string = map_finish(finish, None)
        token_ids = choice.get("token_ids")
        if token_ids is not None:
            return result_from_ids(self.tokenizer, list(token_ids), stop_reason, stop_string)
        # fallback for servers without token ids: tokenize the text they returned
        if stop_reason == "eos" and self._eos_text and text.endswith(self._eos_text):
            text = text[: -len(self._eos_text)]
        token_ids = self.tokenizer.encode(text, add_special_tokens=False)
        return GenerationResult(
            token_ids=token_ids, text=text, stop_reason=stop_reason, stop_string=stop_string
        )

    def _start(
        self, key: Hashable, slot: int, request: GenerationRequest, sampling: SamplingSettings
    ) -> None:
        """Start the request's HTTP call on the shared pool (returns at once)."""
        self.calls[self.pool.submit(self._one, request, sampling)] = (key, slot)

    def _wait(self) -> None:
        """Wait for at least one call to answer; a failed call raises here, in the caller."""
        ended, _ = wait(self.calls, return_when=FIRST_COMPLETED)
        for future in ended:
            self._finish(*self.calls.pop(future), future.result())

    def close(self) -> None:
        """Stop the request pool and close the HTTP connections (the server is not ours to stop)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def load(model_args: ModelArguments, model_path: str) -> OpenAIBackend:
    """Connect to the server at ``model_args.api_base``; the tokenizer loads from ``model_path``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=model_args.trust_remote_code
    )
    backend = OpenAIBackend(model_args, tokenizer)
    try:
        backend.probe()
    except OpenAIBackendError as exc:
        backend.close()
        from leapt.redact import redact_urls

        reason = redact_urls(" ".join(str(exc).split()))
        raise ServerUnusableError(f"{reason} (key 'api_base')") from exc
    except Exception:
        backend.close()
        raise
    return backend

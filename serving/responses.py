"""A finished trace as an OpenAI response: one choice per path, usage, the trace id.

Each choice is one path: ``reasoning_content`` is the assistant's whole turn
with its LeaP blocks (summaries, peers' notes, cues) up to the think-end tag,
and ``content`` is the final answer: the text after the think-end tag when
the model wrote one, else the extracted answer in the task's format
(``\\boxed{7}``, ``ANSWER: C``), so that a harness's answer extraction finds
it.  ``finish_reason`` is ``stop`` for a path that ended by itself and
``length`` for one cut by its budget or context (the forced answer included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from eval.metrics import majority_vote
from inference.trace import NATURAL_END_FINISHES, PathRecord, Trace
from serving.requests import ServedRequest
from serving.worker import Usage


def split_path(path: PathRecord, think_end: str, task: str) -> tuple[str, str]:
    """``(content, reasoning_content)`` of one path."""
    turn = path.completion()
    at = turn.rfind(think_end)
    if at >= 0:
        return turn[at + len(think_end) :].strip(), turn[:at]
    if path.final_answer is None:
        return "", turn
    answer = path.final_answer
    return (f"\\boxed{{{answer}}}" if task == "math" else f"ANSWER: {answer}"), turn


def cut_at_stop(text: str, stop: list[str]) -> str:
    """``text`` up to the first of the stop strings, as a server stopping there would return it."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(ends)] if ends else text


def chosen_paths(trace: Trace, request: ServedRequest) -> list[int]:
    """Indices of the paths returned: all, or (``n`` 1, voted) the first with the majority answer."""
    if not request.voted:
        return list(range(len(trace.paths)))
    vote = majority_vote([p.final_answer for p in trace.paths], request.leap_args.task)
    return [0 if vote.index is None else vote.index]


def body(
    trace: Trace, request: ServedRequest, usage: Usage, think_end: str, chat: bool
) -> dict[str, Any]:
    """The whole (non-streamed) response body."""
    choices = []
    for index, i in enumerate(chosen_paths(trace, request)):
        path = trace.paths[i]
        content, reasoning = split_path(path, think_end, request.leap_args.task)
        content = cut_at_stop(content, request.stop)
        finish = "stop" if path.finish in NATURAL_END_FINISHES else "length"
        if chat:
            message = {"role": "assistant", "content": content, "reasoning_content": reasoning}
            choices.append({"index": index, "message": message, "finish_reason": finish})
        else:
            choices.append(
                {
                    "index": index,
                    "text": content,
                    "reasoning_content": reasoning,
                    "finish_reason": finish,
                    "logprobs": None,
                }
            )
    return {
        "id": ("chatcmpl-" if chat else "cmpl-") + trace.id,
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": choices,
        "usage": usage_dict(usage),
        "leapt": {
            "trace_id": trace.id,
            "method": trace.method,
            "paths": len(trace.paths),
            "answers": [p.final_answer for p in trace.paths],
            "finishes": [p.finish for p in trace.paths],
            "summary_tokens": sum(p.summary_tokens for p in trace.paths),
            "peer_exchanges": len(trace.routing),
        },
    }


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def sse_events(response: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """A finished chat response as server-sent events: each choice in one chunk, then ``[DONE]``.

    The paths are complete when the stream starts (a LeaP path's text is not
    final until its peers have spoken), so each choice comes as one delta
    followed by its finish; clients that always stream work unchanged.
    """
    head = {k: response[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"

    def event(choices: list[dict], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra}, ensure_ascii=False)}\n\n"

    for choice in response["choices"]:
        delta = dict(choice["message"])
        yield event([{"index": choice["index"], "delta": delta, "finish_reason": None}])
        yield event(
            [{"index": choice["index"], "delta": {}, "finish_reason": choice["finish_reason"]}]
        )
    if include_usage:
        yield event([], usage=response["usage"], leapt=response["leapt"])
    yield "data: [DONE]\n\n"

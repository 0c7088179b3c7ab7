"""An OpenAI request body read as one LeaP problem and its settings, or refused naming the field.

A request is one problem.  The method comes from the model name
(``leap-<name>``, ``leap_t-<name>``, ``independent-<name>``, ... as
``GET /v1/models`` lists them), ``n`` is the number of peer paths, the
OpenAI sampling fields map as vLLM's server maps them (``max_tokens`` is the
path's whole budget, ``top_k`` is the sampling top-k), and any LeaP setting
can be overridden in the ``leapt`` extension object
(``extra_body={"leapt": {"T": 4096, "top_k": 4}}``, where ``top_k`` is the
router's).  Everything is validated by :class:`~inference.args.LeapArguments`,
the checks ``leapt infer`` runs, before anything is queued: a bad field is an
HTTP 400 whose message names it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.args import EMBEDDED_MODEL, LeapArguments
from inference.methods import REGISTRY
from inference.problems import Problem
from leapt.config import ConfigError

#: LeaP settings the ``leapt`` extension may not set: the method comes from the model name, and
#: a protocol file is a path on the server, which a client has no business naming
NOT_OVERRIDABLE = ("method", "protocol")
#: OpenAI fields -> the LeapArguments field they set (``max_completion_tokens`` is the newer name)
SAMPLING_FIELDS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "sampling_top_k",
    "min_p": "min_p",
    "seed": "seed",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
}
#: OpenAI features a LeaP request cannot honour: refused rather than silently ignored
UNSUPPORTED = (
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "logit_bias",
    "echo",
    "suffix",
    "best_of",
)
N1_MODES = ("voted", "all")


class RequestError(ValueError):
    """A request the server refuses: HTTP ``status`` with one message naming ``field``."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass
class ServedRequest:
    """One validated request: the problem, the settings it runs with, how to answer."""

    problem: Problem
    leap_args: LeapArguments
    #: the name the client asked for (echoed in the response)
    model: str
    #: with ``n`` 1, return only the path holding the majority answer ("voted") or all paths
    voted: bool
    stream: bool
    include_usage: bool
    #: stop strings cut the returned content (the paths themselves ran to their own end)
    stop: list[str]


def served_name(model: str) -> str:
    """The model's name in ``/v1/models``: a folder's name, a Hub id as is, the embedded one."""
    if model == EMBEDDED_MODEL:
        return model.partition(":")[2]
    if model.startswith((".", "/", "~")) or Path(model).expanduser().is_dir():
        return Path(model).expanduser().resolve().name
    return model


def model_ids(name: str) -> list[str]:
    """Every ``<method>-<name>`` the server answers to."""
    return [f"{method}-{name}" for method in REGISTRY]


def method_of(model: Any, name: str) -> str:
    """The method a requested model id names; a 400 naming ``model`` otherwise."""
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required: one of " + ", ".join(model_ids(name)), "model")
    for method in sorted(REGISTRY, key=len, reverse=True):
        if model.startswith(method + "-"):
            if model[len(method) + 1 :] != name:
                raise RequestError(
                    f"model '{model}': this server runs '{name}' (field 'model'; "
                    f"GET /v1/models lists {', '.join(model_ids(name))})",
                    "model",
                )
            return method
    prefix = model.partition("-")[0]
    raise RequestError(
        f"model '{model}': unknown method prefix '{prefix}' (field 'model'; choose from "
        f"{', '.join(m + '-' for m in REGISTRY)}; GET /v1/models lists the names)",
        "model",
    )


def problem_text(body: dict[str, Any], chat: bool) -> tuple[str, str | None]:
    """The problem and the system message (if any) of a chat request, or a completion's ``prompt``.

    A chat request holds one user message, the problem, optionally after one system
    message (harnesses such as lm-eval's ``--system_instruction`` send one): it becomes
    the run's ``system_prompt``, rendered as ``leapt infer --system_prompt`` renders it.
    """
    if not chat:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError("'prompt' must be one non-empty string (one problem)", "prompt")
        return prompt, None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles not in (["user"], ["system", "user"]):
        raise RequestError(
            "'messages' must hold exactly one user message, the problem, optionally after one "
            f"system message (got roles {', '.join(map(str, roles))}): LeaP writes the rest of "
            "the conversation itself",
            "messages",
        )
    texts = [_message_text(m, i) for i, m in enumerate(messages)]
    return texts[-1], (texts[0] if len(texts) == 2 else None)


def _message_text(message: dict[str, Any], index: int) -> str:
    """A message's text (text content parts joined); a 400 naming the message otherwise."""
    where = f"'messages[{index}].content'"
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text ones, joined
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            raise RequestError(f"{where} may hold text parts only", "messages")
        content = "".join(str(p.get("text", "")) for p in content)
    if not isinstance(content, str) or not content.strip():
        raise RequestError(f"{where} must be a non-empty string", "messages")
    return content


def _typed(field: str, value: Any, annotation: Any) -> Any:
    """``value`` checked against a LeapArguments field's type; a 400 naming ``field`` if wrong."""
    kinds = typing.get_args(annotation) or (annotation,)
    if value is None and type(None) in kinds:
        return None
    if int in kinds and isinstance(value, int) and not isinstance(value, bool):
        return value
    if float in kinds and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if (str in kinds and isinstance(value, str)) or (bool in kinds and isinstance(value, bool)):
        return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
    raise RequestError(f"'{field}' must be {names}, got {value!r}", field)


def leap_settings(
    body: dict[str, Any], method: str, defaults: LeapArguments, n1_mode: str
) -> tuple[LeapArguments, bool]:
    """The request's LeapArguments (the server's config, overridden) and whether to vote down to one.

    OpenAI's ``n`` is the number of paths; with ``n`` 1 (what harnesses send,
    one request per sample) the server's ``n`` paths run and ``n1_mode``
    decides what comes back.  Errors name the request's field.
    """
    fields = typing.get_type_hints(LeapArguments)
    overrides: dict[str, Any] = {"method": method}
    #: LeapArguments field -> the request field that set it (what an error names)
    origin: dict[str, str] = {}
    for key, target in SAMPLING_FIELDS.items():
        if body.get(key) is not None:
            overrides[target] = _typed(key, body[key], fields[target])
            origin[target] = key
    extension = body.get("leapt", {})
    if not isinstance(extension, dict):
        raise RequestError("'leapt' must be an object of LeaP settings", "leapt")
    for key, value in extension.items():
        if key in ("problem_id", "n1"):
            continue
        if key not in fields or key in NOT_OVERRIDABLE:
            allowed = sorted(set(fields) - set(NOT_OVERRIDABLE))
            raise RequestError(
                f"unknown field 'leapt.{key}' (settable: {', '.join(allowed)})", f"leapt.{key}"
            )
        overrides[key] = _typed(f"leapt.{key}", value, fields[key])
        origin[key] = f"leapt.{key}"
    n = body.get("n", 1)
    if n is None:
        n = 1
    n = _typed("n", n, int)
    if n < 1:
        raise RequestError(f"'n' must be >= 1, got {n}", "n")
    mode = extension.get("n1", n1_mode)
    if mode not in N1_MODES:
        raise RequestError(f"'leapt.n1' must be one of {', '.join(N1_MODES)}", "leapt.n1")
    voted = n == 1 and mode == "voted"
    if n > 1:
        if "n" in extension and extension["n"] != n:
            raise RequestError(f"'n' ({n}) and 'leapt.n' ({extension['n']}) disagree", "n")
        overrides["n"] = n
        origin["n"] = "n"
    try:
        args = dataclasses.replace(defaults, **overrides)
    except ConfigError as exc:
        raise RequestError(
            _request_names(str(exc), origin), _named_field(str(exc), origin)
        ) from exc
    return args, voted


def _named_field(message: str, origin: dict[str, str]) -> str | None:
    """The request field behind the first setting a LeapArguments error message quotes."""
    quoted = sorted((message.find(f"'{k}'"), k) for k in origin if f"'{k}'" in message)
    return origin[quoted[0][1]] if quoted else None


def _request_names(message: str, origin: dict[str, str]) -> str:
    """A LeapArguments error message with its setting names spelled as the request spelled them."""
    for key, name in origin.items():
        message = message.replace(f"'{key}'", f"'{name}'")
    return message


def parse_request(
    body: Any,
    name: str,
    defaults: LeapArguments,
    n1_mode: str,
    chat: bool = True,
    max_paths: int | None = None,
) -> ServedRequest:
    """Validate a decoded JSON body into a :class:`ServedRequest` (or raise RequestError).

    ``max_paths`` caps the paths one request may ask for (a request's memory grows with them).
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    for key in UNSUPPORTED:
        if body.get(key) not in (None, False, [], {}):
            raise RequestError(f"'{key}' is not supported by a LeaP server", key)
    method = method_of(body.get("model"), name)
    text, system = problem_text(body, chat)
    leap_args, voted = leap_settings(body, method, defaults, n1_mode)
    if system is not None:
        leap_args = dataclasses.replace(leap_args, system_prompt=system)
    if max_paths is not None and leap_args.n > max_paths:
        field = "n" if body.get("n", 1) not in (None, 1) else "leapt.n"
        raise RequestError(
            f"'{field}' ({leap_args.n}) exceeds this server's max_paths ({max_paths})", field
        )
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise RequestError("'stop' must be a string or a list of strings", "stop")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", "stream_options")
    problem_id = body.get("leapt", {}).get("problem_id")
    if problem_id is None:  # the same problem with the same seed gives the same paths
        problem_id = "chat-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    elif not isinstance(problem_id, str) or not problem_id:
        raise RequestError("'leapt.problem_id' must be a non-empty string", "leapt.problem_id")
    return ServedRequest(
        problem=Problem(problem_id, text, None),
        leap_args=leap_args,
        model=body["model"],
        voted=voted,
        stream=bool(body.get("stream", False)),
        include_usage=bool(options.get("include_usage", False)),
        stop=[s for s in stop if s],
    )

"""A test double of the *model* (not of our code): a Backend whose text is scripted.

Protocol tests need a model that does specific things -- never closes its
summary, writes ``<summarize>`` on its own, ends one path early -- which a
random tiny model does only by chance.  The double sits behind the real
Backend interface and uses the real tiny tokenizer, so the engine, protocol,
routing and trace code under test are all the real ones.  It recognises which
path/turn/phase a request belongs to from the per-request seed the engine
derives, and honours ``max_tokens`` and stop strings like a real backend.
"""

from __future__ import annotations

from collections.abc import Callable

from inference.backends.base import GenerationRequest, GenerationResult, SamplingSettings
from inference.engine import derive_seed

EOS = object()
#: (path, turn, phase) -> text to emit; end the text with EOS marker via a tuple (text, EOS)
Script = Callable[[int, int, str], "str | tuple[str, object]"]


class ScriptedBackend:
    def __init__(self, tokenizer, script: Script, run_seed: int, problem_ids: list[str], n: int):
        self.tokenizer = tokenizer
        self.model_name = "scripted"
        self.script = script
        self.calls: list[list[GenerationRequest]] = []
        self._where = {
            derive_seed(run_seed, pid, path, turn, phase): (path, turn, phase)
            for pid in problem_ids
            for path in range(n)
            for turn in range(1, 200)
            for phase in ("reason", "summary", "forced")
        }

    def generate(
        self, requests: list[GenerationRequest], sampling: SamplingSettings
    ) -> list[GenerationResult]:
        self.calls.append(requests)
        return [self._one(r) for r in requests]

    def _one(self, req: GenerationRequest) -> GenerationResult:
        out = self.script(*self._where[req.seed])
        text, eos = (out[0], True) if isinstance(out, tuple) else (out, False)
        hits = [(text.find(s), s) for s in req.stop if s in text]
        stop = min(hits)[1] if hits else None
        if stop is not None:
            text, eos = text[: text.find(stop) + len(stop)], False
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) > req.max_tokens:
            ids = ids[: req.max_tokens]
            text = self.tokenizer.decode(ids)
            return GenerationResult(ids, text, "length")
        if stop is not None:
            return GenerationResult(ids, text, "stop", stop)
        return GenerationResult(ids, text, "eos" if eos else "length")

    def close(self) -> None:
        pass

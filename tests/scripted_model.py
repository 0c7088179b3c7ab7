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

from collections.abc import Callable, Iterable
from pathlib import Path

from inference.args import LeapArguments, ModelArguments
from inference.backends.base import GenerationRequest, GenerationResult, SamplingSettings
from inference.engine import derive_seed
from inference.problems import Problem
from inference.run import run_inference
from inference.trace import Trace, read_traces

EOS = object()
#: (path, turn, phase) -> text to emit; end the text with EOS marker via a tuple (text, EOS)
Script = Callable[[int, int, str], "str | tuple[str, object]"]

#: the problem and the filler reasoning most protocol tests use
ONE_PROBLEM = Problem("p1", "What is 2 + 2?", "4")
RAMBLE = "Let me think step by step. First compute 12 + 30 = 42. " * 20
#: a small LeaP run: 3 paths, one peer each, a block every 16 tokens, 40 tokens of budget
SMALL_LEAP = {"n": 3, "top_k": 1, "T": 16, "max_tokens": 40}


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


def run_scripted(
    out_dir: Path,
    model_dir: Path,
    script: Script,
    leap_args: LeapArguments,
    problems: list[Problem],
    *,
    seed_ids: Iterable[str] = (),
    grade: Callable | None = None,
    max_model_len: int | None = None,
) -> tuple[list[Trace], ScriptedBackend]:
    """Run ``problems`` through the real ``run_inference`` with a scripted model.

    Returns the traces written to ``out_dir`` and the backend (its ``calls``
    show what the engine asked for).  ``seed_ids`` names request ids beyond the
    problems' own (MoA's per-layer ids), so the script can tell their requests apart.
    """
    from transformers import AutoTokenizer

    ids = [p.id for p in problems] + list(seed_ids)
    backend = ScriptedBackend(
        AutoTokenizer.from_pretrained(model_dir), script, leap_args.seed, ids, leap_args.n
    )
    if max_model_len is not None:
        backend.max_model_len = max_model_len
    run_inference(
        ModelArguments(model=str(model_dir)),
        leap_args,
        problems,
        out_dir,
        backend=backend,
        grade=grade,
        progress=False,
    )
    return read_traces(Path(out_dir) / "traces.jsonl"), backend


def run_one(
    out_dir: Path, model_dir: Path, script: Script, max_model_len: int | None = None, **leap
) -> tuple[Trace, ScriptedBackend]:
    """:data:`ONE_PROBLEM` in a :data:`SMALL_LEAP` run (``leap`` overrides any setting)."""
    leap_args = LeapArguments(**{**SMALL_LEAP, **leap})
    (trace,), backend = run_scripted(
        out_dir, model_dir, script, leap_args, [ONE_PROBLEM], max_model_len=max_model_len
    )
    return trace, backend

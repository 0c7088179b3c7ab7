"""The trace record every stage shares, and the append-only file that holds it.

One JSON line per finished problem (the fields of :class:`Trace`).  Lines are appended
and flushed (and fsync'ed) as each problem ends, so a killed run loses at most
the problem in flight; a half-written last line is detected on reopen and cut
off, never parsed as data and never duplicated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

SegmentKind = Literal["prompt", "model", "peer"]
#: how a path ended: EOS after (``think_end``) or without (``eos``) a think-end tag, budget
#: spent with no forced answer (``budget``), forced answer (``forced``), context full (``context``)
Finish = Literal["think_end", "eos", "budget", "forced", "context"]
SEGMENT_KINDS: tuple[str, ...] = get_args(SegmentKind)
#: finishes that are a natural end: the model stopped by itself (not cut by the budget or
#: forced to answer)
NATURAL_END_FINISHES = frozenset({"think_end", "eos"})


@dataclass
class Segment:
    """A run of text with who wrote it: engine instructions, the model, or peers."""

    kind: SegmentKind
    text: str


@dataclass
class PathRecord:
    """One reasoning path: its segments in order plus how and where it ended."""

    segments: list[Segment] = field(default_factory=list)
    final_answer: str | None = None
    correct: bool | None = None
    generated_tokens: int = 0
    summary_tokens: int = 0
    finish: Finish | None = None

    def text(self, kinds: Iterable[str] = SEGMENT_KINDS) -> str:
        """Concatenate the segments whose kind is in ``kinds``."""
        wanted = set(kinds)
        return "".join(s.text for s in self.segments if s.kind in wanted)

    def completion(self) -> str:
        """Everything after the first prompt segment: the assistant's full turn."""
        return "".join(s.text for s in self.segments[1:])


@dataclass
class RoutingRecord:
    """Which peers' summaries one path received at one LeaP turn."""

    turn: int
    path: int
    peers: list[int]


@dataclass
class Trace:
    """Everything one problem produced under one method."""

    id: str
    problem: str
    answer: str | None
    options: list[str] | None = None
    method: str = "leap"
    config: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    paths: list[PathRecord] = field(default_factory=list)
    routing: list[RoutingRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        data = dict(data)
        data["paths"] = [
            PathRecord(
                **{
                    **p,
                    "segments": [Segment(**s) for s in p.get("segments", [])],
                }
            )
            for p in data.get("paths", [])
        ]
        data["routing"] = [RoutingRecord(**r) for r in data.get("routing", [])]
        return cls(**data)


class TraceFile:
    """Append-only JSONL of traces with resume semantics.

    ``done_ids()`` tells a rerun which problems to skip; ``append()`` writes one
    complete line and fsyncs it before returning.  Opening repairs a torn last
    line left by a killed process.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        """Truncate an incomplete (unterminated or unparsable) final line."""
        data = self.path.read_bytes() if self.path.exists() else b""
        if not data:
            return
        keep = len(data)
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
        else:
            last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
            try:
                json.loads(data[last_start:])
            except ValueError:
                keep = last_start
        if keep < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(keep)

    def __iter__(self) -> Iterator[Trace]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield Trace.from_dict(json.loads(line))

    def done_ids(self) -> set[str]:
        """Ids of problems already finished in this file."""
        return {t.id for t in self}

    def append(self, trace: Trace) -> None:
        """Write one trace as one line, flushed to disk before returning."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(trace.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_traces(path: str | Path) -> list[Trace]:
    """All traces of a ``traces.jsonl`` file (read-only; no repair)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    out.append(Trace.from_dict(json.loads(line)))
                except ValueError:
                    continue
    return out

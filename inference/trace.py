"""The trace record every stage shares, and the append-only file that holds it.

One JSON line per finished problem (the fields of :class:`Trace`).  Lines are appended
and flushed (and fsync'ed) as each problem ends, so a killed run loses at most
the problem in flight; a half-written last line is detected on reopen and cut
off, never parsed as data and never duplicated.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from leapt.config import ConfigError

logger = logging.getLogger(__name__)

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


class CorruptTraceLine(ConfigError):
    """A line in the middle of a traces file that is not a trace: stop, never skip it silently."""


def _recovery(path: Path, number: int) -> str:
    return (
        f"{path} line {number} is not a valid trace (the file was edited or damaged); "
        f"move the file aside to start over, or delete line {number} to rerun that problem"
    )


def scan_traces(path: str | Path) -> Iterator[tuple[int, Trace]]:
    """(line number, trace) of every line, one line in memory at a time.

    A last line that is unterminated or does not parse is what a killed writer
    leaves: it is skipped here and cut off by :class:`TraceFile` on reopen.
    Any other line that is not a trace raises :class:`CorruptTraceLine`
    naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        pending: int | None = None  # the number of a bad line, fatal unless it is the last
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if pending is not None:
                raise CorruptTraceLine(_recovery(path, pending))
            trace = _parse(line) if line.endswith(b"\n") else None
            if trace is None:
                pending = number
                continue
            yield number, trace


def _parse(line: bytes) -> Trace | None:
    """The trace of one line, or None when it is not one."""
    try:
        record = json.loads(line)
        return Trace.from_dict(record) if isinstance(record.get("id"), str) else None
    except (ValueError, TypeError, KeyError, AttributeError):  # UnicodeDecodeError included
        return None


def _last_newline(fh: Any, end: int, chunk: int = 1 << 16) -> int:
    """Offset of the last newline before ``end`` (-1 if none), reading backwards in chunks."""
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        fh.seek(start)
        found = fh.read(pos - start).rfind(b"\n")
        if found >= 0:
            return start + found
        pos = start
    return -1


class TraceFile:
    """Append-only JSONL of traces with resume semantics.

    ``done_ids()`` tells a rerun which problems to skip; ``append()`` writes one
    complete line and fsyncs it before returning.  Opening repairs a torn last
    line left by a killed process.  Nothing reads the whole file at once: a
    resume over a file of many gigabytes holds one line at a time.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        """Truncate an incomplete (unterminated or unparsable) final line."""
        if not self.path.exists():
            return
        with open(self.path, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                keep = _last_newline(fh, size) + 1
            else:
                start = _last_newline(fh, size - 1) + 1
                fh.seek(start)
                try:
                    json.loads(fh.read(size - start))
                    keep = size
                except ValueError:
                    keep = start
            if keep < size:
                fh.truncate(keep)

    def __iter__(self) -> Iterator[Trace]:
        for _, trace in scan_traces(self.path):
            yield trace

    def done_ids(self) -> set[str]:
        """Ids of problems already finished in this file."""
        return {trace.id for _, trace in scan_traces(self.path)}

    def append(self, trace: Trace) -> None:
        """Write one trace as one line, flushed to disk before returning."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(trace.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_traces(path: str | Path) -> list[Trace]:
    """All traces of a ``traces.jsonl`` file (read-only; no repair).

    For readers (``leapt report``, ``leapt view``): a line that is not a trace
    is skipped, and one warning says how many were.
    """
    out, skipped = [], 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            trace = _parse(line)
            if trace is None:
                skipped += 1
            else:
                out.append(trace)
    if skipped:
        logger.warning(
            "skipped %d corrupt line%s of %s", skipped, "" if skipped == 1 else "s", path
        )
    return out

"""Traces -> the JSON the viewer page renders: pieces by author, rows by LeaP turn, routing.

Everything the page shows is computed here, in Python, so the page's script
only lays it out.  Traces are read generically through ``inference.trace``:
the only protocol knowledge used is the summarize tag name (from the trace's
``config`` when recorded, else from the protocol file the run named, else the
packaged default), never the engine's exact wording.

Authors of a piece: ``prompt`` (engine text), ``model`` (sampled), ``summary``
(model text inside the summarize tags) and ``peer`` (the injected peer block).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inference.routing import similarity
from inference.trace import PathRecord, Segment, Trace

Piece = list[str]  # [author, text]; a list so it serialises to a compact JSON pair
#: the row label of a path's text after its last peer exchange (or of a path without any)
END_ROW = "end"


def summary_tags(config: dict[str, Any]) -> tuple[str, str]:
    """Opening and closing summarize tags the run used.

    Prefers a tag recorded in the trace config, then the protocol file the run
    named (if it is still readable), then the packaged protocol.
    """
    from inference.protocol import load_protocol

    tag = config.get("summarize_tag")
    if not isinstance(tag, str) or not tag:
        source = config.get("protocol")
        try:
            protocol = load_protocol(source if source and Path(source).is_file() else None)
        except Exception:  # noqa: BLE001 - a broken protocol file must not break viewing
            protocol = load_protocol()
        tag = protocol.summarize_tag
    return f"<{tag}>", f"</{tag}>"


def _push(out: list[Piece], author: str, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == author:
        out[-1][1] += text
    else:
        out.append([author, text])


def _update_inside(text: str, tags: tuple[str, str], inside: bool) -> bool:
    """Whether engine text leaves a summary open (it wrote the opening or the closing tag)."""
    opened, closed = text.rfind(tags[0]), text.rfind(tags[1])
    if opened < 0 and closed < 0:
        return inside
    return opened > closed


def split_pieces(segments: Iterable[Segment], tags: tuple[str, str]) -> list[Piece]:
    """Segments -> pieces, with model text inside the summarize tags marked ``summary``.

    The opening tag may be engine text (LeaP) or model text (LeaP-T); the
    closing tag may be model text or engine text (a cut-off summary), so the
    "inside a summary" state runs across segments.  Peer blocks quote other
    paths' summaries and never change it.
    """
    out: list[Piece] = []
    inside = False
    open_tag, close_tag = tags
    for seg in segments:
        if seg.kind != "model":
            _push(out, seg.kind, seg.text)
            if seg.kind == "prompt":
                inside = _update_inside(seg.text, tags, inside)
            continue
        text, pos = seg.text, 0
        while pos < len(text):
            tag = close_tag if inside else open_tag
            at = text.find(tag, pos)
            if inside:
                end = len(text) if at < 0 else at + len(tag)
                _push(out, "summary", text[pos:end])
            else:
                end = len(text) if at < 0 else at
                _push(out, "model", text[pos:end])
                if at >= 0:
                    _push(out, "summary", tag)
                    end = at + len(tag)
            if at >= 0:
                inside = not inside
            pos = end
    return out


def _summary_text(chunk: list[Piece], tags: tuple[str, str]) -> str:
    """The last summary of a turn, without tags, stripped: what the router compared."""
    bodies = [text for author, text in chunk if author == "summary"]
    if not bodies:
        return ""
    return bodies[-1].replace(tags[0], "").replace(tags[1], "").strip()


def _chunks(pieces: list[Piece]) -> list[list[Piece]]:
    """One chunk per LeaP turn, then the rest: cut after each peer block and the engine text
    right after it (the reflection cue), so a turn's row holds its whole exchange."""
    chunks: list[list[Piece]] = [[]]
    for i, piece in enumerate(pieces):
        chunks[-1].append(piece)
        cue_follows = piece[0] == "peer" and i + 1 < len(pieces) and pieces[i + 1][0] == "prompt"
        ends_block = piece[0] == "peer" and not cue_follows
        ends_block |= piece[0] == "prompt" and i > 0 and pieces[i - 1][0] == "peer"
        if ends_block:
            chunks.append([])
    return chunks


def _row_label(turn: int | str, any_turns: bool) -> str:
    if turn != END_ROW:
        return f"turn {turn}"
    return "after last exchange" if any_turns else "whole path"


def problem_view(trace: Trace) -> dict[str, Any]:
    """The per-problem document: shared prompt, rows, per-path cells, routing per turn.

    Rows are LeaP turns: a path's k-th peer block closes its k-th routed turn
    (the routing record says which).  When a path's peer blocks do not match
    its routing records (e.g. MoA quotes answers in the prompt, no routing),
    that path is one cell in the last row.
    """
    tags = summary_tags(trace.config or {})
    first = trace.paths[0].segments[:1] if trace.paths else []
    shared = bool(first) and all(p.segments[:1] == first for p in trace.paths)
    turns_of: dict[int, list[int]] = {}
    for record in trace.routing:
        turns_of.setdefault(record.path, []).append(record.turn)

    cells: list[dict[str | int, list[Piece]]] = []
    summaries: dict[int, dict[int, str]] = {}  # turn -> path -> summary text
    for index, path in enumerate(trace.paths):
        pieces = split_pieces(path.segments[1:] if shared else path.segments, tags)
        chunks = _chunks(pieces)
        turns = sorted(turns_of.get(index, []))
        row_cells: dict[str | int, list[Piece]] = {}
        if len(chunks) == len(turns) + 1:
            for turn, chunk in zip(turns, chunks, strict=False):
                row_cells[turn] = chunk
                summaries.setdefault(turn, {})[index] = _summary_text(chunk, tags)
            if chunks[-1]:
                row_cells[END_ROW] = chunks[-1]
        else:
            row_cells[END_ROW] = pieces
        cells.append(row_cells)

    turn_rows = sorted({t for c in cells for t in c if t != END_ROW})
    rows: list[int | str] = turn_rows + ([END_ROW] if any(END_ROW in c for c in cells) else [])
    return {
        "id": trace.id,
        "problem": trace.problem,
        "gold": trace.answer,
        "options": trace.options,
        "prompt": first[0].text if shared else None,
        "rows": [{"key": str(r), "label": _row_label(r, bool(turn_rows))} for r in rows],
        "paths": [
            {**_path_facts(path), "cells": {str(k): v for k, v in c.items()}}
            for path, c in zip(trace.paths, cells, strict=True)
        ],
        "routing": [routing_view(trace, turn, summaries.get(turn, {})) for turn in turn_rows],
    }


def routing_view(trace: Trace, turn: int, summaries: dict[int, str]) -> dict[str, Any]:
    """Who read whom at one turn, with the router's similarity between the summaries.

    Rows are the paths that read peers at this turn, columns every path involved
    (LeaP-S records only its lead path as a reader).  The similarity is
    recomputed with ``inference.routing.similarity`` from the summaries as they
    stand in the paths (the router's own inputs); ``None`` where a summary is
    not in the trace.
    """
    peers = {r.path: r.peers for r in trace.routing if r.turn == turn}
    readers = sorted(peers)
    columns = sorted(set(readers).union(*peers.values()))

    def sim(a: int, b: int) -> float | None:
        if a == b or a not in summaries or b not in summaries:
            return None
        return round(similarity(summaries[a], summaries[b]), 3)

    return {
        "turn": turn,
        "paths": readers,
        "columns": columns,
        "peers": {str(p): peers[p] for p in readers},
        "similarity": [[sim(a, b) for b in columns] for a in readers],
    }


def _path_facts(path: PathRecord) -> dict[str, Any]:
    return {
        "answer": path.final_answer,
        "correct": path.correct,
        "finish": path.finish,
        "tokens": path.generated_tokens,
        "summary_tokens": path.summary_tokens,
    }


def problem_entry(trace: Trace) -> dict[str, Any]:
    """The line of the problem list: gold, each path's answer and correctness."""
    return {
        "id": trace.id,
        "gold": trace.answer,
        "problem": trace.problem,
        "answers": [p.final_answer for p in trace.paths],
        "correct": [p.correct for p in trace.paths],
        "exchanges": len(trace.routing),
    }


def run_facts(traces: list[Trace]) -> dict[str, Any]:
    """Model, method and the settings worth showing above a run's problems."""
    config = (traces[0].config or {}) if traces else {}
    keys = ("n", "T", "router", "top_k", "max_tokens", "summary_max_tokens", "seed")
    return {
        "model": traces[0].model if traces else "",
        "method": traces[0].method if traces else "",
        "settings": {k: config[k] for k in keys if k in config},
    }

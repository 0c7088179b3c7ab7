"""Protocol adherence, measured from traces alone: does the model *do* LeaP by itself?

Accuracy says whether peers helped; these say whether the model followed the
protocol that lets them help.  Definitions (each a ratio of counts pooled over
every path of every problem; the 95% interval is a percentile bootstrap over
problems, like the accuracy intervals):

* **summary_closed_rate** - of all summaries (engine- or self-opened), the
  share the model closed itself with the closing tag after non-empty text of its
  own (an opening the engine prefilled does not count).  The
  engine stops a summary at its token cap and closes it itself, so a summary
  the model closed is also under the cap.
* **self_open_rate** - the share of paths that write the opening summary tag
  on their own at least once (the LeaP-T behaviour; ``leap_t`` stops there
  and runs a LeaP block).  Under ``leap`` the engine opens every block, so
  this is ~0 unless the model opens one anyway.
* **peer_use_rate** - of the reflections after a peer block that carried at
  least one peer summary, the share that *use* a peer's content: the
  reflection (the model's text after the block, up to the next engine text)
  shares a word trigram with the block's peer summaries that appears nowhere
  earlier in the path (problem, own reasoning, own summary) nor in the
  protocol's own sentences.  Words are lower-cased ``\\w+`` runs.
  Some overlap arises by chance (common phrases), so **peer_use_chance**
  applies the same test against the peer block of *another* problem (the next
  one in id order); the honest signal is the gap between the two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inference.protocol import Protocol, load_protocol
from inference.summaries import Tags, find_summaries
from inference.trace import PathRecord, Trace

NGRAM = 3
RATES = ("summary_closed_rate", "self_open_rate", "peer_use_rate", "peer_use_chance")
_COUNTS = {
    "summary_closed_rate": ("summaries_closed", "summaries"),
    "self_open_rate": ("self_opening_paths", "paths"),
    "peer_use_rate": ("reflections_using_peers", "reflections"),
    "peer_use_chance": ("reflections_using_other_peers", "reflections_with_other"),
}


def _grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def protocol_of(trace: Trace) -> Protocol:
    """The run's protocol: its recorded ``--protocol`` file if still present, else the packaged one."""
    path = (trace.config or {}).get("protocol")
    return load_protocol(path if path and Path(path).is_file() else None)


def _blocks(path: PathRecord) -> list[tuple[str, str, str]]:
    """``(text before the block, peer text, reflection)`` for each peer block of ``path``."""
    out = []
    segments = path.segments
    for i, seg in enumerate(segments):
        if seg.kind != "peer":
            continue
        j = i + 1
        while j < len(segments) and segments[j].kind == "prompt":  # the reflection cue
            j += 1
        reflection = segments[j].text if j < len(segments) and segments[j].kind == "model" else ""
        before = "".join(s.text for s in segments[:i])
        out.append((before, seg.text, reflection))
    return out


def _uses(reflection: str, peer_text: str, before: str, boilerplate: set) -> bool:
    peer = _grams(peer_text) - _grams(before) - boilerplate
    return bool(peer & _grams(reflection))


def problem_adherence(trace: Trace, other: Trace | None) -> dict[str, int]:
    """Counts behind every rate for one problem (``other``: the chance control's problem)."""
    proto = protocol_of(trace)
    tags = Tags(proto.summary_open, proto.summary_close)
    boilerplate = _grams(
        " ".join(
            [
                *proto.summary_triggers,
                *proto.summary_openings,
                proto.reflection_cue,
                proto.no_peers_cue,
                proto.no_peers_text,
            ]
        )
        + proto.peer_block([])
    )
    counts = dict.fromkeys([c for pair in _COUNTS.values() for c in pair], 0)
    counts["paths"] = len(trace.paths)
    other_blocks = [
        b[1]
        for p in (other.paths if other else [])
        for b in _blocks(p)
        if _grams(b[1]) - boilerplate
    ]
    for path in trace.paths:
        summaries = find_summaries(path, tags)
        counts["summaries"] += len(summaries)
        counts["summaries_closed"] += sum(s.closed and bool(s.written.strip()) for s in summaries)
        counts["self_opening_paths"] += any(s.self_opened for s in summaries)
        for before, peer_text, reflection in _blocks(path):
            if not (_grams(peer_text) - _grams(before) - boilerplate):
                continue  # a "no peers" block: nothing to use
            counts["reflections"] += 1
            counts["reflections_using_peers"] += _uses(reflection, peer_text, before, boilerplate)
            if other_blocks:
                control = other_blocks[counts["reflections_with_other"] % len(other_blocks)]
                counts["reflections_with_other"] += 1
                counts["reflections_using_other_peers"] += _uses(
                    reflection, control, before, boilerplate
                )
    return counts


def _ratio(rows: Sequence[dict], num: str, den: str) -> float:
    total = sum(r[den] for r in rows)
    return sum(r[num] for r in rows) / total if total else math.nan


def _ratio_ci(rows: Sequence[dict], num: str, den: str, seed: int, resamples: int = 1000):
    """95% bootstrap interval over problems of a ratio over paths, and its bootstrap std error."""
    if not rows or not sum(r[den] for r in rows):
        return (math.nan, math.nan, math.nan)
    nums = np.array([r[num] for r in rows], dtype=float)
    dens = np.array([r[den] for r in rows], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(rows), size=(resamples, len(rows)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = nums[idx].sum(axis=1) / dens[idx].sum(axis=1)
    ratios = ratios[~np.isnan(ratios)]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return (float(low), float(high), float(np.std(ratios, ddof=1)))


def adherence_rows(traces: Sequence[Trace]) -> list[dict]:
    """Per-problem counts (with the problem ``id``), problems in id order."""
    ordered = sorted(traces, key=lambda t: t.id)
    return [
        {
            "id": t.id,
            **problem_adherence(t, ordered[(i + 1) % len(ordered)] if len(ordered) > 1 else None),
        }
        for i, t in enumerate(ordered)
    ]


def adherence_from_rows(rows: Sequence[dict], seed: int = 0) -> dict:
    """Every rate of the module docstring, its interval, and the counts behind it."""

    def r(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 6)

    keys = [c for pair in _COUNTS.values() for c in pair]
    out: dict = {"counts": {k: sum(row[k] for row in rows) for k in dict.fromkeys(keys)}}
    for rate, (num, den) in _COUNTS.items():
        out[rate] = r(_ratio(rows, num, den))
        low, high, stderr = _ratio_ci(rows, num, den, seed)
        out[f"{rate}_ci"] = [r(low), r(high)]
        out[f"{rate}_stderr"] = r(stderr)
    return out


def adherence_metrics(traces: Sequence[Trace], seed: int = 0) -> dict:
    """:func:`adherence_from_rows` of the traces of one run."""
    return adherence_from_rows(adherence_rows(traces), seed)

"""Where a path's summaries are, read back from its labelled segments.

The engine opens a summary with a prompt segment (trigger plus opening tag), a
LeaP-T model may open one in its own text, and only the model's text up to the
closing tag is the summary.  Both ``leapt generate``'s filters and
``leapt eval``'s adherence rates read summaries this way, so it lives with the
trace it reads, below both.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.trace import PathRecord


@dataclass(frozen=True)
class Tags:
    """The summary tag pair the teacher's protocol used (defaults: the paper's)."""

    summary_open: str = "<summarize>"
    summary_close: str = "</summarize>"


@dataclass
class Summary:
    """One summary of a path and whether the model closed it.

    ``opening`` is what the engine prefilled right after the opening tag
    (the first words of the summary, empty when the engine prefills nothing),
    ``written`` is the model's own text up to the closing tag.
    """

    written: str
    closed: bool
    opening: str = ""
    #: the model wrote the opening tag itself (LeaP-T), rather than the engine's trigger
    self_opened: bool = False

    @property
    def text(self) -> str:
        """The summary as peers read it (without tags)."""
        return self.opening + self.written


def _opened_by_engine(text: str, tags: Tags) -> str | None:
    """The engine's prefilled opening if this prompt text opens a summary, else None.

    The engine writes the trigger, the opening tag and possibly the first
    words of the summary as one prompt segment, so the tag is found by
    position, not assumed to end the segment.
    """
    start = text.rfind(tags.summary_open)
    if start < 0:
        return None
    opening = text[start + len(tags.summary_open) :]
    return None if tags.summary_close in opening else opening


def find_summaries(path: PathRecord, tags: Tags) -> list[Summary]:
    """The summaries in ``path``, in order.

    A summary starts where a prompt segment holds the opening tag (the
    engine's trigger, perhaps followed by a prefilled opening) or where the
    model writes the opening tag itself (LeaP-T), and runs over the following
    *model* text up to the closing tag.  If any other segment (e.g. an
    engine-inserted closing tag) or the end of the path comes first, the model
    did not close it.
    """
    found: list[Summary] = []
    current: list[str] | None = None
    opening, self_opened = "", False
    for seg in path.segments:
        if seg.kind != "model":
            if current is not None:
                found.append(Summary("".join(current), False, opening, self_opened))
                current = None
            engine_opening = _opened_by_engine(seg.text, tags) if seg.kind == "prompt" else None
            if engine_opening is not None:
                current, opening, self_opened = [], engine_opening, False
            continue
        rest = seg.text
        while rest:
            if current is None:
                start = rest.find(tags.summary_open)
                if start < 0:
                    break
                current, opening, self_opened = [], "", True
                rest = rest[start + len(tags.summary_open) :]
                continue
            end = rest.find(tags.summary_close)
            if end < 0:
                current.append(rest)
                break
            current.append(rest[:end])
            found.append(Summary("".join(current), True, opening, self_opened))
            current, rest = None, rest[end + len(tags.summary_close) :]
    if current is not None:
        found.append(Summary("".join(current), False, opening, self_opened))
    return found

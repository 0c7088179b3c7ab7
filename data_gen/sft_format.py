"""Turn one kept teacher path into one SFT row.

Two views of the same example, because trainers need both:

- ``messages``: the conversation as the chat template expects it: the
  system message of ``system_prompt`` (if one was set), the user message
  holding the problem prompt the engine rendered, and one assistant message holding the whole generated turn,
  peer blocks and cues included, exactly as the teacher saw it.
- ``segments``: the same text split by author.  ``segments[0]`` is the
  rendered prompt (chat scaffolding included) and ``"".join(segments[1:])``
  equals the assistant content character for character, so a trainer can put
  labels on ``model`` text only and never teach the student to invent its
  peers' words or the engine's cues.

Why the rendered prompt is kept verbatim: some templates (e.g. R1-Distill's)
append ``<think>\\n`` to the generation prompt and strip reasoning from
assistant messages when re-rendering, so re-applying the template to
``messages`` does not reproduce what the teacher was conditioned on; the
segments do.
"""

from __future__ import annotations

from typing import Any

from inference.trace import Segment, Trace

#: columns of every row, in order (the dataset card documents them)
COLUMNS: tuple[str, ...] = (
    "id",
    "path_index",
    "problem",
    "answer",
    "final_answer",
    "messages",
    "segments",
    "finish",
    "generated_tokens",
    "method",
    "teacher",
    "source",
)


def to_row(
    trace: Trace,
    index: int,
    prompt_messages: list[dict[str, str]],
    source: str,
    segments: list[Segment] | None = None,
) -> dict[str, Any]:
    """The SFT row of path ``index`` of ``trace``.

    ``prompt_messages`` are the (user) messages rendered into the first
    (prompt) segment; ``segments`` replace the path's own when the row's
    prompt is not the teacher's (see ``data_gen.harvest.RowPrompt``).
    """
    path = trace.paths[index]
    segments = path.segments if segments is None else segments
    if not segments or segments[0].kind != "prompt":
        raise ValueError(f"path {index} of problem {trace.id} does not start with a prompt segment")
    return {
        "id": trace.id,
        "path_index": index,
        "problem": trace.problem,
        "answer": None if trace.answer is None else str(trace.answer),
        "final_answer": path.final_answer,
        "messages": [
            *prompt_messages,
            {"role": "assistant", "content": "".join(s.text for s in segments[1:])},
        ],
        "segments": [{"kind": s.kind, "text": s.text} for s in segments],
        "finish": path.finish,
        "generated_tokens": path.generated_tokens,
        "method": trace.method,
        "teacher": trace.model,
        "source": source,
    }

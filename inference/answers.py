"""Pull the final answer out of a model's text: ``\\boxed{}`` for math, a letter for choices.

Pure string functions with no heavy imports, because the engine (to record
``final_answer``), the grader and data synthesis all call them on every path.
When a text holds several candidate answers the *last* one wins: reasoning
models revise themselves, and the answer they end on is the one they commit to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: LaTeX box commands whose argument is taken as the answer (``\framebox`` appears in solutions)
_BOX_COMMANDS = ("\\boxed", "\\fbox", "\\framebox")
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
#: letters a multiple-choice answer may use (GPQA has four; allow up to ten options)
OPTION_LETTERS = "ABCDEFGHIJ"

_CHOICE_PATTERNS = (
    # "ANSWER": "C"  (the JSON-like format GPQA prompts ask for); quotes optional/single
    re.compile(r"""["']?(?i:answer)["']?\s*:\s*["']\s*\(?([A-Ja-j])\)?\s*["']"""),
    # ANSWER: C   /  Answer: (C)  /  **Answer:** **C**  /  Answer: $C$ (open-r1's "Answer: $LETTER")
    re.compile(r"""\b(?i:answer)[\s*]*:[\s*$]*\(?([A-J])\)?(?![A-Za-z0-9])"""),
    # the answer is (C)  /  correct option is: C  /  answer would be **B**
    # (the letter must be a capital: "the answer is a bit tricky" is no answer)
    re.compile(
        r"""\b(?i:answer|option|choice)\s+(?i:is|would\s+be|should\s+be)\s*:?[\s*]*"""
        r"""(?:(?i:option|choice)\s+)?\(?([A-J])\)?(?![A-Za-z0-9])"""
    ),
)
_WRAPPERS_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_BOXED_LETTER_RE = re.compile(r"^\(?([A-J])\)?(?:\s*[.:)]\s*.*)?$", re.DOTALL)


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at ``text[start] == '{'`` and the index after it.

    Escaped braces (``\\{``) do not count, so ``\\boxed{\\{1,2\\}}`` keeps its set.
    """
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _iter_boxed(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(position, content)`` for every box command with a usable argument.

    Handles ``\\boxed{...}`` with nested braces and the short form ``\\boxed 5``
    (argument = the next run of non-space characters, minus closing ``$`` or
    punctuation).  An unclosed brace group is skipped: the model was cut off.
    """
    for match in _BOX_RE.finditer(text):
        pos = match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            continue
        if text[pos] == "{":
            group = _braced(text, pos)
            if group is None:
                continue
            content = group[0].strip()
        elif match.end() < pos:  # short form needs a space: "\boxed 5", not "\boxedx"
            short = re.match(r"[^\s$]+", text[pos:])
            content = short.group(0).rstrip(".,;") if short else ""
        else:
            continue
        if content:
            yield match.start(), content


def extract_boxed(text: str | None) -> str | None:
    """The argument of the last ``\\boxed{}``/``\\fbox{}`` in ``text``, or None if there is none."""
    if not text:
        return None
    last = None
    for _, content in _iter_boxed(text):
        last = content
    return last


def _boxed_letter(content: str) -> str | None:
    """A choice letter if a boxed answer is just a letter like ``C``, ``(C)`` or ``\\text{C}``."""
    inner = content
    for _ in range(3):  # peel nested \text{\textbf{C}}
        inner = _WRAPPERS_RE.sub(r"\1", inner)
    match = _BOXED_LETTER_RE.match(inner.strip())
    return match.group(1).upper() if match else None


def extract_choice(text: str | None) -> str | None:
    """The last multiple-choice letter the text commits to (``A``..``J``), or None.

    Recognises ``"ANSWER": "C"``, ``ANSWER: C``, ``Answer: (C)``, ``\\boxed{C}``,
    ``\\boxed{\\text{(C)}}`` and ``the answer is (C)``; among all matches the
    one that starts last in the text wins.
    """
    if not text:
        return None
    best: tuple[int, str] | None = None
    for pattern in _CHOICE_PATTERNS:
        for match in pattern.finditer(text):
            letter = match.group(1).upper()
            if letter in OPTION_LETTERS and (best is None or match.start() >= best[0]):
                best = (match.start(), letter)
    for pos, content in _iter_boxed(text):
        letter = _boxed_letter(content)
        if letter is not None and (best is None or pos >= best[0]):
            best = (pos, letter)
    return best[1] if best else None


def extract_answer(text: str | None, task: str) -> str | None:
    """The final answer of ``text`` for ``task`` ``"math"`` (boxed) or ``"choice"`` (a letter)."""
    if task == "math":
        return extract_boxed(text)
    if task == "choice":
        return extract_choice(text)
    raise ValueError(f"unknown task {task!r} (choose 'math' or 'choice')")


def answer_text(path: Any) -> str:
    """The text a path's answer is read from: its completion without peers' words.

    ``path`` is a :class:`inference.trace.PathRecord`.  Peer blocks quote other
    paths' summaries, which may hold *their* ``\\boxed{}``; the first prompt
    segment (question and instructions) may mention ``\\boxed{}`` too.  Later
    prompt segments are kept: the forced-answer suffix opens the box the
    model then closes.
    """
    return "".join(s.text for s in path.segments[1:] if s.kind != "peer")

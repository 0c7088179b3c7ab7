"""Decide whether an extracted answer is right: math equivalence and choice letters.

Pure functions (no model, no files) so that ``leapt eval``, ``leapt report`` and
data synthesis (keep only traces with a correct answer) share one grader.

Math answers are compared with ``math-verify`` (LaTeX -> sympy), after a cheap
exact/integer check that settles AIME-style answers (``070`` = ``70``) without
sympy.  ``math-verify`` bounds its own work with ``signal.alarm``, which only
works in the main thread; elsewhere we turn that off and bound the call with a
watchdog thread instead, so grading is safe from worker threads and one
pathological expression can never hang an evaluation.  Any error or timeout
counts as "not equivalent": a path without a usable answer is wrong, never a
crash.

Multiple choice: problems carry their options already shuffled and the gold
*letter* as ``answer`` (see :func:`shuffle_options`, used by the benchmark
loader), so grading a choice is a letter comparison.

Grading scope (``grading_scope``): which text of a path is graded, and how.

- ``path`` (default): the path's own text (no first prompt, no peer blocks), last
  ``\boxed{}``, math-verify equivalence.
- ``after_think``: the same, on the part after the last think-end tag only
  (lighteval drops the reasoning section before grading); a path that never
  closed its thinking is graded whole, as lighteval keeps an unclosed section.
- ``lighteval``: the after-think text through math-verify's own extraction
  (``parse`` with its expression and LaTeX configs, rightmost match first), as
  lighteval's math metrics do; choices as in ``after_think``.
- ``authors``: the LeaP authors' grader (:mod:`eval.authors_grader`): prompt,
  every chunk and the peers' blocks, last ``\boxed{}`` anywhere, last number
  as fallback, lenient matching.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from inference.answers import OPTION_LETTERS, answer_text, extract_answer
from leapt.config import check_choice

if TYPE_CHECKING:
    from inference.problems import Problem
    from inference.trace import PathRecord, Trace

TASKS = ("math", "choice")
GRADING_SCOPES = ("path", "after_think", "lighteval", "authors")
#: seconds allowed for parsing + comparing one (prediction, gold) pair
DEFAULT_TIMEOUT = 5

_INT_RE = re.compile(r"^[+-]?\d+$")
_STRIP_RE = re.compile(r"^\$+|\$+$|\\[,;!]|\\left|\\right|\s+")
_LETTER_RE = re.compile(r"^\(?([A-Ja-j])\)?[.:)]?$")

logger = logging.getLogger(__name__)


def _normalize(text: str) -> str:
    """Whitespace/dollar/spacing-command-free form used for the cheap exact check."""
    return _STRIP_RE.sub("", text.strip())


def _math_verify_equal(pred: str, gold: str, timeout: int | None) -> bool:
    """``math-verify`` equivalence of two bare answers (each wrapped as a boxed expression)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold_parsed = parse(f"$\\boxed{{{gold}}}$", extraction_config=config, parsing_timeout=timeout)
    pred_parsed = parse(f"$\\boxed{{{pred}}}$", extraction_config=config, parsing_timeout=timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def _with_watchdog(fn: Callable[[], bool], timeout: float) -> bool:
    """Run ``fn`` in a daemon thread; give up (False) after ``timeout`` seconds.

    Used off the main thread, where ``signal.alarm`` is unavailable.  A call
    that overruns keeps running in the background but no longer blocks grading.
    """
    result: list[bool] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception:  # noqa: BLE001 - any grader failure means "not equal"
            result.append(False)

    worker = threading.Thread(target=target, daemon=True, name="leapt-grade")
    worker.start()
    worker.join(timeout)
    if not result:
        logger.warning("math equivalence check timed out after %ss; counted as wrong", timeout)
        return False
    return result[0]


@lru_cache(maxsize=65536)
def math_equal(pred: str, gold: str, timeout: int = DEFAULT_TIMEOUT) -> bool:
    """True when two math answers are equivalent (``\\frac{1}{2}`` = ``0.5``, ``070`` = ``70``)."""
    a, b = _normalize(pred), _normalize(gold)
    if not a or not b:
        return False
    if a == b:
        return True
    if _INT_RE.match(a) and _INT_RE.match(b):
        return int(a) == int(b)
    if threading.current_thread() is threading.main_thread():
        try:
            return _math_verify_equal(pred, gold, timeout)
        except Exception:  # noqa: BLE001 - math-verify raising means "not equal"
            return False
    return _with_watchdog(lambda: _math_verify_equal(pred, gold, None), timeout)


def choice_letter(text: str | None) -> str | None:
    """An upper-case option letter from ``C``, ``(c)``, ``C.``; None if it is not one."""
    if text is None:
        return None
    match = _LETTER_RE.match(text.strip())
    return match.group(1).upper() if match else None


def grade_answer(pred: str | None, gold: str | None, task: str) -> bool:
    """Whether ``pred`` (an extracted answer) matches ``gold``; no answer is always wrong."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if pred is None or gold is None:
        return False
    if task == "choice":
        letter = choice_letter(pred)
        return letter is not None and letter == choice_letter(str(gold))
    return math_equal(str(pred), str(gold))


def task_of(trace: Trace) -> str:
    """The answer format of a trace: its recorded ``config.task``, else choice iff it has options."""
    task = (trace.config or {}).get("task")
    if task in TASKS:
        return task
    return "choice" if trace.options else "math"


def grade_trace(
    trace: Trace,
    task: str | None = None,
    *,
    overwrite: bool = False,
    scope: str = "path",
    think_end: str = "</think>",
) -> Trace:
    """Fill ``final_answer`` and ``correct`` on every path of ``trace`` (in place; returned).

    A path that already has a verdict keeps it unless ``overwrite``: traces
    graded at inference time stay exactly as recorded, so reports made from
    them later are reproducible.  A problem without a gold answer gets
    ``correct = None`` (ungradable, excluded from accuracy).  Another ``scope``
    than ``path`` regrades every path with it (:func:`scoped_grade`).
    """
    task = task or task_of(trace)
    if scope != "path":
        for path in trace.paths:
            path.final_answer, path.correct = scoped_grade(
                path, trace.answer, task, scope, think_end
            )
        return trace
    for path in trace.paths:
        if path.correct is not None and not overwrite:
            continue
        if path.final_answer is None or overwrite:
            path.final_answer = extract_answer(answer_text(path), task)
        path.correct = (
            None if trace.answer is None else grade_answer(path.final_answer, trace.answer, task)
        )
    return trace


def make_grader(task: str) -> Callable[[Problem, str | None], bool | None]:
    """The ``grade`` hook of ``run_inference``: ``grade(problem, final_answer) -> correct``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")

    def grade(problem: Problem, final_answer: str | None) -> bool | None:
        if problem.answer is None:
            return None
        return grade_answer(final_answer, problem.answer, task)

    return grade


def _after_think(text: str, think_end: str) -> str:
    """The text after the last ``think_end`` (all of it when thinking was never closed)."""
    return text.rsplit(think_end, 1)[-1] if think_end and think_end in text else text


def _lighteval_math(
    text: str, gold: str, timeout: int = DEFAULT_TIMEOUT
) -> tuple[str | None, bool]:
    """math-verify's own extraction of ``text`` (rightmost match first) checked against ``gold``."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [ExprExtractionConfig(), LatexExtractionConfig()]
    found: list = []

    def run(limit: int | None) -> bool:
        pred = parse(text, config, "first_match", "first_match", parsing_timeout=limit)
        found.extend(pred)
        gold_parsed = parse(f"${gold}$", config, parsing_timeout=limit)
        return bool(pred and gold_parsed and verify(gold_parsed, pred, timeout_seconds=limit))

    if threading.current_thread() is threading.main_thread():
        try:
            ok = run(timeout)
        except Exception:  # noqa: BLE001 - math-verify raising means "not equal"
            ok = False
    else:
        ok = _with_watchdog(lambda: run(None), timeout)
    answer = str(found[-1]) if found else None
    return answer, ok


def scoped_grade(
    path: PathRecord, gold: str | None, task: str, scope: str, think_end: str = "</think>"
) -> tuple[str | None, bool | None]:
    """(answer, verdict) of one path under ``grading_scope`` ``scope`` (see the module doc).

    ``None`` as the verdict when there is no gold answer.
    """
    from eval import authors_grader

    check_choice("grading_scope", scope, GRADING_SCOPES, what="grading scope")
    if scope == "authors":
        if gold is None:
            return authors_grader.extract(path.text(), ""), None
        return authors_grader.grade(path.text(), str(gold))
    text = answer_text(path)
    if scope != "path":
        text = _after_think(text, think_end)
    if scope == "lighteval" and task == "math":
        if gold is None:
            return None, None
        return _lighteval_math(text, str(gold))
    answer = extract_answer(text, task)
    return answer, None if gold is None else grade_answer(answer, gold, task)


def shuffle_options(
    options: Sequence[str], key: str, seed: int = 0, correct_index: int = 0
) -> tuple[list[str], str]:
    """Shuffle a question's options reproducibly; return them and the gold letter.

    Convention: the raw options list the correct one at ``correct_index``
    (``0`` by default, as when built from GPQA's "Correct Answer" followed by
    its "Incorrect Answer" columns).  The permutation depends only on ``seed``
    and ``key`` (the problem id), through SHA-256 rather than Python's salted
    ``hash``, so every run, process and machine presents the same order and
    the gold letter is known without storing the permutation.
    """
    if not options:
        raise ValueError(f"problem {key!r} has no options to shuffle")
    if len(options) > len(OPTION_LETTERS):
        raise ValueError(
            f"problem {key!r} has {len(options)} options; at most {len(OPTION_LETTERS)}"
        )
    if not 0 <= correct_index < len(options):
        raise ValueError(f"problem {key!r}: correct_index {correct_index} out of range")
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    order = list(range(len(options)))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    shuffled = [options[i] for i in order]
    return shuffled, OPTION_LETTERS[order.index(correct_index)]

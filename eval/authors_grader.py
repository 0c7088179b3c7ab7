"""The LeaP authors' grader, rewritten: what ``grading_scope: authors`` scores with.

The public LeaP code (``leap/utils/math_utils.py``, ``is_correct``) grades the
*whole* text of a path: the prompt (chat template and question), every chunk the
model wrote and the peers' comment blocks.  It lower-cases that text, takes the
content of the last ``\\boxed{`` anywhere in it (a peer's box or the
instruction's empty ``\\boxed{}`` included), and when that is empty falls back to
the last number in the text (if the gold answer is a number) or to the words
after "answer is" / "solution is" / "answer should be" / the last "is".  The
match is lenient: after a normalisation (fractions, ``\\left``, units, ``k =``
prefixes, spaces) two answers are equal as numbers, as strings, or when one
contains the other (either way round, three characters or more, neither
negative).  This module reproduces that behaviour with our own code so a report
can state how often it and our stricter grading disagree; it is never the
default.
"""

from __future__ import annotations

import re

_NUMBER_RE = re.compile(r"[\-+]?\d*[\.,/]?\d+")
_PAREN_FRACTION_RE = re.compile(r"\(\((\d+)\)/\((\d+)\)\)")
_ANSWER_PHRASES = ("answer is", "solution is", "answer should be")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` (balanced braces), in order; an unclosed one is skipped."""
    contents = []
    for match in re.finditer(r"\\boxed\{", text):
        depth = 0
        for end in range(match.start(), len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    contents.append(text[match.end() : end])
                    break
    return contents


def _phrase_answer(text: str) -> str | None:
    """The words after the last answer phrase (or the last "is") up to the end of its line."""
    for phrase in (*_ANSWER_PHRASES, "is"):
        if phrase in text:
            candidate = text.split(phrase)[-1]
            candidate = candidate.strip().lstrip(":").strip().split(".\n")[0].strip().strip(".")
            return candidate.removesuffix(".").strip()
    return None


def extract(text: str, gold: str) -> str | None:
    """The answer the authors' code reads from ``text`` for gold ``gold`` (both lower-cased)."""
    text, gold = text.lower(), gold.lower()
    boxed = _boxed_contents(text)
    answer = boxed[-1].strip() if boxed else None
    if answer in (None, "", "{}"):
        if _is_number(normalize(gold)):
            numbers = _NUMBER_RE.findall(text)
            answer = numbers[-1] if numbers else answer
        else:
            answer = _phrase_answer(text)
    return answer


def _fix_fracs(text: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``, ``\frac1{b}`` -> ``\frac{1}{b}``."""
    head, *parts = text.split("\\frac")
    out = head
    for part in parts:
        out += "\\frac"
        if part.startswith("{"):
            out += part
        elif len(part) < 2:
            return text
        elif part[1] == "{":
            out += "{" + part[0] + "}" + part[1:]
        else:
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
    return out


def _fix_sqrt(text: str) -> str:
    r"""``\sqrt3`` -> ``\sqrt{3}``."""
    head, *parts = text.split("\\sqrt")
    return head + "".join(
        "\\sqrt" + (p if p.startswith("{") else "{" + p[:1] + "}" + p[1:]) for p in parts
    )


def _slash_fraction(text: str) -> str:
    """``3/4`` (two integers) -> ``\\frac{3}{4}``."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    return f"\\frac{{{match.group(1)}}}{{{match.group(2)}}}" if match else text


def normalize(text: str) -> str:
    """The authors' answer normalisation (their ``strip_string``), step for step."""
    text = _PAREN_FRACTION_RE.sub(r"\\frac{\1}{\2}", text)
    for old, new in (
        (",", ""),
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ):
        text = text.replace(old, new)
    if text.count("\\text{ ") == 1:  # units written as "\text{ cm}" on the right
        text = text.split("\\text{ ")[0]
    text = text.replace("\\%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text.startswith("."):
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = _fix_sqrt(text).replace("\\quad", " ").replace(" ", "")
    text = _fix_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_fraction(text)


def _is_number(text: str) -> bool:
    try:
        float(text.strip("$"))
    except ValueError:
        return False
    return True


def equivalent(pred: str | None, gold: str) -> bool:
    """The authors' lenient comparison (their ``is_equiv``) of two lower-cased answers."""
    if pred is None:
        return False
    if max(pred.count("\\text{ "), gold.count("\\text{ ")) > 1:
        return pred == gold  # their unit stripping fails on these and falls back to equality
    a, b = normalize(pred), normalize(gold)
    if _is_number(a) and _is_number(b):
        return float(a.strip("$")) == float(b.strip("$"))
    if re.fullmatch(r"\$[^$]+\$", b):
        return b.strip("$") in a.strip("$")
    if not a.startswith("-") and not b.startswith("-"):
        if len(a) >= 3 and not _is_number(a) and a in b:
            return True
        if len(b) >= 3 and not _is_number(b) and b in a:
            return True
    return a == b


def grade(text: str, gold: str) -> tuple[str | None, bool]:
    """(answer read, verdict) of the authors' grader on a path's whole text."""
    answer = extract(text, gold)
    return answer, equivalent(answer, gold.lower())

"""Word n-gram overlap between texts: the index behind decontamination and the protocol check.

A text *overlaps* a benchmark when it shares any word n-gram (default 8 words,
after lower-casing and stripping punctuation and LaTeX markup) with one of its
problems.  ``leapt generate`` drops training problems that overlap an
evaluation set (``data_gen.decontaminate``); ``leapt eval`` warns when the
protocol text a model is shown (preamble, examples, triggers, cues) overlaps
the benchmark it is scored on, since a worked example taken from a benchmark
item hands the peer methods that item and not the baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from inference.problems import Problem

_WORD_RE = re.compile(r"[a-z0-9]+")


def normalize_words(text: str) -> list[str]:
    """Lower-cased alphanumeric words: ``$s+\\frac{1}{2}$`` and ``s + 1/2`` compare alike."""
    return _WORD_RE.findall(text.lower())


def ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """Word n-grams of ``text`` in text order; a text shorter than ``n`` words is one n-gram."""
    words = normalize_words(text)
    if len(words) < n:
        return [tuple(words)] if words else []
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


@dataclass
class Contamination:
    """Why one training problem was dropped."""

    id: str
    benchmark: str
    benchmark_id: str
    ngram: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


class NgramIndex:
    """All n-grams of the benchmark problems, each mapped to the first problem holding it."""

    def __init__(self, n: int = 8):
        if n < 1:
            raise ValueError(f"n-gram length must be >= 1, got {n}")
        self.n = n
        self._owner: dict[tuple[str, ...], tuple[str, str]] = {}

    def add(self, benchmark: str, problems: Iterable[Problem]) -> None:
        for problem in problems:
            for gram in ngrams(problem.problem, self.n):
                self._owner.setdefault(gram, (benchmark, problem.id))

    def match(self, problem: Problem) -> Contamination | None:
        """The first (in text order) n-gram ``problem`` shares with a benchmark, if any."""
        for gram in ngrams(problem.problem, self.n):
            owner = self._owner.get(gram)
            if owner is not None:
                return Contamination(problem.id, owner[0], owner[1], " ".join(gram))
        return None


def protocol_overlaps(texts: dict[str, str], index: NgramIndex) -> list[tuple[str, Contamination]]:
    """``(key, hit)`` for every protocol text (by key) that shares an n-gram with ``index``."""
    hits = []
    for key, text in texts.items():
        hit = index.match(Problem(key, text, None))
        if hit is not None:
            hits.append((key, hit))
    return hits

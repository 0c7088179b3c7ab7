"""Keep evaluation problems out of the training data.

Historical AIME collections overlap the years we evaluate on, and reworded
copies circulate, so an exact-match check is not enough: a training problem is
dropped when it shares any word n-gram (default 8 words, after lower-casing
and stripping punctuation and LaTeX markup) with any benchmark problem.  The
report names the benchmark problem and the shared n-gram so a reviewer can
judge each drop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.problems import Problem
from leapt.config import ConfigError

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


def decontaminate(
    problems: Sequence[Problem], index: NgramIndex
) -> tuple[list[Problem], list[Contamination]]:
    """Split ``problems`` into the clean ones (order kept) and the reasons for each drop."""
    clean, dropped = [], []
    for problem in problems:
        hit = index.match(problem)
        if hit is None:
            clean.append(problem)
        else:
            dropped.append(hit)
    return clean, dropped


def load_benchmark_problems(
    source: str, local_files: dict[str, str] | None = None
) -> tuple[str, list[Problem]]:
    """``(label, problems)`` of one ``decontam_benchmarks`` entry.

    An entry is an eval registry name (``aime24``), read from its file in
    ``local_files`` when it has one (``aimo25``, which has no Hub copy), or a
    local json/jsonl/parquet file.
    """
    from eval.benchmarks import load_benchmark
    from inference.args import DataArguments
    from inference.problems import load_problems

    if Path(source).suffix.lower() in (".json", ".jsonl", ".parquet"):
        if not Path(source).is_file():
            raise ConfigError(f"benchmark file {source} does not exist (key 'decontam_benchmarks')")
        return source, load_problems(DataArguments(source=source), columns_key=None)
    from eval.benchmarks import get_benchmark

    get_benchmark(source, key="decontam_benchmarks")
    return source, load_benchmark(source, local=(local_files or {}).get(source))


def build_index(
    sources: Sequence[str], n: int, local_files: dict[str, str] | None = None
) -> NgramIndex:
    """An index over every benchmark in ``sources`` (registry names or local files)."""
    index = NgramIndex(n)
    for source in sources:
        index.add(*load_benchmark_problems(source, local_files))
    return index

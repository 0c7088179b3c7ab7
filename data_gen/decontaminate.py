"""Keep evaluation problems out of the training data.

Historical AIME collections overlap the years we evaluate on, and reworded
copies circulate, so an exact-match check is not enough: a training problem is
dropped when it shares any word n-gram (default 8 words, after lower-casing
and stripping punctuation and LaTeX markup) with any benchmark problem.  The
report names the benchmark problem and the shared n-gram so a reviewer can
judge each drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eval.overlap import Contamination, NgramIndex, ngrams, normalize_words
from inference.problems import Problem
from leapt.config import ConfigError

__all__ = [
    "Contamination",
    "NgramIndex",
    "build_index",
    "decontaminate",
    "load_benchmark_problems",
    "ngrams",
    "normalize_words",
]


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

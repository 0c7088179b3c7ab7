"""Which teacher paths become training examples, and why the others did not.

A LeaP-T student learns the protocol from what it imitates, so a kept path
must *show* the protocol done well: it ends on its own with a right answer,
every summary it wrote is closed by the model itself within the token cap,
and it read at least one real peer summary.  Each rule can be switched off
(the "+SFT" control data has no LeaP blocks at all), and every dropped path is
counted under the first rule it fails so ``stats.json`` adds up to the total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from inference.trace import PathRecord, Trace

#: rule names in the order they are checked; also the keys of ``stats.json``
RULES: tuple[str, ...] = (
    "ended_naturally",
    "summaries_ok",
    "peer_exchange",
    "correct",
    "duplicate",
    "problem_cap",
)
#: finishes that mean the model stopped by itself (not cut by the budget or forced to answer)
NATURAL_FINISHES = frozenset({"think_end", "eos"})


@dataclass(frozen=True)
class Tags:
    """The summary tag pair the teacher's protocol used (defaults: the paper's)."""

    summary_open: str = "<summarize>"
    summary_close: str = "</summarize>"


@dataclass
class FilterSettings:
    """Switches and limits of the filters (built from ``GenerateArguments``)."""

    require_natural_end: bool = True
    require_summaries_ok: bool = True
    require_peer_exchange: bool = True
    require_correct: bool = True
    drop_duplicates: bool = True
    #: most kept paths per problem; ``None`` keeps all
    max_paths_per_problem: int | None = None
    summary_max_tokens: int = 256
    tags: Tags = field(default_factory=Tags)

    def enforced(self, rule: str) -> bool:
        """Whether a failed per-path ``rule`` drops the path."""
        return {
            "ended_naturally": self.require_natural_end,
            "summaries_ok": self.require_summaries_ok,
            "peer_exchange": self.require_peer_exchange,
            "correct": self.require_correct,
        }[rule]


@dataclass
class Summary:
    """One summary a path wrote: its text (without tags) and whether the model closed it."""

    text: str
    closed: bool


@dataclass
class FilterResult:
    """Kept ``(trace, path index)`` pairs plus counts of every drop by reason."""

    kept: list[tuple[Trace, int]] = field(default_factory=list)
    #: first failed rule per dropped path (sums to the number of dropped paths)
    dropped: Counter = field(default_factory=Counter)
    #: paths failing each rule, enforced or not (a path can fail several)
    failures: Counter = field(default_factory=Counter)
    problems: int = 0
    paths: int = 0

    def stats(self) -> dict:
        """JSON-ready counts for ``stats.json``."""
        return {
            "problems": self.problems,
            "paths": self.paths,
            "kept": len(self.kept),
            "problems_with_kept_paths": len({t.id for t, _ in self.kept}),
            "dropped": {rule: self.dropped.get(rule, 0) for rule in RULES},
            "rule_failures": {rule: self.failures.get(rule, 0) for rule in RULES},
        }


def find_summaries(path: PathRecord, tags: Tags) -> list[Summary]:
    """The summaries in ``path``, in order.

    A summary starts where a prompt segment ends with the opening tag (the
    engine's trigger) or where the model writes the opening tag itself (LeaP-T),
    and runs over the following *model* text up to the closing tag.  If any
    other segment (e.g. an engine-inserted closing tag) or the end of the path
    comes first, the model did not close it.
    """
    found: list[Summary] = []
    current: list[str] | None = None
    for seg in path.segments:
        if seg.kind != "model":
            if current is not None:
                found.append(Summary("".join(current), closed=False))
                current = None
            if seg.kind == "prompt" and seg.text.rstrip().endswith(tags.summary_open):
                current = []
            continue
        rest = seg.text
        while rest:
            if current is None:
                start = rest.find(tags.summary_open)
                if start < 0:
                    break
                current, rest = [], rest[start + len(tags.summary_open) :]
                continue
            end = rest.find(tags.summary_close)
            if end < 0:
                current.append(rest)
                break
            current.append(rest[:end])
            found.append(Summary("".join(current), closed=True))
            current, rest = None, rest[end + len(tags.summary_close) :]
    if current is not None:
        found.append(Summary("".join(current), closed=False))
    return found


def has_peer_exchange(trace: Trace, index: int) -> bool:
    """Whether path ``index`` received at least one peer's summary.

    The routing records say which peers a path read; a peer segment is the
    text that carried them.  Both must be present (a "no comments" block has
    no routed peers).
    """
    path = trace.paths[index]
    routed = any(r.peers for r in trace.routing if r.path == index)
    return routed and any(s.kind == "peer" and s.text.strip() for s in path.segments)


def path_failures(
    trace: Trace,
    index: int,
    settings: FilterSettings,
    count_tokens: Callable[[str], int] | None,
) -> list[str]:
    """Every per-path rule that path ``index`` fails, enforced or not.

    Switched-off rules are still checked so ``stats.json`` shows how many
    paths they would have dropped (the summary rule only when a token counter
    is given); :meth:`FilterSettings.enforced` decides what is dropped.
    """
    path = trace.paths[index]
    failed = []
    if path.finish not in NATURAL_FINISHES:
        failed.append("ended_naturally")
    if settings.require_summaries_ok and count_tokens is None:
        raise ValueError("the summary token cap needs a tokenizer (count_tokens)")
    if count_tokens is not None:
        for summary in find_summaries(path, settings.tags):
            if not summary.closed or count_tokens(summary.text) > settings.summary_max_tokens:
                failed.append("summaries_ok")
                break
    if not has_peer_exchange(trace, index):
        failed.append("peer_exchange")
    if path.correct is not True:
        failed.append("correct")
    return failed


def filter_trace(
    result: FilterResult,
    trace: Trace,
    settings: FilterSettings,
    count_tokens: Callable[[str], int] | None,
) -> None:
    """Apply every enabled rule to the paths of one problem, adding to ``result``.

    Per-path rules come first; among the survivors, exact duplicates of an
    earlier kept completion are dropped, then paths beyond
    ``max_paths_per_problem`` (lowest path index first, so the choice is
    reproducible and independent of sharding).
    """
    result.problems += 1
    seen: set[str] = set()
    kept_here = 0
    for index, path in enumerate(trace.paths):
        result.paths += 1
        all_failed = path_failures(trace, index, settings, count_tokens)
        result.failures.update(all_failed)
        failed = [rule for rule in all_failed if settings.enforced(rule)]
        if failed:
            result.dropped[failed[0]] += 1
            continue
        text = path.completion()
        if settings.drop_duplicates and text in seen:
            result.dropped["duplicate"] += 1
            result.failures["duplicate"] += 1
            continue
        seen.add(text)
        cap = settings.max_paths_per_problem
        if cap is not None and kept_here >= cap:
            result.dropped["problem_cap"] += 1
            result.failures["problem_cap"] += 1
            continue
        kept_here += 1
        result.kept.append((trace, index))


def filter_traces(
    traces: Iterable[Trace],
    settings: FilterSettings,
    count_tokens: Callable[[str], int] | None = None,
) -> FilterResult:
    """:func:`filter_trace` over many problems."""
    result = FilterResult()
    for trace in traces:
        filter_trace(result, trace, settings, count_tokens)
    return result

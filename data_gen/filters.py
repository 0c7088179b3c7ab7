"""Which teacher paths become training examples, and why the others did not.

A LeaP-T student learns the protocol from what it imitates, so a kept path
must *show* the protocol done well: it ends on its own with a right answer,
every summary it wrote is closed by the model itself within the token cap,
its own text never imitates the engine's part of the protocol (a peer block,
a peer label, the trigger or the cue: a student trained on that would invent
its peers), and it read at least one real peer summary.  Each rule can be switched off
(the "+SFT" control data has no LeaP blocks at all), and every dropped path is
counted under the first rule it fails so ``stats.json`` adds up to the total.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from inference.protocol import Protocol, load_protocol
from inference.summaries import Tags, find_summaries
from inference.trace import NATURAL_END_FINISHES, PathRecord, Trace

#: rule names in the order they are checked: the switches of :class:`FilterSettings`, the
#: ``filter_<rule>`` keys of ``leapt generate`` and the keys of ``stats.json``
RULES: tuple[str, ...] = (
    "natural_end",
    "summaries",
    "imitation",
    "peer_exchange",
    "correct",
    "duplicates",
    "max_paths_per_problem",
)
#: the rules a path can fail on its own (checked even when switched off, for the counts)
PATH_RULES = RULES[:5]
#: ways a path can imitate the protocol (keys of ``stats.json`` counts.imitation)
IMITATION_REASONS: tuple[str, ...] = ("comment_tag", "peer_label", "trigger", "cue", "no_peers")


#: consecutive words of an engine sentence that, found in the model's text, count as a copy
IMITATION_NGRAM = 8


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _phrases(text: str, n: int) -> frozenset[str]:
    """Every run of ``n`` consecutive words of ``text`` (the whole text if shorter), as
    space-joined strings."""
    words = _words(text)
    if len(words) <= n:
        return frozenset({" ".join(words)} if words else ())
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class ImitationCheck:
    """Marks of the engine's protocol text that a teacher must not write itself.

    Built from the protocol the traces were made with.  Reasons, in order:
    ``comment_tag`` (opens or closes a peer block), ``peer_label`` (e.g.
    ``Peer 2:``, a label followed by a colon, as in a peer block), and a copy
    of a ``trigger``, a ``cue`` (after peers or after none) or the ``no_peers`` sentence: any run of
    :data:`IMITATION_NGRAM` consecutive words of it (the whole sentence if
    shorter), compared case-insensitively on words.  The model writing
    ``<summarize>`` itself is the LeaP-T behaviour and is not imitation.
    """

    comment_tags: tuple[str, ...]
    peer_label: re.Pattern
    sentences: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> ImitationCheck:
        label = re.escape(protocol.peer_label).replace(re.escape("{i}"), r"\d+")
        sentences = (
            *(("trigger", trigger) for trigger in protocol.summary_triggers),
            ("cue", protocol.reflection_cue),
            ("cue", protocol.no_peers_cue),
            ("no_peers", protocol.no_peers_text),
        )
        return cls(
            comment_tags=(f"<{protocol.comment_tag}>", f"</{protocol.comment_tag}>"),
            peer_label=re.compile(label + r"\s*:"),
            sentences=tuple((name, _phrases(text, IMITATION_NGRAM)) for name, text in sentences),
        )

    def reason(self, path: PathRecord) -> str | None:
        """The first way the model's own text imitates the protocol, or None."""
        text = path.text(["model"])
        if any(tag in text for tag in self.comment_tags):
            return "comment_tag"
        if self.peer_label.search(text):
            return "peer_label"
        written = f" {' '.join(_words(text))} "
        for name, phrases in self.sentences:
            if any(f" {phrase} " in written for phrase in phrases):
                return name
        return None


def default_imitation_check() -> ImitationCheck:
    return ImitationCheck.from_protocol(load_protocol())


@dataclass
class FilterSettings:
    """Switches and limits of the filters (built from ``GenerateArguments``).

    Each switch is named after its rule (:data:`RULES`): on, a path failing it is dropped.
    """

    natural_end: bool = True
    summaries: bool = True
    imitation: bool = True
    peer_exchange: bool = True
    correct: bool = True
    duplicates: bool = True
    #: most kept paths per problem; ``None`` keeps all
    max_paths_per_problem: int | None = None
    summary_max_tokens: int = 256
    tags: Tags = field(default_factory=Tags)
    imitation_check: ImitationCheck = field(default_factory=default_imitation_check)

    def enforced(self, rule: str) -> bool:
        """Whether a failed per-path ``rule`` drops the path."""
        return getattr(self, rule)

    def as_dict(self) -> dict:
        """The switches and limits, for ``stats.json`` (keys as in :data:`RULES`)."""
        return {
            **{rule: getattr(self, rule) for rule in (*PATH_RULES, "duplicates")},
            "summary_max_tokens": self.summary_max_tokens,
            "max_paths_per_problem": self.max_paths_per_problem,
        }


@dataclass
class FilterResult:
    """Kept ``(trace, path index)`` pairs plus counts of every drop by reason."""

    kept: list[tuple[Trace, int]] = field(default_factory=list)
    #: first failed rule per dropped path (sums to the number of dropped paths)
    dropped: Counter = field(default_factory=Counter)
    #: paths failing each rule, enforced or not (a path can fail several)
    failures: Counter = field(default_factory=Counter)
    #: paths whose own text imitates the protocol, by the first way they do (ImitationCheck)
    imitation: Counter = field(default_factory=Counter)
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
            "imitation": {reason: self.imitation.get(reason, 0) for reason in IMITATION_REASONS},
        }


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
) -> tuple[list[str], str | None]:
    """Every per-path rule that path ``index`` fails, enforced or not, and how it
    imitates the protocol (an :class:`ImitationCheck` reason, or None).

    Switched-off rules are still checked so ``stats.json`` shows how many
    paths they would have dropped (the summary rule only when a token counter
    is given); :meth:`FilterSettings.enforced` decides what is dropped.
    """
    path = trace.paths[index]
    failed = []
    if path.finish not in NATURAL_END_FINISHES:
        failed.append("natural_end")
    if settings.summaries and count_tokens is None:
        raise ValueError("the summary token cap needs a tokenizer (count_tokens)")
    if count_tokens is not None:
        for summary in find_summaries(path, settings.tags):
            # the cap bounds what the model wrote, as the engine's summary budget does
            if not summary.closed or count_tokens(summary.written) > settings.summary_max_tokens:
                failed.append("summaries")
                break
    imitation = settings.imitation_check.reason(path)
    if imitation is not None:
        failed.append("imitation")
    if not has_peer_exchange(trace, index):
        failed.append("peer_exchange")
    if path.correct is not True:
        failed.append("correct")
    return failed, imitation


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
        all_failed, imitation = path_failures(trace, index, settings, count_tokens)
        result.failures.update(all_failed)
        if imitation is not None:
            result.imitation[imitation] += 1
        failed = [rule for rule in all_failed if settings.enforced(rule)]
        if failed:
            result.dropped[failed[0]] += 1
            continue
        text = path.completion()
        if settings.duplicates and text in seen:
            result.dropped["duplicates"] += 1
            result.failures["duplicates"] += 1
            continue
        seen.add(text)
        cap = settings.max_paths_per_problem
        if cap is not None and kept_here >= cap:
            result.dropped["max_paths_per_problem"] += 1
            result.failures["max_paths_per_problem"] += 1
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

"""Routers: which peers' summaries each path reads at a LeaP turn.

Only the paths that are still active (the keys of ``summaries``) take part,
a path never receives its own summary, and every decision is deterministic
given the summaries and the seeded ``rng``: ties in similarity are broken by
the peer's index so a rerun routes exactly the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from rapidfuzz.distance import Levenshtein


def similarity(a: str, b: str) -> float:
    """Normalized Levenshtein similarity ``1 - D(a, b) / max(|a|, |b|)``; two empty strings -> 1."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - Levenshtein.distance(a, b) / longest


def _by_similarity(summaries: dict[int, str], path: int, most_similar: bool) -> list[int]:
    """Other active paths ordered from most (or least) similar to ``path``, ties by index."""
    own = summaries[path]
    peers = [p for p in sorted(summaries) if p != path]
    sign = -1.0 if most_similar else 1.0
    return sorted(peers, key=lambda p: (sign * similarity(own, summaries[p]), p))


def _dispersed(summaries: dict[int, str], path: int, k: int, rng: random.Random) -> list[int]:
    return _by_similarity(summaries, path, most_similar=False)[:k]


def _clustered(summaries: dict[int, str], path: int, k: int, rng: random.Random) -> list[int]:
    return _by_similarity(summaries, path, most_similar=True)[:k]


def _hybrid(summaries: dict[int, str], path: int, k: int, rng: random.Random) -> list[int]:
    """``k // 2`` most similar peers, then the least similar ones not already chosen."""
    chosen = _by_similarity(summaries, path, most_similar=True)[: k // 2]
    for peer in _by_similarity(summaries, path, most_similar=False):
        if len(chosen) >= k:
            break
        if peer not in chosen:
            chosen.append(peer)
    return chosen


def _hybrid_authors(summaries: dict[int, str], path: int, k: int) -> list[int]:
    """The authors' hybrid: ``k // 2`` least similar, then ``k - k // 2`` most similar, joined.

    The two lists are concatenated as they are, so a peer in both is shown
    twice (few active paths, or equal similarities: both sorts are stable and
    break ties by index).  ``k`` is the requested top-k, not capped by the
    number of peers: each list is cut to what exists.
    """
    least = _by_similarity(summaries, path, most_similar=False)[: k // 2]
    return least + _by_similarity(summaries, path, most_similar=True)[: k - k // 2]


def _random(summaries: dict[int, str], path: int, k: int, rng: random.Random) -> list[int]:
    peers = [p for p in sorted(summaries) if p != path]
    return rng.sample(peers, k)


def _all(summaries: dict[int, str], path: int, k: int, rng: random.Random) -> list[int]:
    return [p for p in sorted(summaries) if p != path]


_ROUTERS: dict[str, Callable[[dict[int, str], int, int, random.Random], list[int]]] = {
    "dispersed": _dispersed,
    "clustered": _clustered,
    "hybrid": _hybrid,
    "random": _random,
    "all": _all,
}
#: the router names, in the order ``--help`` lists them
ROUTER_NAMES = tuple(_ROUTERS)
#: ``distinct``: ours (no peer twice); ``authors``: the public code's concatenation
HYBRID_MODES = ("distinct", "authors")


def route(
    summaries: dict[int, str],
    router: str,
    k: int,
    rng: random.Random,
    hybrid_mode: str = "distinct",
) -> dict[int, list[int]]:
    """Map every active path to the peers whose summaries it receives.

    Each path gets ``min(k, len(summaries) - 1)`` distinct peers (``all``: every
    other active path), never itself.  Paths are visited in index order so the
    ``random`` router consumes ``rng`` reproducibly.  ``hybrid_mode="authors"``
    makes ``hybrid`` route as the authors' code does (:func:`_hybrid_authors`:
    up to ``k`` peers, possibly one twice).
    """
    if hybrid_mode not in HYBRID_MODES:
        raise ValueError(f"unknown hybrid_mode '{hybrid_mode}' (choose from {HYBRID_MODES})")
    if router == "hybrid" and hybrid_mode == "authors":
        return {path: _hybrid_authors(summaries, path, k) for path in sorted(summaries)}
    if router not in _ROUTERS:
        raise ValueError(f"unknown router '{router}' (choose from {', '.join(ROUTER_NAMES)})")
    if k < 1:
        raise ValueError(f"router top-k must be >= 1, got {k}")
    pick = _ROUTERS[router]
    result = {}
    for path in sorted(summaries):
        count = min(k, len(summaries) - 1)
        result[path] = pick(summaries, path, count, rng)
    return result

"""Property tests of the routers: who reads whose summary at a LeaP turn."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.routing import ROUTER_NAMES, route, similarity

summaries_st = st.dictionaries(
    st.integers(min_value=0, max_value=40),
    st.text(alphabet="abcde xyz0123", max_size=30),
    min_size=1,
    max_size=9,
)


@settings(max_examples=150, deadline=None)
@given(summaries=summaries_st, k=st.integers(1, 10), router=st.sampled_from(ROUTER_NAMES))
def test_peers_are_distinct_active_others(summaries, k, router):
    routed = route(summaries, router, k, random.Random(0))
    assert set(routed) == set(summaries)
    for path, peers in routed.items():
        expected = len(summaries) - 1 if router == "all" else min(k, len(summaries) - 1)
        assert len(peers) == expected
        assert len(set(peers)) == len(peers)
        assert path not in peers
        assert set(peers) <= set(summaries)


@settings(max_examples=150, deadline=None)
@given(summaries=summaries_st, k=st.integers(1, 6))
def test_dispersed_and_clustered_pick_least_and_most_similar(summaries, k):
    dispersed = route(summaries, "dispersed", k, random.Random(0))
    clustered = route(summaries, "clustered", k, random.Random(0))
    for path, own in summaries.items():
        others = [p for p in summaries if p != path]
        sims = {p: similarity(own, summaries[p]) for p in others}
        chosen_d, chosen_c = dispersed[path], clustered[path]
        rest_d = [p for p in others if p not in chosen_d]
        rest_c = [p for p in others if p not in chosen_c]
        if chosen_d and rest_d:
            assert max(sims[p] for p in chosen_d) <= min(sims[p] for p in rest_d)
        if chosen_c and rest_c:
            assert min(sims[p] for p in chosen_c) >= max(sims[p] for p in rest_c)


@settings(max_examples=100, deadline=None)
@given(summaries=summaries_st, k=st.integers(1, 6), router=st.sampled_from(ROUTER_NAMES))
def test_routing_is_reproducible(summaries, k, router):
    first = route(summaries, router, k, random.Random(7))
    again = route(summaries, router, k, random.Random(7))
    assert first == again


@given(a=st.text(max_size=20), b=st.text(max_size=20))
def test_similarity_is_symmetric_and_one_only_for_equal_texts(a, b):
    s = similarity(a, b)
    assert s == similarity(b, a)
    assert (s == 1.0) == (a == b)
    assert similarity(a, a) == 1.0


def test_similarity_known_values():
    assert similarity("", "") == 1.0
    assert similarity("abcd", "abcf") == pytest.approx(0.75)
    assert similarity("abc", "") == 0.0


def test_ties_broken_by_peer_index():
    summaries = {0: "same", 3: "same", 1: "same", 2: "same"}
    assert route(summaries, "dispersed", 2, random.Random(0))[0] == [1, 2]
    assert route(summaries, "clustered", 2, random.Random(0))[3] == [0, 1]


def test_hybrid_mixes_most_and_least_similar():
    summaries = {0: "aaaa", 1: "aaab", 2: "zzzz", 3: "aabb"}
    assert route(summaries, "hybrid", 2, random.Random(0))[0] == [1, 2]


def levenshtein(a: str, b: str) -> int:
    """Reference edit distance (insert, delete, substitute: cost 1 each), by dynamic programming."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def paper_similarity(a: str, b: str) -> float:
    """The paper's measure, 1 - D_lev(a, b) / max(|a|, |b|), from the reference distance."""
    return 1.0 - levenshtein(a, b) / max(len(a), len(b), 1)


def test_similarity_is_levenshtein_not_indel():
    # a substitution costs 1 (Indel would count delete + insert: "ab"/"ba" would be 0.5)
    assert similarity("ab", "ba") == 0.0
    assert similarity("abc", "acb") == pytest.approx(1 / 3)
    assert similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)


@settings(max_examples=200, deadline=None)
@given(a=st.text(alphabet="abc ", max_size=12), b=st.text(alphabet="abc ", max_size=12))
def test_similarity_equals_the_reference_measure(a, b):
    assert similarity(a, b) == pytest.approx(paper_similarity(a, b))


def _authors_hybrid(summaries: dict[int, str], path: int, k: int) -> list[int]:
    """The public code's hybrid router (``leap/utils/util.py``), transliterated: two sorts, joined."""
    own = summaries[path]
    sims = [(similarity(own, summaries[j]), j) for j in sorted(summaries) if j != path]
    half = k // 2
    least = [j for _, j in sorted(sims, key=lambda x: x[0])[:half]]
    most = [j for _, j in sorted(sims, key=lambda x: -x[0])[: k - half]]
    return least + most


@settings(max_examples=150, deadline=None)
@given(summaries=summaries_st, k=st.integers(1, 10))
def test_hybrid_authors_mode_routes_as_the_code(summaries, k):
    routed = route(summaries, "hybrid", k, random.Random(0), hybrid_mode="authors")
    assert routed == {p: _authors_hybrid(summaries, p, k) for p in summaries}


def test_hybrid_authors_mode_repeats_a_peer_when_few_are_active():
    summaries = {0: "aaaa", 1: "aaab", 2: "zzzz"}
    authors = route(summaries, "hybrid", 4, random.Random(0), hybrid_mode="authors")
    ours = route(summaries, "hybrid", 4, random.Random(0))
    assert authors[0] == [2, 1, 1, 2]  # two least similar, then two most similar
    assert sorted(ours[0]) == [1, 2]
    # equal summaries: both sorts keep index order, so even with peers to spare one repeats
    same = {i: "x" for i in range(5)}
    assert route(same, "hybrid", 2, random.Random(0), hybrid_mode="authors")[0] == [1, 1]
    assert route(same, "hybrid", 2, random.Random(0))[0] == [1, 2]

"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval.metrics import (
    bootstrap_ci,
    compute_matched,
    majority_vote,
    method_metrics,
    paired_bootstrap_ci,
    pass_at_k,
    shortest_majority_vote,
    vote_curve,
)
from inference.trace import PathRecord, Trace


def _trace(pid: str, answers, correct, tokens=None, summary=None, gold="1") -> Trace:
    tokens = tokens or [100] * len(answers)
    summary = summary or [0] * len(answers)
    paths = [
        PathRecord(final_answer=a, correct=c, generated_tokens=t, summary_tokens=s)
        for a, c, t, s in zip(answers, correct, tokens, summary, strict=True)
    ]
    return Trace(id=pid, problem="q", answer=gold, paths=paths)


@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))
    )
)
def test_pass_at_k_equals_closed_form(args):
    n, c, k = args
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_hand_values_and_large_n():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert 0.0 < pass_at_k(10_000, 3, 100) < 1.0  # no overflow
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_vote_groups_equivalent_answers():
    vote = majority_vote(["1/2", "3", "0.5", r"\frac{1}{2}", "3", None], "math")
    assert (vote.index, vote.count, vote.tie) == (0, 3, False)


def test_majority_vote_tie_is_deterministic_and_flagged():
    vote = majority_vote(["7", "9", "9", "7"], "math")
    assert (vote.index, vote.tie) == (0, True)
    assert majority_vote([None, None], "math").index is None
    assert majority_vote(["B", "(b)", "C"], "choice").count == 2


def test_shortest_majority_prefers_short_agreeing_paths():
    answers = ["5", "5", "6", "6"]
    # group "5": 2 votes, mean 1000 tokens; group "6": 2 votes, mean 100 tokens
    vote = shortest_majority_vote(answers, [1000, 1000, 100, 100], "math")
    assert answers[vote.index] == "6" and not vote.tie
    assert majority_vote(answers, "math").tie


def test_bootstrap_ci_contains_point_estimate():
    values = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0.5, 0.25]
    low, high = bootstrap_ci(values, seed=3)
    assert low <= sum(values) / len(values) <= high
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci([1.0, 1.0], seed=0) == (1.0, 1.0)


def test_method_metrics_hand_computed():
    traces = [
        # 2 of 4 right; vote: "1" x2 vs "2" x1 -> right
        _trace(
            "a", ["1", "1", "2", None], [True, True, False, False], [10, 20, 30, 40], [1, 1, 1, 1]
        ),
        # 1 of 4 right; vote "3" x3 -> wrong
        _trace(
            "b", ["3", "3", "3", "1"], [False, False, False, True], [50, 50, 50, 50], [5, 5, 5, 5]
        ),
    ]
    m = method_metrics(traces, "math", seed=0)
    assert m["pass@1"] == pytest.approx((0.5 + 0.25) / 2)
    assert m["cons@n"] == pytest.approx(0.5)
    assert m["cons@n_ties"] == 0
    assert m["n"] == 4 and m["problems"] == 2
    assert m["pass@k"]["1"] == pytest.approx(m["pass@1"])
    assert m["pass@k"]["2"] == pytest.approx((pass_at_k(4, 2, 2) + pass_at_k(4, 1, 2)) / 2)
    assert m["pass@k"]["4"] == pytest.approx(1.0)
    assert m["tokens_per_path"] == pytest.approx(300 / 8)
    assert m["tokens_per_path_without_summaries"] == pytest.approx((300 - 24) / 8)
    assert m["tokens_per_problem"] == pytest.approx(150)
    assert m["answered_rate"] == pytest.approx(7 / 8)
    low, high = m["pass@1_ci"]
    assert low <= m["pass@1"] <= high


def test_compute_matched_uses_paths_that_fit_in_the_budget():
    independent = [
        # first path alone is wrong; first three vote right
        _trace("a", ["2", "1", "1", "1"], [False, True, True, True], [100, 100, 100, 100]),
    ]
    leap_small = [_trace("a", ["1"], [True], [150])]  # budget 150 -> only 1 path fits
    leap_large = [_trace("a", ["1"], [True], [350])]  # budget 350 -> 3 paths
    small = compute_matched(independent, leap_small, "math")
    large = compute_matched(independent, leap_large, "math")
    assert (small["accuracy"], small["mean_paths_used"]) == (0.0, 1.0)
    assert (large["accuracy"], large["mean_paths_used"]) == (1.0, 3.0)
    assert (
        compute_matched(independent, [_trace("a", ["1"], [True], [1000])], "math")[
            "budget_exceeds_samples"
        ]
        == 1
    )


def test_vote_curve_grows_with_paths():
    traces = [_trace("a", ["2", "1", "1"], [False, True, True], [10, 10, 10])]
    curve = vote_curve(traces, "math", [1, 3])
    assert [p["accuracy"] for p in curve] == [0.0, 1.0]
    assert [p["tokens_per_problem"] for p in curve] == [10, 30]


# -- paired comparison between methods ---------------------------------------------------------


def _correlated_scores(problems: int = 40, seed: int = 3):
    """Per-problem scores of two methods that share the problems' difficulty (as same seeds do)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0, 1, problems)
    a = np.clip(difficulty + rng.normal(0.08, 0.1, problems), 0, 1)
    b = np.clip(difficulty + rng.normal(0.0, 0.1, problems), 0, 1)
    return a, b


def test_paired_bootstrap_agrees_with_scipy():
    from scipy.stats import bootstrap

    a, b = _correlated_scores()
    ours = paired_bootstrap_ci(a, b, seed=0, resamples=20_000)
    ref = bootstrap(
        (a, b),
        lambda x, y: np.mean(x) - np.mean(y),
        paired=True,
        vectorized=False,
        n_resamples=20_000,
        method="percentile",
        rng=np.random.default_rng(1),
    ).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), abs=0.006)


def test_paired_interval_is_narrower_than_treating_runs_as_independent():
    a, b = _correlated_scores()
    low, high = paired_bootstrap_ci(a, b, seed=0, resamples=5000)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(a), size=(5000, 2, len(a)))
    unpaired = a[draws[:, 0]].mean(axis=1) - b[draws[:, 1]].mean(axis=1)
    u_low, u_high = np.percentile(unpaired, [2.5, 97.5])
    assert low <= a.mean() - b.mean() <= high
    assert high - low < 0.5 * (u_high - u_low)
    assert low > 0 > u_low  # only the paired interval sees the consistent gain


def test_paired_bootstrap_refuses_unpaired_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap_ci([1.0, 0.0], [1.0])

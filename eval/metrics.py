"""Accuracy and cost metrics over graded traces: the numbers in ``results.json``.

Definitions (each computed per problem, then averaged over the problems that
have a gold answer):

* **Pass@1** - the fraction of a problem's N paths that are correct.
* **Cons@N** - the majority vote over the paths' extracted answers.  Answers
  are grouped by equivalence (the grader's ``math_equal`` for math, letters
  for choices), paths without an answer do not vote, and a tie between the
  largest groups goes to the group whose first path comes earliest in the
  trace (deterministic; the number of tied problems is reported).  A problem
  where no path answered counts as wrong.
* **Shortest-majority** - after Zeng et al. (2025): each answer group scores
  its vote count divided by the mean generated tokens of its paths, so short
  agreeing solutions weigh more; ties as for Cons@N.
* **pass@k** - the unbiased estimator 1 - C(n-c, k) / C(n, k), computed as a
  product so it never overflows.  It is unbiased only for independent samples:
  the paths of LeaP and every other method but ``independent`` read each other,
  so for them the same formula describes the N paths but estimates nothing
  (``pass@k_iid`` false in ``results.json``, ``*`` in ``results.md``).
* **95% CI** - percentile bootstrap over problems (seeded, 1000 resamples).
* **Standard error** (``*_stderr``) - sample std of the per-problem values
  divided by sqrt(problems), as lighteval prints beside its scores.
* **Paired difference** - a method minus independent sampling on the same
  problems: the per-problem differences (Pass@1, Cons@N, and Cons@N against
  independent at equal tokens) averaged, with a *paired* bootstrap interval
  (problems resampled once for both methods).  Both methods share the prompt
  and the per-path seeds, so their results on a problem are correlated: two
  separate intervals would overstate the uncertainty of the difference.
* **Tokens** - generated tokens per path (everything the model wrote, summaries
  included), the same without summary tokens, and per problem (all N paths).
* **Compute-matched accuracy** - to compare a peer method with independent
  sampling at *equal generated tokens*: for each problem, independent paths
  are taken in trace order while their summed generated tokens stay within the
  peer method's total on that problem (at least one path), and their majority
  vote is scored.  When even all N independent paths fit in the budget, all N
  are used and the problem is counted in ``budget_exceeds_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eval.grading import choice_letter, math_equal
from inference.trace import Trace

BOOTSTRAP_RESAMPLES = 1000
DIGITS = 6


@dataclass(frozen=True)
class Vote:
    """Outcome of a vote: the winning group's first path (None when nobody answered)."""

    index: int | None
    count: int
    tie: bool


def _same(a: str, b: str, task: str) -> bool:
    if task == "choice":
        return choice_letter(a) is not None and choice_letter(a) == choice_letter(b)
    return math_equal(a, b)


def group_answers(answers: Sequence[str | None], task: str) -> list[list[int]]:
    """Indices of equivalent answers grouped together, groups in order of first appearance."""
    groups: list[list[int]] = []
    for i, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        for group in groups:
            if answers[group[0]] == answer or _same(answer, answers[group[0]], task):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _pick(groups: list[list[int]], scores: list[float]) -> Vote:
    if not groups:
        return Vote(index=None, count=0, tie=False)
    best = max(scores)
    winners = [g for g, s in zip(groups, scores, strict=True) if s == best]
    return Vote(index=winners[0][0], count=len(winners[0]), tie=len(winners) > 1)


def majority_vote(answers: Sequence[str | None], task: str) -> Vote:
    """The most common answer (equivalence-aware); ties go to the earliest group."""
    groups = group_answers(answers, task)
    return _pick(groups, [float(len(g)) for g in groups])


def shortest_majority_vote(
    answers: Sequence[str | None], lengths: Sequence[int], task: str
) -> Vote:
    """Vote weighted toward short solutions: group size / mean length of the group's paths."""
    groups = group_answers(answers, task)
    scores = [len(g) / max(1.0, sum(lengths[i] for i in g) / len(g)) for g in groups]
    return _pick(groups, scores)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``c`` correct of ``n`` samples: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bootstrap_ci(
    values: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (resampling problems)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean of ``values``: sample std / sqrt(n), as lighteval prints it."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return math.nan
    return float(np.std(data, ddof=1) / math.sqrt(data.size))


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """95% percentile interval of ``mean(a) - mean(b)`` over paired problems.

    ``a[i]`` and ``b[i]`` belong to the same problem; each resample draws
    problems once and takes both methods' values for them, which is the same
    as resampling the per-problem differences.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), seed, resamples)


def paired_difference(
    baseline: Sequence[Trace], method: Sequence[Trace], task: str, seed: int = 0
) -> dict:
    """``method`` minus ``baseline`` on the graded problems both ran, with paired intervals."""
    base = {t.id: t for t in baseline if t.answer is not None}
    pairs = [(base[t.id], t) for t in sorted(method, key=lambda t: t.id) if t.id in base]
    diffs: dict[str, tuple[list[float], list[float]]] = {
        "pass@1": ([], []),
        "cons@n": ([], []),
        "cons@n_vs_matched": ([], []),
    }
    for b, m in pairs:
        sb, sm = problem_scores(b, task), problem_scores(m, task)
        if sb["n"] and sm["n"]:
            diffs["pass@1"][0].append(sm["correct"] / sm["n"])
            diffs["pass@1"][1].append(sb["correct"] / sb["n"])
        diffs["cons@n"][0].append(float(sm["cons_correct"]))
        diffs["cons@n"][1].append(float(sb["cons_correct"]))
        matched, _ = vote_within_budget(b, task, sm["tokens"])
        diffs["cons@n_vs_matched"][0].append(float(sm["cons_correct"]))
        diffs["cons@n_vs_matched"][1].append(float(matched))
    out: dict = {"problems": len(pairs)}
    for key, (a, b) in diffs.items():
        out[f"{key}_diff"] = _r(_mean(a) - _mean(b)) if a else None
        out[f"{key}_diff_ci"] = [_r(x) for x in paired_bootstrap_ci(a, b, seed)]
    return out


def _voted_correct(trace: Trace, vote: Vote) -> bool:
    return vote.index is not None and trace.paths[vote.index].correct is True


def problem_scores(trace: Trace, task: str) -> dict:
    """Per-problem numbers from one graded trace (see the module docstring)."""
    paths = trace.paths
    answers = [p.final_answer for p in paths]
    lengths = [p.generated_tokens for p in paths]
    vote = majority_vote(answers, task)
    short = shortest_majority_vote(answers, lengths, task)
    return {
        "id": trace.id,
        "n": len(paths),
        "correct": sum(p.correct is True for p in paths),
        "answered": sum(a is not None for a in answers),
        "cons_answer": answers[vote.index] if vote.index is not None else None,
        "cons_correct": _voted_correct(trace, vote),
        "cons_tie": vote.tie,
        "shortest_majority_correct": _voted_correct(trace, short),
        "tokens": sum(lengths),
        "summary_tokens": sum(p.summary_tokens for p in paths),
    }


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def _r(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(value, DIGITS)


def method_metrics(traces: Sequence[Trace], task: str, seed: int = 0) -> dict:
    """Aggregate metrics of one method on one benchmark (traces must be graded)."""
    ordered = sorted(traces, key=lambda t: t.id)
    scored = [problem_scores(t, task) for t in ordered]
    gradable = [s for s, t in zip(scored, ordered, strict=True) if t.answer is not None]
    pass1 = [s["correct"] / s["n"] for s in gradable if s["n"]]
    cons = [float(s["cons_correct"]) for s in gradable]
    short = [float(s["shortest_majority_correct"]) for s in gradable]
    n_paths = min((s["n"] for s in scored), default=0)
    pass_k = {}
    k = 1
    while n_paths and k <= n_paths:
        pass_k[str(k)] = _r(_mean([pass_at_k(s["n"], s["correct"], k) for s in gradable]))
        k *= 2
    path_count = sum(s["n"] for s in scored)
    tokens = sum(s["tokens"] for s in scored)
    summaries = sum(s["summary_tokens"] for s in scored)
    return {
        "problems": len(scored),
        "graded_problems": len(gradable),
        "n": n_paths,
        "pass@1": _r(_mean(pass1)),
        "pass@1_ci": [_r(x) for x in bootstrap_ci(pass1, seed)],
        "pass@1_stderr": _r(standard_error(pass1)),
        "cons@n": _r(_mean(cons)),
        "cons@n_ci": [_r(x) for x in bootstrap_ci(cons, seed)],
        "cons@n_stderr": _r(standard_error(cons)),
        "cons@n_ties": sum(s["cons_tie"] for s in gradable),
        "shortest_majority": _r(_mean(short)),
        "pass@k": pass_k,
        "answered_rate": _r(
            sum(s["answered"] for s in scored) / path_count if path_count else math.nan
        ),
        "tokens_per_path": _r(tokens / path_count if path_count else math.nan),
        "tokens_per_path_without_summaries": _r(
            (tokens - summaries) / path_count if path_count else math.nan
        ),
        "tokens_per_problem": _r(tokens / len(scored) if scored else math.nan),
        "per_problem": scored,
        "per_problem_values": {
            s["id"]: [_r(s["correct"] / s["n"]), float(s["cons_correct"])]
            for s in gradable
            if s["n"]
        },
    }


def vote_within_budget(trace: Trace, task: str, budget: float) -> tuple[bool, int]:
    """Majority-vote correctness of the leading paths whose tokens fit in ``budget``.

    Returns ``(correct, paths_used)``; at least one path is always used.
    """
    used, spent = 0, 0
    for path in trace.paths:
        if used and spent + path.generated_tokens > budget:
            break
        spent += path.generated_tokens
        used += 1
    sub = trace.paths[:used]
    vote = majority_vote([p.final_answer for p in sub], task)
    return (vote.index is not None and sub[vote.index].correct is True), used


def compute_matched(
    baseline: Sequence[Trace], reference: Sequence[Trace], task: str, seed: int = 0
) -> dict:
    """Baseline (independent) accuracy at the reference method's generated tokens, per problem."""
    budgets = {t.id: sum(p.generated_tokens for p in t.paths) for t in reference}
    rows = [
        t for t in sorted(baseline, key=lambda t: t.id) if t.id in budgets and t.answer is not None
    ]
    correct, used, exceeded = [], [], 0
    for trace in rows:
        ok, k = vote_within_budget(trace, task, budgets[trace.id])
        correct.append(float(ok))
        used.append(k)
        exceeded += (
            k == len(trace.paths)
            and sum(p.generated_tokens for p in trace.paths) < budgets[trace.id]
        )
    return {
        "problems": len(rows),
        "accuracy": _r(_mean(correct)),
        "accuracy_ci": [_r(x) for x in bootstrap_ci(correct, seed)],
        "accuracy_stderr": _r(standard_error(correct)),
        "mean_paths_used": _r(_mean(used)),
        "budget_tokens_per_problem": _r(_mean([budgets[t.id] for t in rows])),
        "budget_exceeds_samples": exceeded,
    }


def vote_curve(traces: Sequence[Trace], task: str, sizes: Sequence[int]) -> list[dict]:
    """Majority-vote accuracy of the first m paths against their mean tokens per problem.

    Meaningful for independent sampling, where any m paths are a valid smaller run.
    """
    points = []
    graded = [t for t in sorted(traces, key=lambda t: t.id) if t.answer is not None]
    for m in sizes:
        acc, tok = [], []
        for trace in graded:
            sub = trace.paths[:m]
            vote = majority_vote([p.final_answer for p in sub], task)
            acc.append(float(vote.index is not None and sub[vote.index].correct is True))
            tok.append(sum(p.generated_tokens for p in sub))
        points.append(
            {"paths": m, "accuracy": _r(_mean(acc)), "tokens_per_problem": _r(_mean(tok))}
        )
    return points


#: per-seed numbers averaged into a multi-seed row (and reported as mean ± std over seeds)
SEED_AVERAGED = (
    "pass@1",
    "cons@n",
    "shortest_majority",
    "answered_rate",
    "tokens_per_path",
    "tokens_per_path_without_summaries",
    "tokens_per_problem",
)


def spread(values: Sequence[float | None]) -> dict:
    """Mean and sample standard deviation over seeds (std 0 for a single seed)."""
    data = [v for v in values if v is not None]
    if not data:
        return {"mean": None, "std": None, "values": list(values)}
    std = float(np.std(data, ddof=1)) if len(data) > 1 else 0.0
    return {"mean": _r(_mean(data)), "std": _r(std), "values": list(values)}


def combine_seeds(per_seed: dict[int, dict], seed: int = 0) -> dict:
    """One result row from the :func:`method_metrics` of several seeds on the same problems.

    Point values are means over seeds.  Pass@1/Cons@N intervals are the
    percentile bootstrap over problems of each problem's seed-averaged value
    (so they describe problem sampling, as for one seed); ``seeds`` adds the
    mean ± sample std *across seeds* (run-to-run sampling noise) with each
    seed's value.  ``per_problem`` is left out (each seed's is in its own run).
    """
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    out = {k: v for k, v in first.items() if k != "per_problem"}
    summary: dict = {"seeds": seeds}
    for key in SEED_AVERAGED:
        summary[key] = spread([per_seed[s][key] for s in seeds])
        out[key] = summary[key]["mean"]
    out["pass@k"] = {
        k: _r(
            _mean(
                [
                    per_seed[s]["pass@k"].get(k)
                    for s in seeds
                    if per_seed[s]["pass@k"].get(k) is not None
                ]
            )
        )
        for k in first["pass@k"]
    }
    out["cons@n_ties"] = sum(per_seed[s]["cons@n_ties"] for s in seeds)
    by_id: dict[str, list[dict]] = {}
    for s in seeds:
        for row in per_seed[s]["per_problem"]:
            by_id.setdefault(row["id"], []).append(row)
    common = [rows for _, rows in sorted(by_id.items()) if len(rows) == len(seeds)]
    pass1 = [_mean([r["correct"] / r["n"] for r in rows]) for rows in common if rows[0]["n"]]
    cons = [_mean([float(r["cons_correct"]) for r in rows]) for rows in common]
    out["pass@1_ci"] = [_r(x) for x in bootstrap_ci(pass1, seed)]
    out["cons@n_ci"] = [_r(x) for x in bootstrap_ci(cons, seed)]
    out["pass@1_stderr"] = _r(standard_error(pass1))
    out["cons@n_stderr"] = _r(standard_error(cons))
    values = [per_seed[s]["per_problem_values"] for s in seeds]
    out["per_problem_values"] = {
        pid: [_r(_mean([v[pid][i] for v in values])) for i in range(2)]
        for pid in sorted(set.intersection(*(set(v) for v in values)))
    }
    out["seeds"] = summary
    return out


def paired_values_difference(after: dict, before: dict, seed: int = 0) -> dict:
    """``after`` minus ``before`` from two rows' ``per_problem_values``, paired by problem.

    For two evaluations of the same problems (e.g. a student before and after
    training, same seeds): Pass@1 and Cons@N differences on the problems both
    graded, each with a paired bootstrap interval; seed-averaged values for
    multi-seed rows.
    """
    common = sorted(set(after) & set(before))
    out: dict = {"problems": len(common)}
    for i, key in enumerate(("pass@1", "cons@n")):
        a = [after[pid][i] for pid in common]
        b = [before[pid][i] for pid in common]
        out[f"{key}_diff"] = _r(_mean(a) - _mean(b)) if common else None
        out[f"{key}_diff_ci"] = [_r(x) for x in paired_bootstrap_ci(a, b, seed)]
    return out

"""Turn traces into ``results.json``, ``results.md`` and PNG plots.

Everything here is a function of the traces alone (no clock, no absolute
paths, no model), so ``leapt report`` rebuilds ``results.json`` byte for byte
from the traces ``leapt eval`` wrote.  The expected layout is the one
``leapt eval`` produces, ``<run>/<benchmark>/<method>/traces.jsonl``; a bare
``leapt infer`` directory (``<run>/traces.jsonl``) also works and is reported
under the run directory's name as benchmark and the traces' method.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.adherence import RATES, adherence_from_rows, adherence_rows, protocol_of
from eval.grading import GRADING_SCOPES, grade_trace, scoped_grade, task_of
from eval.metrics import (
    combine_seeds,
    compute_matched,
    method_metrics,
    paired_difference,
    spread,
    vote_curve,
)
from inference.methods import REGISTRY
from inference.trace import Trace, read_traces
from leapt.files import atomic_path, atomic_write_text
from leapt.markdown import markdown_table

#: display order of known methods: the registry's (others follow alphabetically)
METHOD_ORDER = tuple(REGISTRY)
BASELINE = "independent"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
ACCURACY_PNG = "accuracy.png"
TOKENS_PNG = "accuracy_vs_tokens.png"


#: a seed's subfolder of a ``leapt eval --seeds`` run: <output_dir>/seed-<s>/<benchmark>/<method>
SEED_DIR = re.compile(r"seed-(\d+)")


@dataclass
class Run:
    """All traces of one method on one benchmark (for several seeds: the lowest seed's)."""

    benchmark: str
    method: str
    traces: list[Trace]
    #: seed -> traces, when the run was evaluated with several seeds (``leapt eval --seeds``)
    seeds: dict[int, list[Trace]] = field(default_factory=dict)


def method_key(method: str) -> tuple[int, str]:
    """Sort key putting methods in the paper's order (unknown ones last, by name)."""
    base = method.split(" ")[0]
    rank = METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER)
    return (rank, method)


def discover_runs(dirs: Sequence[str | Path]) -> list[Run]:
    """Find every ``traces.jsonl`` under ``dirs`` and group traces by (benchmark, method).

    Traces of the same benchmark and method from several directories are
    merged when their problem ids are disjoint (e.g. shards of one run); when
    they overlap (e.g. two seeds) each directory stays a separate row, labelled
    ``method (dirname)``.  The ``seed-<s>`` subfolders of one ``leapt eval
    --seeds`` run form one row with its seeds kept apart (:class:`Run`).
    """
    found: dict[tuple[str, str], list[tuple[str, int | None, list[Trace]]]] = {}
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"run directory {root} does not exist")
        for path in sorted(root.rglob("traces.jsonl")):
            traces = read_traces(path)
            if not traces:
                continue
            rel = path.relative_to(root).parts
            seed_dir = SEED_DIR.fullmatch(rel[-4]) if len(rel) >= 4 else None
            if len(rel) >= 3:
                benchmark, method = rel[-3], rel[-2]
            else:
                benchmark = (path.parent if len(rel) == 2 else root).resolve().name
                method = traces[0].method
            seed = int(seed_dir.group(1)) if seed_dir else None
            found.setdefault((benchmark, method), []).append((root.resolve().name, seed, traces))
    runs = []
    for (benchmark, method), parts in sorted(found.items()):
        seeds = {seed: traces for _, seed, traces in parts if seed is not None}
        if len(seeds) == len(parts):  # one --seeds run: every part is a distinct seed
            runs.append(Run(benchmark, method, seeds[min(seeds)], seeds))
            continue
        ids = [t.id for _, _, traces in parts for t in traces]
        if len(ids) == len(set(ids)):
            runs.append(Run(benchmark, method, [t for _, _, traces in parts for t in traces]))
        else:
            runs += [Run(benchmark, f"{method} ({name})", traces) for name, _, traces in parts]
    return runs


def _seed(traces: Sequence[Trace]) -> int:
    seed = (traces[0].config or {}).get("seed", 0) if traces else 0
    return seed if isinstance(seed, int) else 0


def _curve_sizes(n: int) -> list[int]:
    sizes, m = [], 1
    while m < n:
        sizes.append(m)
        m *= 2
    return sizes + [n] if n else []


def recorded_scope(traces: Sequence[Trace]) -> str:
    """The grading scope a run was evaluated with (``leapt eval`` records it), else ``path``."""
    scope = (traces[0].config or {}).get("grading_scope", "path") if traces else "path"
    return scope if scope in GRADING_SCOPES else "path"


def _graded(traces: Sequence[Trace], scope: str) -> list[Trace]:
    """The traces graded under ``scope``: recorded verdicts for ``path``, regraded otherwise."""
    if scope == "path":
        return [grade_trace(t) for t in traces]
    return [grade_trace(t, scope=scope, think_end=protocol_of(t).think_end) for t in traces]


def scope_comparison(traces: Sequence[Trace], task: str, chosen: str) -> dict:
    """Pass@1 under every grading scope, and the paths where ``authors`` and ``chosen`` differ.

    ``traces`` are graded under ``chosen``; the other scopes are computed aside,
    leaving them as they are.
    """
    verdicts: dict[str, list[list[bool]]] = {s: [] for s in GRADING_SCOPES}
    for trace in sorted(traces, key=lambda t: t.id):
        if trace.answer is None or not trace.paths:
            continue
        think_end = protocol_of(trace).think_end
        for scope in GRADING_SCOPES:
            verdicts[scope].append(
                [p.correct is True for p in trace.paths]
                if scope == chosen
                else [
                    scoped_grade(p, trace.answer, task, scope, think_end)[1] is True
                    for p in trace.paths
                ]
            )
    pass1 = {
        s: round(sum(sum(v) / len(v) for v in rows) / len(rows), 6) if rows else None
        for s, rows in verdicts.items()
    }
    differ = sum(
        a != b
        for mine, theirs in zip(verdicts[chosen], verdicts["authors"], strict=True)
        for a, b in zip(mine, theirs, strict=True)
    )
    return {
        "chosen": chosen,
        "pass@1": pass1,
        "authors_disagree_paths": differ,
        "paths": sum(len(v) for v in verdicts[chosen]),
    }


def build_results(runs: Iterable[Run], grading_scope: str | None = None) -> dict:
    """The ``results.json`` document: metrics per benchmark and method, plus comparisons.

    ``grading_scope`` grades every run (default: the scope each run recorded).
    """
    benchmarks: dict[str, dict] = {}
    for run in runs:
        scope = grading_scope or recorded_scope(run.traces)
        if run.seeds:
            metrics, traces = _seeded_metrics(run, scope)
            task = metrics["task"]
        else:
            traces = _graded(run.traces, scope)
            task = task_of(traces[0])
            metrics = method_metrics(traces, task, seed=_seed(traces))
            metrics["adherence"] = adherence_from_rows(adherence_rows(traces), _seed(traces))
        first = traces[0]
        metrics["task"] = task
        metrics["grading_scope"] = scope_comparison(traces, task, scope)
        # LeaP paths read each other's summaries: pass@k's formula assumes independent paths
        metrics["pass@k_iid"] = run.method.split(" ")[0] == BASELINE
        metrics["model"] = first.model
        metrics["config"] = first.config
        if run.method.split(" ")[0] == BASELINE:
            metrics["vote_curve"] = vote_curve(traces, task, _curve_sizes(metrics["n"]))
        entry = benchmarks.setdefault(run.benchmark, {"methods": {}, "traces": {}})
        entry["methods"][run.method] = metrics
        entry["traces"][run.method] = traces
    for entry in benchmarks.values():
        traces_by_method = entry.pop("traces")
        baseline = traces_by_method.get(BASELINE)
        matched, paired = {}, {}
        if baseline:
            task = task_of(baseline[0])
            for method, traces in traces_by_method.items():
                if method != BASELINE:
                    matched[method] = compute_matched(baseline, traces, task, _seed(baseline))
                    paired[method] = paired_difference(baseline, traces, task, _seed(baseline))
        entry["compute_matched"] = matched
        entry["paired_vs_independent"] = paired
    return {
        "schema": 1,
        "metrics_definitions": "see eval/metrics.py",
        "benchmarks": benchmarks,
    }


def _seeded_metrics(run: Run, scope: str = "path") -> tuple[dict, list[Trace]]:
    """Metrics of a multi-seed run (:func:`combine_seeds`), adherence pooled over seeds.

    Returns the metrics and the lowest seed's graded traces, which the vote
    curve and the compute-matched comparison use.
    """
    graded = {s: _graded(traces, scope) for s, traces in sorted(run.seeds.items())}
    lowest = graded[min(graded)]
    task = task_of(lowest[0])
    metrics = combine_seeds({s: method_metrics(t, task, seed=s) for s, t in graded.items()})
    metrics["task"] = task
    per_seed_rows = {s: adherence_rows(t) for s, t in graded.items()}
    pooled: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for rows in per_seed_rows.values():
        for row in rows:
            for key, value in row.items():
                if key != "id":
                    pooled[row["id"]][key] += value
    adherence = adherence_from_rows([dict(v) for _, v in sorted(pooled.items())], min(graded))
    for rate in RATES:
        metrics["seeds"][rate] = spread(
            [adherence_from_rows(rows)[rate] for rows in per_seed_rows.values()]
        )
    metrics["adherence"] = adherence
    return metrics, lowest


def dumps_results(results: dict) -> str:
    """Canonical JSON text (sorted keys, fixed indentation, trailing newline)."""
    return json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def signed_cell(value: float | None, ci: Sequence[float | None]) -> str:
    """A difference in points with its interval: ``+12.50 [-3.1, 28.0]``."""
    return "-" if value is None else f"{100 * value:+.2f}{_ci(ci)}"


def _ci(pair: Sequence[float | None], stderr: float | None = None) -> str:
    """`` [low, high]`` in percent, and ``±stderr`` (percentage points) when known."""
    if not pair or pair[0] is None:
        return ""
    se = f" ±{100 * stderr:.1f}" if stderr is not None else ""
    return f" [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]{se}"


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def percent_cell(
    value: float | None,
    spread: dict | None = None,
    ci: Sequence[float | None] | None = None,
    stderr: float | None = None,
) -> str:
    """A rate in percent, or ``mean ± std`` when several seeds spread it, then its interval.

    ``stderr`` (the standard error over problems) follows the interval as ``±se``.
    """
    if spread and spread.get("std") is not None:
        text = f"{_pct(spread['mean'])} ± {100 * spread['std']:.2f}"
    else:
        text = _pct(value)
    return text + (_ci(ci, stderr) if ci is not None else "")


def _with_std(m: dict, key: str) -> str:
    """``value`` or, for a multi-seed row, ``mean ± std`` over seeds (percent)."""
    value = m[key] if key in m else m.get("adherence", {}).get(key)
    return percent_cell(value, m.get("seeds", {}).get(key))


def _accuracy_cell(m: dict) -> str:
    seeds = f", {len(m['seeds']['seeds'])} seeds" if "seeds" in m else ""
    return f"{_with_std(m, 'pass@1')} / {_with_std(m, 'cons@n')} (N={m['n']}{seeds})"


def _adherence_cell(m: dict) -> str:
    a = m.get("adherence")
    if not a:
        return "-"

    def rate(key: str) -> str:
        return percent_cell(
            a[key], m.get("seeds", {}).get(key), a[f"{key}_ci"], a.get(f"{key}_stderr")
        )

    return (
        f"{rate('summary_closed_rate')} ; {rate('self_open_rate')} ; "
        f"{rate('peer_use_rate')} ({_pct(a['peer_use_chance'])})"
    )


def render_markdown(results: dict) -> str:
    """A paper-style table: rows are methods, columns are benchmarks."""
    benchmarks = sorted(results["benchmarks"])
    methods = sorted(
        {m for b in benchmarks for m in results["benchmarks"][b]["methods"]}, key=method_key
    )

    def cell(bench: str, method: str, fmt) -> str:
        m = results["benchmarks"][bench]["methods"].get(method)
        return "-" if m is None else fmt(m)

    lines = ["# Evaluation results", ""]
    models = sorted(
        {m["model"] for b in benchmarks for m in results["benchmarks"][b]["methods"].values()}
    )
    seeds = sorted(
        {
            str(seed)
            for b in benchmarks
            for m in results["benchmarks"][b]["methods"].values()
            for seed in (m["seeds"]["seeds"] if "seeds" in m else [m["config"].get("seed")])
        }
    )
    lines += [
        f"Model: {', '.join(f'`{m}`' for m in models) or '-'}; run seed(s): {', '.join(seeds)}",
        "",
    ]

    def table(fmt) -> list[str]:
        """Methods x benchmarks, each cell ``fmt`` of that run's metrics."""
        rows = [[method, *(cell(b, method, fmt) for b in benchmarks)] for method in methods]
        return markdown_table(["method", *benchmarks], rows)

    def intervals(m: dict) -> str:
        pass1 = _ci(m["pass@1_ci"], m.get("pass@1_stderr"))
        return f"{pass1} ;{_ci(m['cons@n_ci'], m.get('cons@n_stderr'))}".strip()

    def tokens(m: dict) -> str:
        return (
            f"{_tokens(m['tokens_per_path'])} "
            f"({_tokens(m['tokens_per_path_without_summaries'])}) / "
            f"{_tokens(m['tokens_per_problem'])}"
        )

    def other_views(m: dict) -> str:
        return (
            f"shortest-maj {_pct(m['shortest_majority'])}; "
            f"ties {m['cons@n_ties']}/{m['graded_problems']}; "
            + ", ".join(
                f"pass@{k}{'' if m.get('pass@k_iid', True) else '*'} {_pct(v)}"
                for k, v in sorted(m["pass@k"].items(), key=lambda kv: int(kv[0]))
            )
        )

    def scopes(m: dict) -> str:
        g = m.get("grading_scope")
        if not g:
            return "-"
        cells = " ; ".join(
            f"{'**' if s == g['chosen'] else ''}{_pct(g['pass@1'][s])}"
            f"{'**' if s == g['chosen'] else ''}"
            for s in GRADING_SCOPES
        )
        return f"{cells} (authors differ on {g['authors_disagree_paths']}/{g['paths']} paths)"

    chosen = sorted(
        {
            m["grading_scope"]["chosen"]
            for b in benchmarks
            for m in results["benchmarks"][b]["methods"].values()
            if "grading_scope" in m
        }
    )
    file_order = sorted(
        f"{b} / {method}"
        for b in benchmarks
        for method, m in results["benchmarks"][b]["methods"].items()
        if m["config"].get("shuffle_options") is False
    )
    if chosen:
        lines += [f"Graded with `grading_scope`: {', '.join(chosen)} (eval/grading.py).", ""]
    if file_order:
        lines += [
            "Options shown in the file's order (`shuffle_options: false`), not shuffled: "
            + ", ".join(file_order)
            + ".",
            "",
        ]
    lines += ["## Pass@1 / Cons@N (%; several seeds: mean ± std over seeds)", ""]
    lines += table(_accuracy_cell)
    lines += [
        "",
        "## 95% bootstrap intervals over problems ±standard error: Pass@1 ; Cons@N",
        "",
    ]
    lines += table(intervals)
    lines += ["", "## Generated tokens per path (without summaries) and per problem", ""]
    lines += table(tokens)
    lines += ["", "## Other views", "", *table(other_views)]
    if any(
        not m.get("pass@k_iid", True)
        for b in benchmarks
        for m in results["benchmarks"][b]["methods"].values()
    ):
        lines += [
            "",
            "\\* pass@k of a method whose paths read each other's summaries: the unbiased "
            "estimator assumes independent samples, and LeaP paths are correlated, so this "
            "pass@k is not that estimator (read it as a description of these N paths).",
        ]
    lines += [
        "",
        "## Pass@1 (%) by grading scope: " + " ; ".join(GRADING_SCOPES) + " (bold: the one "
        "graded with; paths where the authors' grader and it disagree)",
        "",
        *table(scopes),
    ]
    lines += [
        "",
        "## Protocol adherence (%): summaries closed by the model ; paths opening a summary "
        "themselves ; reflections using a peer's words (chance level)",
        "",
        *table(_adherence_cell),
    ]

    matched_rows = [
        (b, method, c)
        for b in benchmarks
        for method, c in sorted(results["benchmarks"][b]["compute_matched"].items())
    ]
    if matched_rows:
        header = ("benchmark", "method", "method Cons@N", "independent at equal tokens")
        header += ("paths used", "tokens/problem", "budget > all samples")
        rows = [
            (
                b,
                method,
                _pct(results["benchmarks"][b]["methods"][method]["cons@n"]),
                f"{_pct(c['accuracy'])}{_ci(c['accuracy_ci'], c.get('accuracy_stderr'))}",
                c["mean_paths_used"],
                _tokens(c["budget_tokens_per_problem"]),
                f"{c['budget_exceeds_samples']}/{c['problems']}",
            )
            for b, method, c in matched_rows
        ]
        lines += [
            "",
            "## Compute-matched: independent majority vote within each method's generated tokens",
            "",
            *markdown_table(header, rows),
        ]
    paired_rows = [
        (b, method, d)
        for b in benchmarks
        for method, d in sorted(results["benchmarks"][b].get("paired_vs_independent", {}).items())
    ]
    if paired_rows:
        header = ("benchmark", "method", "problems", "Pass@1 diff", "Cons@N diff")
        header += ("Cons@N diff at equal tokens",)
        rows = [
            (
                b,
                method,
                d["problems"],
                *(
                    signed_cell(d[f"{key}_diff"], d[f"{key}_diff_ci"])
                    for key in ("pass@1", "cons@n", "cons@n_vs_matched")
                ),
            )
            for b, method, d in paired_rows
        ]
        lines += [
            "",
            "## Method minus independent (points, paired bootstrap over problems)",
            "",
            *markdown_table(header, rows),
            "",
            "Both methods run the same problems with the same prompts and per-path seeds, so "
            "their scores on a problem are correlated: the interval resamples problems once for "
            "both (with several seeds, those of the lowest seed). Compare methods by these "
            "intervals, not by whether their separate intervals overlap.",
        ]
    lines += [
        "",
        "Pass@1: mean correctness of the N paths, averaged over problems. Cons@N: majority "
        "vote over extracted answers (ties -> earliest answer; tie count shown). Tokens count "
        "everything the model generated, summaries included (in parentheses: without "
        "summaries). Adherence: ratios over all paths, 95% bootstrap over problems in "
        "brackets; definitions in eval/adherence.py. ±: standard error over problems (sample "
        "std / sqrt(problems), as lighteval prints it; for adherence ratios the bootstrap's "
        "std). Definitions: eval/metrics.py.",
        "",
    ]
    return "\n".join(lines)


def render_plots(results: dict, out_dir: Path) -> list[Path]:
    """``accuracy.png`` (bars with CI error bars) and ``accuracy_vs_tokens.png``."""
    plt = pyplot()
    benchmarks = sorted(results["benchmarks"])
    methods = sorted(
        {m for b in benchmarks for m in results["benchmarks"][b]["methods"]}, key=method_key
    )
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(max(8, 3 * len(benchmarks) + 4), 4), squeeze=False)
    width = 0.8 / max(1, len(methods))
    for ax, (key, title) in zip(axes[0], (("pass@1", "Pass@1"), ("cons@n", "Cons@N")), strict=True):
        for i, method in enumerate(methods):
            xs, ys, errs = [], [], [[], []]
            for j, bench in enumerate(benchmarks):
                m = results["benchmarks"][bench]["methods"].get(method)
                if m is None or m[key] is None:
                    continue
                low, high = m[f"{key}_ci"]
                xs.append(j + bar_offset(i, len(methods), width))
                ys.append(100 * m[key])
                errs[0].append(100 * max(0.0, m[key] - (low if low is not None else m[key])))
                errs[1].append(100 * max(0.0, (high if high is not None else m[key]) - m[key]))
            ax.bar(xs, ys, width=width, yerr=errs, capsize=3, label=method, color=colors[method])
        ax.set_xticks(range(len(benchmarks)), benchmarks)
        ax.set_ylabel(f"{title} (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{title} with 95% bootstrap CI")
    axes[0][0].legend(fontsize="small")
    written.append(save_figure(fig, out_dir / ACCURACY_PNG, dpi=120))

    fig, axes = plt.subplots(
        1, len(benchmarks), figsize=(4.5 * max(1, len(benchmarks)), 4), squeeze=False
    )
    for ax, bench in zip(axes[0], benchmarks, strict=False):
        for method in methods:
            m = results["benchmarks"][bench]["methods"].get(method)
            if m is None:
                continue
            curve = m.get("vote_curve")
            if curve:
                xs = [p["tokens_per_problem"] for p in curve]
                ys = [100 * p["accuracy"] if p["accuracy"] is not None else math.nan for p in curve]
                ax.plot(xs, ys, marker="o", color=colors[method], label=f"{method} (first m paths)")
            elif m["tokens_per_problem"] is not None and m["cons@n"] is not None:
                ax.scatter(
                    [m["tokens_per_problem"]],
                    [100 * m["cons@n"]],
                    marker="s",
                    color=colors[method],
                    label=method,
                )
        ax.set_xlabel("generated tokens per problem")
        ax.set_ylabel("majority-vote accuracy (%)")
        ax.set_title(bench)
        ax.legend(fontsize="small")
    written.append(save_figure(fig, out_dir / TOKENS_PNG, dpi=120))
    return written


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (cluster nodes have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_offset(i: int, count: int, width: float) -> float:
    """Where the ``i``-th of ``count`` bars of width ``width`` sits around its group's centre."""
    return (i - (count - 1) / 2) * width


def save_figure(fig, path: Path, dpi: int) -> Path:
    """Lay out, write and free one figure; its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return path


def viewer_links(runs: Sequence[Run], out_dir: Path) -> str:
    """Write each run's trace viewer page beside results.md; the markdown linking them."""
    from eval.viewer.cli import write_run_pages

    pages = write_run_pages([(f"{r.benchmark} / {r.method}", r.traces) for r in runs], out_dir)
    links = [f"- [{label}]({name})" for label, name in pages]
    return "\n".join(["## Trace viewer (open in a browser)", "", *links, ""])


def write_report(
    dirs: Sequence[str | Path], out_dir: str | Path, grading_scope: str | None = None
) -> dict:
    """Rebuild results.json, results.md and the plots in ``out_dir`` from the traces in ``dirs``.

    ``grading_scope`` overrides the scope the runs recorded (:func:`build_results`).
    """
    runs = discover_runs(dirs)
    if not runs:
        raise FileNotFoundError(
            f"no traces.jsonl with traces under {', '.join(str(d) for d in dirs)}"
        )
    results = build_results(runs, grading_scope)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_JSON, dumps_results(results))
    md = render_markdown(results) + viewer_links(runs, out)
    atomic_write_text(out / RESULTS_MD, md)
    render_plots(results, out)
    return results

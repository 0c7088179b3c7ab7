"""Side-by-side report of several evaluations of the same setup (e.g. a student before/after SFT).

``leapt report --compare before=DIR after=DIR --output_dir OUT`` reads each
``leapt eval`` folder through :func:`eval.report.build_results` and writes
``results.json`` (accuracy and adherence under each label, for every benchmark
and method, with the seeds and settings), ``results.md`` and two plots.
The metrics, like the plain report's, are a function of the traces alone;
beside them, ``stages`` gives the wall time and generated tokens of every
stage behind each label, as the stages recorded them (:mod:`eval.costs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eval.adherence import RATES
from eval.costs import format_seconds, stage_costs
from eval.metrics import paired_values_difference
from eval.report import (
    RESULTS_JSON,
    RESULTS_MD,
    bar_offset,
    build_results,
    discover_runs,
    dumps_results,
    method_key,
    percent_cell,
    pyplot,
    save_figure,
    signed_cell,
)
from leapt.files import atomic_write_text
from leapt.markdown import markdown_table

ACCURACY_PNG = "accuracy_compare.png"
ADHERENCE_PNG = "adherence_compare.png"
ACCURACY_KEYS = ("pass@1", "cons@n")
ADHERENCE_LABELS = {
    "summary_closed_rate": "summary closed by model",
    "self_open_rate": "opens <summarize> itself",
    "peer_use_rate": "reflection uses peer",
    "peer_use_chance": "  (chance level)",
}


def _summary(metrics: dict) -> dict:
    """What the comparison keeps of one (benchmark, method) row."""
    out: dict = {"model": metrics["model"], "n": metrics["n"], "problems": metrics["problems"]}
    for key in ACCURACY_KEYS:
        out[key] = metrics[key]
        out[f"{key}_ci"] = metrics[f"{key}_ci"]
        out[f"{key}_stderr"] = metrics.get(f"{key}_stderr")
        if "seeds" in metrics:
            out[f"{key}_seeds"] = metrics["seeds"][key]
    out["tokens_per_path"] = metrics["tokens_per_path"]
    out["per_problem_values"] = metrics["per_problem_values"]
    out["adherence"] = metrics["adherence"]
    if "seeds" in metrics:
        out["adherence_seeds"] = {rate: metrics["seeds"][rate] for rate in RATES}
    return out


def build_comparison(labelled: Sequence[tuple[str, Path]]) -> dict:
    """``{labels, seeds, settings, stages, <label>: {benchmark: {method: summary}}}``."""
    doc: dict = {"schema": 1, "labels": [label for label, _ in labelled], "seeds": {}}
    doc["settings"], doc["stages"] = {}, {}
    for label, folder in labelled:
        results = build_results(discover_runs([folder]))
        rows = {
            bench: {method: _summary(m) for method, m in entry["methods"].items()}
            for bench, entry in results["benchmarks"].items()
        }
        doc[label] = rows
        methods = [m for entry in results["benchmarks"].values() for m in entry["methods"].values()]
        doc["seeds"][label] = sorted(
            {
                s
                for m in methods
                for s in (m["seeds"]["seeds"] if "seeds" in m else [m["config"].get("seed")])
            }
        )
        doc["settings"][label] = {
            bench: {method: m["config"] for method, m in entry["methods"].items()}
            for bench, entry in results["benchmarks"].items()
        }
        doc["stages"][label] = stage_costs(folder, min(m["model"] for m in methods))
    first = doc["labels"][0]
    doc["paired"] = {
        label: {
            bench: {
                method: paired_values_difference(
                    row["per_problem_values"], doc[first][bench][method]["per_problem_values"]
                )
                for method, row in rows.items()
                if method in doc[first].get(bench, {})
            }
            for bench, rows in doc[label].items()
        }
        for label in doc["labels"][1:]
    }
    return doc


def _value(row: dict | None, key: str) -> str:
    if row is None:
        return "-"
    return percent_cell(
        row[key], row.get(f"{key}_seeds"), row[f"{key}_ci"], row.get(f"{key}_stderr")
    )


def _rate(row: dict | None, rate: str) -> str:
    if row is None:
        return "-"
    a = row["adherence"]
    seeds = (row.get("adherence_seeds") or {}).get(rate)
    return percent_cell(a[rate], seeds, a[f"{rate}_ci"], a.get(f"{rate}_stderr"))


def render_comparison(doc: dict) -> str:
    labels = doc["labels"]
    lines = ["# Before / after", ""]
    for label in labels:
        models = sorted({r["model"] for b in doc[label].values() for r in b.values()})
        lines.append(
            f"- **{label}**: {', '.join(f'`{m}`' for m in models)}; "
            f"seeds {', '.join(map(str, doc['seeds'][label]))}"
        )
    benchmarks = sorted({b for label in labels for b in doc[label]})
    header = ("method", "metric", *labels)
    for bench in benchmarks:
        methods = sorted({m for label in labels for m in doc[label].get(bench, {})}, key=method_key)
        table = []
        for method in methods:
            rows = [doc[label].get(bench, {}).get(method) for label in labels]
            for key, name in (("pass@1", "Pass@1 (%)"), ("cons@n", "Cons@N (%)")):
                table.append((method, name, *(_value(r, key) for r in rows)))
            for rate, name in ADHERENCE_LABELS.items():
                table.append((method, f"{name.strip()} (%)", *(_rate(r, rate) for r in rows)))
            tokens = [("-" if r is None else f"{r['tokens_per_path']:,.0f}") for r in rows]
            table.append((method, "tokens per path", *tokens))
        lines += ["", f"## {bench}", "", *markdown_table(header, table)]
    lines += _paired_section(doc)
    lines += ["", "## Cost", "", *markdown_table(*_cost_table(doc))]
    lines += [
        "",
        "Values: mean ± std over seeds, 95% bootstrap interval over problems in brackets. "
        "Adherence definitions: eval/adherence.py; accuracy: eval/metrics.py.",
        "",
    ]
    return "\n".join(lines)


def _paired_section(doc: dict) -> list[str]:
    """Each later label minus the first, per benchmark and method, with paired intervals."""
    first = doc["labels"][0]
    header = ("benchmark", "method", "problems", "Pass@1 diff", "Cons@N diff")
    lines = []
    for label, benches in doc.get("paired", {}).items():
        rows = [
            (
                bench,
                method,
                d["problems"],
                *(signed_cell(d[f"{key}_diff"], d[f"{key}_diff_ci"]) for key in ACCURACY_KEYS),
            )
            for bench, methods in sorted(benches.items())
            for method, d in sorted(methods.items(), key=lambda kv: method_key(kv[0]))
        ]
        if rows:
            lines += ["", f"## {label} minus {first} (points, paired bootstrap over problems)", ""]
            lines += markdown_table(header, rows)
    if lines:
        lines += [
            "",
            "Both evaluations ran the same problems (and seeds), so a problem's two scores are "
            "paired: the interval resamples problems once for both (seed-averaged values).",
        ]
    return lines


def _cost_table(doc: dict) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Wall time and generated tokens per stage: the data and training behind a label, then evals."""
    names = {"generate": "generate (teacher)", "train": "train", "eval": "eval"}
    order = [(label, stage) for label in doc["labels"] for stage in ("generate", "train")]
    order += [(label, "eval") for label in doc["labels"]]
    rows = []
    for label, stage in order:
        cost = doc["stages"][label].get(stage)
        if cost is not None:
            rows.append(
                (f"{names[stage]}, {label}", format_seconds(cost["seconds"]), _tokens(cost))
            )
    return ("stage", "wall time", "tokens"), rows


def _tokens(cost: dict) -> str:
    """Generated tokens of a generating stage; a training stage's tokens per epoch and those with loss."""
    if "generated_tokens" in cost:
        return f"{cost['generated_tokens']:,} generated"
    if "trained_tokens" in cost:
        loss = cost.get("loss_tokens")
        with_loss = "" if loss is None else f" ({loss:,} with loss)"
        return f"{cost['trained_tokens']:,} per epoch{with_loss}"
    return "-"


def _bars(ax, doc: dict, bench: str, keys: Sequence[str], pick, title: str) -> None:
    labels = doc["labels"]
    methods = sorted({m for label in labels for m in doc[label].get(bench, {})}, key=method_key)
    groups = [(method, key) for method in methods for key in keys]
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ys, lows, highs = [], [], []
        for method, key in groups:
            row = doc[label].get(bench, {}).get(method)
            value, ci = pick(row, key) if row else (None, [None, None])
            y = 100 * value if value is not None else 0.0
            ys.append(y)
            lows.append(max(0.0, y - 100 * ci[0]) if ci and ci[0] is not None else 0.0)
            highs.append(max(0.0, 100 * ci[1] - y) if ci and ci[1] is not None else 0.0)
        xs = [j + bar_offset(i, len(labels), width) for j in range(len(groups))]
        ax.bar(xs, ys, width=width, yerr=[lows, highs], capsize=3, label=label)
    ax.set_xticks(range(len(groups)), [f"{m}\n{k}" for m, k in groups], fontsize="x-small")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(f"{bench}: {title}")
    ax.legend(fontsize="small")


def render_comparison_plots(doc: dict, out_dir: Path) -> list[Path]:
    """Accuracy and adherence bars per label, with 95% bootstrap intervals."""
    plt = pyplot()
    benchmarks = sorted({b for label in doc["labels"] for b in doc[label]})
    written = []
    for name, keys, pick, title in (
        (ACCURACY_PNG, ACCURACY_KEYS, lambda r, k: (r[k], r[f"{k}_ci"]), "accuracy"),
        (
            ADHERENCE_PNG,
            tuple(ADHERENCE_LABELS),
            lambda r, k: (r["adherence"][k], r["adherence"][f"{k}_ci"]),
            "protocol adherence",
        ),
    ):
        fig, axes = plt.subplots(
            len(benchmarks),
            1,
            figsize=(max(8, 1.2 * len(keys) * 3), 4 * len(benchmarks)),
            squeeze=False,
        )
        for ax, bench in zip(axes[:, 0], benchmarks, strict=True):
            _bars(ax, doc, bench, keys, pick, title)
        written.append(save_figure(fig, out_dir / name, dpi=110))
    return written


def write_comparison(labelled: Sequence[tuple[str, Path]], out_dir: str | Path) -> dict:
    """Write results.json, results.md and the plots comparing the labelled eval folders."""
    doc = build_comparison(labelled)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_JSON, dumps_results(doc))
    atomic_write_text(out / RESULTS_MD, render_comparison(doc))
    render_comparison_plots(doc, out)
    return doc

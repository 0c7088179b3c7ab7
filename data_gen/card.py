"""The dataset card (README.md) of a generated dataset.

Everything in it comes from ``stats.json``, so a merged dataset's card is
re-rendered from merged stats.  It lists only what reproduces the data
(source, teacher, LeaP and sampling settings, filters, counts); backend
endpoints and credential variable names are left out on purpose, and a local
source file or teacher folder is named, not given as a path.
"""

from __future__ import annotations

import json

from leapt.markdown import markdown_table
from leapt.redact import public_name

#: what the ``sft_prompt`` setting means, for the card's reader
_PROMPTS = {
    "plain": "the problem alone, as a LeaP-T student is given it (an announced "
    "teacher's protocol preamble and assistant pre-fill are left out)",
    "teacher": "the prompt the teacher was given",
}


def _table(mapping: dict) -> str:
    rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in mapping.items()]
    return "\n".join(markdown_table(("key", "value"), rows))


def render_card(stats: dict, name: str) -> str:
    """Markdown with Hub front matter for a dataset described by ``stats``."""
    counts = stats["counts"]
    decon = stats["decontamination"]
    dropped = "\n".join(
        markdown_table(
            ("rule", "dropped", "failing"),
            [(rule, n, counts["rule_failures"][rule]) for rule, n in counts["dropped"].items()],
        )
    )
    decon_rows = [
        (d["id"], d["benchmark"], d["benchmark_id"], d["ngram"]) for d in decon["dropped_problems"]
    ]
    split = f" (split `{stats['split']}`)" if stats.get("split") else ""
    imitation = ""
    if counts.get("imitation"):
        imitation = (
            "\nPaths imitating the protocol in their own text, by the first way they do: "
            + (", ".join(f"{reason} {n}" for reason, n in counts["imitation"].items()))
        )
    protocol = stats.get("protocol")
    tags = (
        f"\n- **Protocol tags:** `{protocol['summary_open']}` ... `{protocol['summary_close']}`, "
        f"peer blocks in `<{protocol['comment_tag']}>` (full wording in stats.json)"
        if protocol
        else ""
    )
    if not decon["enabled"]:
        decon_text = "Off: problems were not checked against evaluation benchmarks."
    else:
        decon_text = (
            f"{decon['ngram']}-gram overlap of normalized words against "
            f"{', '.join(decon['benchmarks'])}: {decon['checked']} problems checked, "
            f"{decon['dropped']} dropped."
        )
        if decon_rows:
            header = ("problem", "benchmark", "benchmark problem", "shared n-gram")
            decon_text += "\n\n" + "\n".join(markdown_table(header, decon_rows))
    return f"""---
pretty_name: {name}
tags:
- leap
- reasoning
- sft
configs:
- config_name: default
  data_files:
  - split: train
    path: {stats.get("data_file", "data/*.parquet")}
---

# {name}

Supervised fine-tuning data for LeaP-T students: reasoning paths of a teacher
model running **{stats["method"]}** (Learning from Peers: parallel paths that
summarize every T tokens and read their peers' summaries), kept only when they
show the protocol done well.  Made with `leapt generate`.

- **Source problems:** `{public_name(stats["source"])}`{split}
- **Teacher:** `{public_name(stats["teacher"])}`
- **Shards:** {", ".join(stats["shards"])}{tags}
- **Row prompt:** {_PROMPTS[stats.get("sft_prompt", "teacher")]}

## LeaP and sampling settings

{_table(stats["leap"])}

## Filters

{_table(stats["filters"])}

## Counts

{counts["problems"]} problems harvested, {counts["paths"]} paths, **{counts["kept"]} rows kept**
from {counts["problems_with_kept_paths"]} problems.  Dropped paths by the first enforced rule they
failed, and all paths failing each rule (switched-off rules included):

{dropped}
{imitation}

## Decontamination

{decon_text}

## Columns

- `messages`: the user message holding the problem prompt and one assistant message with
  the whole generated turn, peer blocks and engine cues included.
- `segments`: the same text split by author (`prompt`, `model`, `peer`);
  `segments[0]` is the rendered prompt and `"".join(segments[1:])` equals the assistant
  message exactly.  Train only on `model` segments (the assistant's own tokens); do not
  re-render `messages` through a chat template that strips reasoning from assistant turns.
- `id`, `path_index`, `problem`, `answer` (gold), `final_answer` (teacher's), `finish`,
  `generated_tokens`, `method`, `teacher`, `source`.
"""

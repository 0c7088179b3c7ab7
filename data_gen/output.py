"""The on-disk dataset: parquet shards ``datasets.load_dataset`` reads, plus ``stats.json``.

Layout of one dataset directory::

    data/train-<hash of rows>.parquet   rows (schema: data_gen.sft_format.COLUMNS)
    stats.json                          counts per filter reason, decontamination report
    README.md                           dataset card (data_gen.card)

Everything here is *derived* from the raw traces, so it is rewritten whole
(atomically: temporary file, then rename) whenever a run or a merge finishes;
the raw traces themselves are append-only and never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from data_gen.sft_format import COLUMNS
from leapt.config import ConfigError
from leapt.files import atomic_write_text

DATA_DIR = "data"
STATS_FILE = "stats.json"


def features():
    """Explicit column types, so an empty dataset (nothing kept) still has a schema."""
    from datasets import Features, List, Value

    text = Value("string")
    return Features(
        {
            "id": text,
            "path_index": Value("int64"),
            "problem": text,
            "answer": text,
            "final_answer": text,
            "messages": List({"role": text, "content": text}),
            "segments": List({"kind": text, "text": text}),
            "finish": text,
            "generated_tokens": Value("int64"),
            "method": text,
            "teacher": text,
            "source": text,
        }
    )


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in a canonical order (problem id, then path) so output never depends on timing."""
    return sorted(rows, key=lambda r: (r["id"], r["path_index"]))


def write_dataset(
    out_dir: str | Path, rows: Sequence[dict[str, Any]], stats: dict, name: str | None = None
) -> Path:
    """Write ``rows`` as parquet, ``stats`` as JSON and, given a ``name``, the card.

    The parquet file is named after a hash of its rows and the card's data
    path names that file: ``datasets`` caches a local folder by its card
    config, not by file contents, so a folder rewritten with the same file
    name would load stale rows from the cache.  Older parquet files are
    removed once the new card points away from them.
    """
    from datasets import Dataset

    from data_gen.card import render_card

    out = Path(out_dir)
    rows = sort_rows(rows)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    target = out / DATA_DIR / f"train-{digest[:16]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    columns = {col: [row[col] for row in rows] for col in COLUMNS}  # keeps the schema if empty
    Dataset.from_dict(columns, features=features()).to_parquet(str(tmp))
    os.replace(tmp, target)
    stats = {**stats, "data_file": target.relative_to(out).as_posix()}
    atomic_write_text(out / STATS_FILE, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    if name is not None:
        atomic_write_text(out / "README.md", render_card(stats, name))
    for old in (out / DATA_DIR).glob("*.parquet"):
        if old != target:
            old.unlink()
    return out


def read_dataset_dir(path: str | Path) -> tuple[list[dict[str, Any]], dict]:
    """Rows and stats of a dataset directory written by :func:`write_dataset`."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted((path / DATA_DIR).glob("*.parquet"))
    if not files or not (path / STATS_FILE).is_file():
        raise ConfigError(f"{path} is not a generated dataset (no data/*.parquet or {STATS_FILE})")
    rows: list[dict[str, Any]] = []
    for file in files:
        rows.extend(pq.read_table(file).to_pylist())
    stats = json.loads((path / STATS_FILE).read_text(encoding="utf-8"))
    return rows, stats


def expand_dirs(dirs: Sequence[str | Path]) -> list[Path]:
    """Dataset directories from ``dirs``; a folder of ``shard-*`` datasets counts as all of them."""
    out: list[Path] = []
    for d in map(Path, dirs):
        if (d / STATS_FILE).is_file():
            out.append(d)
            continue
        shards = sorted(p for p in d.glob("shard-*-of-*") if (p / STATS_FILE).is_file())
        if not shards:
            raise ConfigError(f"{d} holds no generated dataset (no {STATS_FILE}, no shard-* dirs)")
        out.extend(shards)
    return out


def check_shard_set(inputs: Sequence[Path], all_stats: Sequence[dict]) -> None:
    """Refuse shards that are not one complete ``shard-i-of-N`` set (0..N-1, one N).

    A merge of an unfinished Slurm array would otherwise give a dataset that
    silently lacks problems; ``--allow_partial`` skips this check.
    """
    found: dict[int, set[int]] = {}
    where: dict[int, Path] = {}
    for path, stats in zip(inputs, all_stats, strict=True):
        for shard in stats.get("shards", []):
            index, _, count = str(shard).partition("/")
            found.setdefault(int(count), set()).add(int(index))
            where.setdefault(int(count), path)
    if len(found) > 1:
        sets = ", ".join(f"-of-{n} ({where[n]})" for n in sorted(found))
        raise ConfigError(
            f"mixed shard counts {sets}: these are shards of different runs; merge one "
            "run's shards (or pass --allow_partial)"
        )
    for count, indices in found.items():
        missing = [f"shard-{i}-of-{count}" for i in range(count) if i not in indices]
        if missing:
            raise ConfigError(
                f"incomplete shard set: missing {', '.join(missing)} (not finished, or not "
                "given); rerun those array tasks, or pass --allow_partial to merge what exists"
            )


def _add_counts(a: dict, b: dict) -> dict:
    """Key-wise sum of two count trees (nested dicts of ints)."""
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _add_counts(a.get(key, {}), value)
            if isinstance(value, dict)
            else (a.get(key, 0) + value)
        )
    return out


def merge_stats(all_stats: Sequence[dict], kept_rows: int, repeats: int) -> dict:
    """Stats of a merged dataset: filter counts added, decontamination reports joined.

    Shards hold disjoint problems, so their counts add up to an unsharded run's;
    an input that is the same shard of the same run as an earlier one is not
    counted again, and ``kept``
    is the merged row count.
    """
    unique: dict[tuple, dict] = {}
    for stats in all_stats:  # the same shard of the same run given twice counts once
        key = (stats["source"], stats["teacher"], stats["method"], tuple(stats["shards"]))
        unique.setdefault(key, stats)
    repeated_inputs = len(all_stats) - len(unique)
    all_stats = list(unique.values())
    merged = {k: v for k, v in all_stats[0].items() if k not in ("counts", "decontamination")}
    merged["shards"] = sorted({s for stats in all_stats for s in stats.get("shards", [])})
    counts: dict = {}
    dropped_problems: dict[str, dict] = {}
    checked = 0
    for stats in all_stats:
        counts = _add_counts(counts, stats["counts"])
        decon = stats["decontamination"]
        checked += decon["checked"]
        for item in decon["dropped_problems"]:
            dropped_problems.setdefault(item["id"], item)
    counts["kept"] = kept_rows
    merged["counts"] = counts
    merged["decontamination"] = {
        **all_stats[0]["decontamination"],
        "checked": checked,
        "dropped": len(dropped_problems),
        "dropped_problems": sorted(dropped_problems.values(), key=lambda d: d["id"]),
    }
    merged["merge"] = {
        "inputs": len(all_stats) + repeated_inputs,
        "repeated_inputs_ignored": repeated_inputs,
        "repeated_rows_removed": repeats,
    }
    return merged


def merge_rows(all_rows: Iterable[Sequence[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """Union of row lists keyed by (problem id, path index); also returns how many repeats fell."""
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    repeats = 0
    for rows in all_rows:
        for row in rows:
            key = (row["id"], row["path_index"])
            if key in by_key:
                repeats += 1
                continue
            by_key[key] = row
    return sort_rows(by_key.values()), repeats

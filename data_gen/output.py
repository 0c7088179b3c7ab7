"""The on-disk dataset: parquet shards ``datasets.load_dataset`` reads, plus ``stats.json``.

Layout of one dataset directory::

    data/train-<hash of rows>.parquet   rows (schema: data_gen.sft_format.COLUMNS)
    stats.json                          counts per filter reason, decontamination report
    README.md                           dataset card (data_gen.card)

Everything here is *derived* from the raw traces, so it is rewritten whole
whenever a run or a merge finishes; the raw traces themselves are append-only
and never rewritten.  A rewrite is all or nothing: the new parquet file gets a
new name, and ``stats.json`` (its ``data_file`` key) is the one commit point
that says which file is the dataset.  Every reader follows it
(:func:`data_files`), so a rewrite killed midway leaves the old dataset, read
as before, plus an unreferenced file the next rewrite removes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from data_gen.sft_format import COLUMNS
from leapt.config import ConfigError
from leapt.files import atomic_path, atomic_write_text

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
    name would load stale rows from the cache.  Writing ``stats.json``
    commits the new file; older parquet files are removed only after that and
    after the card points away from them.
    """
    from datasets import Dataset

    from data_gen.card import render_card

    out = Path(out_dir)
    rows = sort_rows(rows)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    target = out / DATA_DIR / f"train-{digest[:16]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    columns = {col: [row[col] for row in rows] for col in COLUMNS}  # keeps the schema if empty
    with atomic_path(target) as tmp:
        Dataset.from_dict(columns, features=features()).to_parquet(str(tmp))
    stats = {**stats, "data_file": target.relative_to(out).as_posix()}
    atomic_write_text(out / STATS_FILE, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    if name is not None:
        atomic_write_text(out / "README.md", render_card(stats, name))
    for old in (out / DATA_DIR).glob("*.parquet"):
        if old != target:
            old.unlink()
    return out


def check_dataset_target(out: Path, *, merged: bool, keep: Sequence[str] = ()) -> None:
    """Refuse a dataset folder holding anything but a dataset of the same kind's own files.

    :func:`write_dataset` rewrites ``data/``, ``stats.json`` and ``README.md``
    (and deletes the parquet files it did not commit): pointed at a shard, a
    merge, a harvest of another kind or any other files, it would replace or
    delete what it did not make.  A rerun into its own earlier output is
    allowed: ``merged`` says which kind this writer is (``leapt generate
    merge`` or ``leapt generate``), and ``keep`` names further top-level
    entries the writer owns (``leapt generate``: its ``raw/`` traces and
    ``wall_time.json``).
    """
    if not out.is_dir():
        return
    keep = {*keep, STATS_FILE, "README.md", DATA_DIR}

    def own(rel: str) -> bool:  # what write_dataset leaves, its temp files, and ``keep``
        folder, _, name = rel.rpartition("/")
        return (
            rel.split("/")[0] in keep - {DATA_DIR}
            or rel == DATA_DIR
            or (folder == DATA_DIR and name.endswith(".parquet"))
            or (folder in {"", DATA_DIR} and name.startswith(".") and ".tmp" in name)
        )

    present = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    foreign = [rel for rel in present if not own(rel)]
    if not foreign and (out / STATS_FILE).exists():
        try:
            same_kind = ("merge" in read_stats(out)) == merged
        except ConfigError:
            same_kind = False
        if not same_kind:
            foreign = [STATS_FILE]
    elif not foreign and any(p in present for p in ("README.md", DATA_DIR)):
        foreign = [next(p for p in ("README.md", DATA_DIR) if p in present)]
    if foreign:
        writer = "a merge" if merged else "leapt generate"
        raise ConfigError(
            f"--output_dir {out} already holds files {writer} did not write (e.g. {foreign[0]}); "
            "choose a new or empty directory"
        )


def read_stats(path: str | Path) -> dict:
    """``stats.json`` of dataset directory ``path``; ConfigError naming the file if it is unreadable."""
    file = Path(path) / STATS_FILE
    try:
        stats = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} is not a generated dataset (no {STATS_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file} is not readable JSON: {exc}") from exc
    if not isinstance(stats, dict):
        raise ConfigError(f"{file} does not hold a JSON object")
    return stats


def data_files(path: str | Path, stats: dict | None = None) -> list[Path]:
    """The committed parquet files of dataset directory ``path``: the one ``stats.json`` names.

    A dataset written before ``data_file`` was recorded has exactly one file
    under ``data/``; that is taken.  Any other parquet file there is a
    rewrite that did not finish, and is never read.
    """
    path = Path(path)
    stats = read_stats(path) if stats is None else stats
    if "data_file" in stats:
        file = path / stats["data_file"]
        if not file.is_file():
            raise ConfigError(
                f"{path} is not a generated dataset: {STATS_FILE} names {stats['data_file']}, "
                "which is missing"
            )
        return [file]
    files = sorted((path / DATA_DIR).glob("*.parquet"))
    if len(files) != 1:
        raise ConfigError(
            f"{path} is not a generated dataset ({len(files)} data/*.parquet files and no "
            f"data_file in {STATS_FILE})"
        )
    return files


def read_dataset_dir(path: str | Path) -> tuple[list[dict[str, Any]], dict]:
    """Rows and stats of a dataset directory written by :func:`write_dataset`."""
    import pyarrow.parquet as pq

    stats = read_stats(path)
    rows: list[dict[str, Any]] = []
    for file in data_files(path, stats):
        rows.extend(pq.read_table(file).to_pylist())
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

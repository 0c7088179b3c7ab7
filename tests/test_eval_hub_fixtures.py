"""Every registry entry's Hub column mapping, exercised offline on a folder laid out like its repo.

``tests/data/hub/<owner>/<name>/`` holds a few rows per Hub dataset in the repo's own file
layout (split named by file, GPQA's subset by its card's ``configs``).  The benchmark's
source is pointed at that folder, so ``datasets.load_dataset`` and the registry's
``columns`` are the ones a real run uses; only the download is skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from eval import benchmarks
from eval.benchmarks import BENCHMARKS, load_benchmark

HUB_FIXTURES = Path(__file__).resolve().parent / "data" / "hub"
HUB_ENTRIES = sorted(n for n, b in BENCHMARKS.items() if b.source and "/" in b.source)


def _rows(folder: Path) -> list[dict]:
    """The fixture's rows as the Hub files hold them (jsonl or csv)."""
    rows = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".jsonl":
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".csv":
            with path.open(newline="") as f:
                rows += list(csv.DictReader(f))
    return rows


@pytest.fixture
def hub_benchmark(monkeypatch, tmp_path):
    """Point a registry entry at its fixture folder; datasets' cache goes to ``tmp_path``."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")

    def point(name: str) -> Path:
        folder = HUB_FIXTURES / BENCHMARKS[name].source
        local = dataclasses.replace(BENCHMARKS[name], source=str(folder))
        monkeypatch.setitem(benchmarks.BENCHMARKS, name, local)
        return folder

    return point


def test_every_hub_entry_has_a_fixture():
    assert {"aime24", "aime25", "math500", "gpqa_diamond"} <= set(HUB_ENTRIES)
    for name in HUB_ENTRIES:
        assert _rows(HUB_FIXTURES / BENCHMARKS[name].source), f"no fixture rows for {name}"


def test_math500_entry():
    bench = BENCHMARKS["math500"]
    assert (bench.source, bench.split, bench.task) == ("HuggingFaceH4/MATH-500", "test", "math")
    assert bench.columns["id"] == "unique_id"


@pytest.mark.parametrize("name", [n for n in HUB_ENTRIES if BENCHMARKS[n].task == "math"])
def test_math_entry_maps_hub_columns(hub_benchmark, name):
    rows = _rows(hub_benchmark(name))
    columns = BENCHMARKS[name].columns
    problems = load_benchmark(name)
    assert [p.id for p in problems] == [str(r[columns["id"]]) for r in rows]
    assert [p.answer for p in problems] == [str(r[columns["answer"]]) for r in rows]
    assert [p.problem for p in problems] == [r[columns["problem"]].strip() for r in rows]
    assert all(p.options is None for p in problems)
    assert len(load_benchmark(name, limit=2)) == 2


def test_math500_ids_and_latex_answers(hub_benchmark):
    hub_benchmark("math500")
    by_id = {p.id: p for p in load_benchmark("math500")}
    assert by_id["test/precalculus/807.json"].answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert by_id["test/number_theory/572.json"].answer == "9"


def test_gpqa_entry_gathers_its_option_columns(hub_benchmark):
    rows = _rows(hub_benchmark("gpqa_diamond"))
    problems = load_benchmark("gpqa_diamond", seed=3)
    assert [p.id for p in problems] == [r["Record ID"] for r in rows]
    for p, r in zip(problems, rows, strict=True):
        assert p.problem == r["Question"].strip()
        assert p.options["ABCD".index(p.answer)] == r["Correct Answer"].strip()
        assert sorted(p.options) == sorted(
            r[c].strip()
            for c in (
                "Correct Answer",
                "Incorrect Answer 1",
                "Incorrect Answer 2",
                "Incorrect Answer 3",
            )
        )
    assert len({p.answer for p in problems}) > 1  # the correct option is not always first
    in_file_order = load_benchmark("gpqa_diamond", shuffle=False)
    assert {p.answer for p in in_file_order} == {"A"}

"""Dataset directories: rows round-trip, shards merge without duplicates, publishing fails cleanly."""

from __future__ import annotations

import json

import pytest

from data_gen.filters import FilterResult
from data_gen.merge import main as merge
from data_gen.output import read_dataset_dir, write_dataset
from data_gen.sft_format import to_row
from inference.trace import PathRecord, Segment, Trace
from leapt.cli import main as leapt
from leapt.config import ConfigError

USER = [{"role": "user", "content": "Q?"}]


def trace(problem_id: str, paths: int) -> Trace:
    records = [
        PathRecord(
            segments=[
                Segment("prompt", "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"),
                Segment("model", f"path {i} thinks"),
                Segment("peer", ' <comment> Peer 1: "x" </comment>'),
                Segment("model", " \\boxed{1}"),
            ],
            final_answer="1",
            correct=True,
            finish="think_end",
        )
        for i in range(paths)
    ]
    return Trace(id=problem_id, problem="Q?", answer="1", paths=records)


def shard_dir(tmp_path, name: str, traces: list[Trace], shard: str, decon: list[dict]):
    result = FilterResult(problems=len(traces), paths=sum(len(t.paths) for t in traces))
    result.kept = [(t, i) for t in traces for i in range(len(t.paths))]
    stats = {
        "source": "src",
        "teacher": "teacher",
        "method": "leap",
        "shards": [shard],
        "leap": {"n": 2},
        "filters": {"correct": True},
        "decontamination": {
            "enabled": True,
            "ngram": 8,
            "benchmarks": ["aime24"],
            "checked": len(traces) + len(decon),
            "dropped": len(decon),
            "dropped_problems": decon,
        },
        "counts": result.stats(),
    }
    rows = [to_row(t, i, USER, "src") for t, i in result.kept]
    out = tmp_path / name
    return write_dataset(out, rows, stats, name)


def test_rows_round_trip_and_the_assistant_turn_is_the_segments_after_the_prompt(tmp_path):
    out = shard_dir(tmp_path, "one", [trace("a", 2)], "0/1", [])
    rows, stats = read_dataset_dir(out)
    assert [(r["id"], r["path_index"]) for r in rows] == [("a", 0), ("a", 1)]
    for row in rows:
        assert row["messages"][:-1] == USER
        assert row["messages"][-1]["content"] == "".join(s["text"] for s in row["segments"][1:])
    assert stats["counts"]["kept"] == 2


def test_merge_unions_shards_sums_counts_and_drops_repeated_rows(tmp_path):
    hit = {"id": "z", "benchmark": "aime24", "benchmark_id": "3", "ngram": "a b c"}
    a = shard_dir(tmp_path, "shard-0-of-2", [trace("a", 2)], "0/2", [hit])
    b = shard_dir(tmp_path, "shard-1-of-2", [trace("b", 1), trace("c", 1)], "1/2", [])
    out = tmp_path / "merged"
    assert merge([str(a), str(b), str(a), "--output_dir", str(out)]) == 0
    rows, stats = read_dataset_dir(out)
    assert [(r["id"], r["path_index"]) for r in rows] == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert stats["counts"]["kept"] == 4 and stats["counts"]["problems"] == 3
    assert stats["merge"]["repeated_rows_removed"] == 2
    assert stats["merge"]["repeated_inputs_ignored"] == 1
    assert stats["shards"] == ["0/2", "1/2"]
    assert stats["decontamination"]["dropped_problems"] == [hit]
    assert stats["decontamination"]["checked"] == 2 + 2
    card = (out / "README.md").read_text()
    assert "**4 rows kept**" in card and "a b c" in card
    # a rerun into its own earlier output rewrites it; a shard's folder is not a merge's
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert merge([str(a), str(b), "--output_dir", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}.keys() == before.keys()
    assert read_dataset_dir(out)[0] == rows
    shard_files = {p: p.read_bytes() for p in b.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="already holds files a merge did not write"):
        merge([str(a), "--allow_partial", "--output_dir", str(b)])
    assert {p: p.read_bytes() for p in b.rglob("*") if p.is_file()} == shard_files


def test_merge_refuses_to_overwrite_an_input_and_names_non_datasets(tmp_path, capsys):
    a = shard_dir(tmp_path, "a", [trace("a", 1)], "0/1", [])
    assert leapt(["generate", "merge", str(a), "--output-dir", str(a)]) == 2
    assert "one of the inputs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert leapt(["generate", "merge", str(tmp_path / "empty"), "--output-dir", "x"]) == 2
    assert "holds no generated dataset" in capsys.readouterr().err


def test_failed_publish_is_one_line_without_the_token(tmp_path, capsys, monkeypatch):
    secret = "hf_testsecret0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    a = shard_dir(tmp_path, "a", [trace("a", 1)], "0/1", [])
    out = tmp_path / "merged"
    code = leapt(["generate", "merge", str(a), "--output-dir", str(out), "--push-to-hub", "me/ds"])
    assert code == 2
    captured = capsys.readouterr()
    assert "me/ds" in captured.err and "push_to_hub" in captured.err
    assert secret not in captured.err + captured.out
    assert json.loads((out / "stats.json").read_text())["counts"]["kept"] == 1


def test_rewritten_dataset_loads_fresh_rows_through_the_datasets_cache(tmp_path):
    import datasets

    cache = str(tmp_path / "hf-cache")  # one cache for both loads, as for a user
    out = shard_dir(tmp_path, "ds", [trace("a", 2)], "0/1", [])
    assert datasets.load_dataset(str(out), split="train", cache_dir=cache).num_rows == 2
    shard_dir(tmp_path, "ds", [trace("a", 2), trace("b", 1)], "0/1", [])  # e.g. after a resume
    assert datasets.load_dataset(str(out), split="train", cache_dir=cache).num_rows == 3
    assert len(list((out / "data").glob("*.parquet"))) == 1


@pytest.mark.parametrize("dies_at", ["parquet", "stats", "card"])
def test_a_rewrite_that_dies_midway_leaves_one_dataset_that_every_reader_takes(
    tmp_path, monkeypatch, dies_at
):
    from data_gen import output
    from data_gen.hub import dataset_files
    from training.dataset import load_sft_dataset

    out = shard_dir(tmp_path, "ds", [trace("a", 2)], "0/1", [])
    old_rows, _ = read_dataset_dir(out)
    real_write = output.atomic_write_text

    class Killed(Exception):
        pass

    def dying_write(path, text):
        if path.name == {"stats": "stats.json", "card": "README.md"}.get(dies_at):
            raise Killed(path)
        real_write(path, text)

    def dying_parquet(self, target, *args, **kwargs):
        with open(target, "wb") as half:
            half.write(b"PAR1 half a file")
        raise Killed(target)

    monkeypatch.setattr(output, "atomic_write_text", dying_write)
    if dies_at == "parquet":
        monkeypatch.setattr("datasets.Dataset.to_parquet", dying_parquet)
    with pytest.raises(Killed):
        shard_dir(tmp_path, "ds", [trace("a", 2), trace("b", 1)], "0/1", [])
    monkeypatch.undo()

    committed = [(r["id"], r["path_index"]) for r in read_dataset_dir(out)[0]]
    expected = 2 if dies_at != "card" else 3  # stats.json is the commit point
    assert len(committed) == expected
    assert committed[:2] == [(r["id"], r["path_index"]) for r in old_rows]
    published = [f for f in dataset_files(out) if f.endswith(".parquet")]
    assert len(published) == 1
    assert load_sft_dataset(str(out)).num_rows == expected
    assert not list(out.rglob("*.tmp*")), "a temp file was left behind"
    shard_dir(tmp_path, "ds", [trace("a", 2), trace("c", 1)], "0/1", [])  # the next write cleans up
    assert len(list((out / "data").glob("*.parquet"))) == 1
    assert [r["id"] for r in read_dataset_dir(out)[0]] == ["a", "a", "c"]

"""``leapt generate`` end to end with a tiny real model on synthetic problems.

The problems are the seeded synthetic ones, written to a local file with
renamed columns so the column mapping and the local-file source are exercised.

A random tiny model almost never answers correctly, closes a summary or ends
by itself, so these runs switch off the correctness, summary and natural-end
filters (each is tested on hand-built traces in test_data_gen_filters.py) and
keep the grade-independent peer-exchange and duplicate rules.  The hf backend
runs one request per batch so every sample depends only on its own seed,
which makes sharded and resumed runs comparable with the plain run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_gen.cli import main as generate
from data_gen.decontaminate import normalize_words
from data_gen.merge import main as merge
from data_gen.output import read_dataset_dir
from inference.problems import synthetic_problems
from inference.protocol import load_protocol
from inference.trace import TraceFile
from leapt.cli import main as leapt

SOURCE_PROBLEMS = 4
#: one synthetic problem is also in the "benchmark" below and must be decontaminated away
PROBLEMS = SOURCE_PROBLEMS - 1
PATHS = 2


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """(source, benchmark): the synthetic problems as a jsonl with other column names, and a
    local eval set that holds synthetic problem 1 (plus an unrelated problem)."""
    folder = tmp_path_factory.mktemp("inputs")
    problems = synthetic_problems(SOURCE_PROBLEMS, 0)
    source, bench = folder / "problems.jsonl", folder / "bench.jsonl"
    rows = [{"uid": p.id, "question": p.problem, "solution": p.answer} for p in problems]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [
        {"id": "b-1", "problem": problems[1].problem, "answer": problems[1].answer},
        {"id": "b-2", "problem": "How many primes are below 20?", "answer": "8"},
    ]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return source, bench


def argv(model: Path, out: Path, files: tuple[Path, Path], *extra: str) -> list[str]:
    source, bench = files
    return [
        "--source", str(source), "--columns", "problem=question,answer=solution,id=uid",
        "--model", str(model), "--backend", "hf",
        "--method", "leap", "--n", str(PATHS), "--top_k", "1", "--T", "12",
        "--summary_max_tokens", "6", "--max_tokens", "30", "--forced_answer_tokens", "3",
        "--filter_correct", "false", "--filter_summaries", "false",
        "--filter_natural_end", "false",
        "--decontaminate", "true", "--decontam_benchmarks", str(bench),
        "--output_dir", str(out), *extra,
    ]  # fmt: skip


def rows_of(directory: Path) -> list[dict]:
    """The dataset as a user loads it (a fresh cache: datasets may reuse a stale one)."""
    import tempfile

    import datasets

    with tempfile.TemporaryDirectory() as cache:
        return list(datasets.load_dataset(str(directory), split="train", cache_dir=cache))


def data_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (directory / "data").glob("*.parquet")}


def canonical(rows: list[dict]) -> set[str]:
    return {json.dumps(r, sort_keys=True) for r in rows}


@pytest.fixture(scope="module")
def plain_run(tiny_model_dir, files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generate") / "plain"
    assert generate(argv(tiny_model_dir, out, files)) == 0
    return out


def test_dataset_loads_and_segments_rebuild_the_assistant_turn(plain_run, tiny_model_dir, files):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = rows_of(plain_run)
    stats = json.loads((plain_run / "stats.json").read_text())
    counts = stats["counts"]
    assert counts["problems"] == PROBLEMS and counts["paths"] == PROBLEMS * PATHS
    assert counts["kept"] + sum(counts["dropped"].values()) == counts["paths"]
    assert len(rows) == counts["kept"] > 0
    for row in rows:
        segments, messages = row["segments"], row["messages"]
        assert segments[0]["kind"] == "prompt"
        assert {s["kind"] for s in segments} <= {"prompt", "model", "peer"}
        assert "".join(s["text"] for s in segments[1:]) == messages[-1]["content"]
        assert messages[-1]["role"] == "assistant" and messages[0]["role"] == "user"
        # training re-renders the prompt messages: they must give the prompt the teacher saw
        rendered = tokenizer.apply_chat_template(
            messages[:-1], add_generation_prompt=True, tokenize=False
        )
        assert rendered == segments[0]["text"]
        assert row["problem"] in messages[0]["content"]
        assert any(s["kind"] == "peer" for s in segments)  # the peer filter was on
    card = (plain_run / "README.md").read_text()
    assert f"**{counts['kept']} rows kept**" in card
    assert f"**Source problems:** `{files[0].name}`" in card and str(files[0]) not in card
    # the protocol is recorded, so training trains the tag the data was made with
    from training.dataset import AUTO, recorded_protocol, resolve_summary_open

    assert stats["protocol"]["summary_triggers"] == list(load_protocol().summary_triggers)
    assert resolve_summary_open(AUTO, recorded_protocol(str(plain_run)), "x") == "<summarize>"
    # the leaked problem was never harvested, and the report says why
    leaked = synthetic_problems(SOURCE_PROBLEMS, 0)[1]
    assert leaked.id not in {r["id"] for r in rows}
    decon = stats["decontamination"]
    assert decon["checked"] == SOURCE_PROBLEMS and decon["dropped"] == 1
    (hit,) = decon["dropped_problems"]
    assert (hit["id"], hit["benchmark_id"]) == (leaked.id, "b-1")
    assert hit["ngram"] == " ".join(normalize_words(leaked.problem))
    assert leaked.id in card
    # the grader ran during harvest even though its filter was off
    traces = list(TraceFile(plain_run / "raw" / "shard-0-of-1" / "traces.jsonl"))
    assert len(traces) == PROBLEMS
    assert all(p.correct is not None for t in traces for p in t.paths)


def test_rerun_of_a_finished_harvest_changes_nothing(plain_run, tiny_model_dir, files):
    before = data_files(plain_run)
    assert generate(argv(tiny_model_dir, plain_run, files)) == 0
    assert data_files(plain_run) == before
    assert len((plain_run / "raw" / "shard-0-of-1" / "traces.jsonl").read_text().splitlines()) == (
        PROBLEMS
    )


def test_resuming_with_other_leap_settings_is_refused(plain_run, tiny_model_dir, files, capsys):
    before = data_files(plain_run)
    code = leapt(["generate", *argv(tiny_model_dir, plain_run, files, "--T", "13")])
    assert code == 2
    assert "'T'" in capsys.readouterr().err
    assert data_files(plain_run) == before


@pytest.mark.slow
def test_two_shards_merged_equal_the_plain_run(plain_run, tiny_model_dir, files, tmp_path):
    out = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        assert generate(argv(tiny_model_dir, out, files, "--shard", shard)) == 0
    # shard 1 holds only the decontaminated problem: an empty shard is still a valid dataset
    # (read with pyarrow: datasets refuses to load a split with no rows)
    shard_ids = [{r["id"] for r in read_dataset_dir(out / f"shard-{i}-of-2")[0]} for i in range(2)]
    assert not shard_ids[0] & shard_ids[1]
    merged = tmp_path / "merged"
    assert merge([str(out), "--output_dir", str(merged)]) == 0
    assert canonical(rows_of(merged)) == canonical(rows_of(plain_run))
    plain_counts = json.loads((plain_run / "stats.json").read_text())["counts"]
    assert json.loads((merged / "stats.json").read_text())["counts"] == plain_counts
    # giving a shard twice does not duplicate its rows
    again = tmp_path / "again"
    shard0 = str(out / "shard-0-of-2")
    assert merge([shard0, shard0, str(out / "shard-1-of-2"), "--output_dir", str(again)]) == 0
    assert canonical(rows_of(again)) == canonical(rows_of(plain_run))


@pytest.mark.slow
def test_killed_run_with_torn_last_line_resumes_to_the_same_dataset(
    plain_run, tiny_model_dir, files, tmp_path
):
    out = tmp_path / "killed"
    traces = out / "raw" / "shard-0-of-1" / "traces.jsonl"
    cmd = [sys.executable, "-m", "leapt.cli", "generate"]
    cmd += argv(tiny_model_dir, out, files, "--concurrent_problems", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (traces.exists() and traces.read_text().count("\n") >= 1):
            assert proc.poll() is None, "generate exited before it could be killed"
            assert time.monotonic() < deadline, "no problem finished in time"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    lines = traces.read_text().splitlines()
    assert 1 <= len(lines) < PROBLEMS
    with open(traces, "a") as fh:  # a write cut off mid-line
        fh.write(lines[0][: len(lines[0]) // 2])

    assert generate(argv(tiny_model_dir, out, files)) == 0
    ids = [json.loads(line)["id"] for line in traces.read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == PROBLEMS
    assert canonical(rows_of(out)) == canonical(rows_of(plain_run))


def test_column_mismatch_fails_before_the_teacher_loads(tmp_path, capsys):
    source = tmp_path / "problems.jsonl"
    source.write_text('{"question": "What is 1+1?", "solution": "2"}\n')
    not_a_model = tmp_path / "config-only-model-dir"  # loading it would fail differently
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")
    code = leapt(
        ["generate", "--source", str(source), "--columns", "problem=question",
         "--model", str(not_a_model), "--decontaminate", "false",
         "--output_dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "'answer'" in err and str(source) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "raw").exists()


@pytest.mark.parametrize("spec", ["2/2", "1", "a/b", "0/0"])
def test_bad_shard_spec_is_a_config_error(spec, tmp_path, capsys):
    assert leapt(["generate", "--shard", spec, "--output_dir", str(tmp_path)]) == 2
    assert "'shard'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "config", sorted((Path(__file__).parent.parent / "configs" / "generate").glob("*.yaml"))
)
def test_shipped_configs_parse(config):
    from data_gen.args import GenerateArguments
    from inference.args import LeapArguments, ModelArguments
    from leapt.config import parse_config

    args, _, leap_args = parse_config(
        [GenerateArguments, ModelArguments, LeapArguments], ["--config", str(config)], "t", "t"
    )
    assert args.output_dir and leap_args.method in ("leap", "independent")


def test_shards_partition_problems_by_id_alone():
    from data_gen.harvest import shard_of

    ids = [f"aime-{year}-{k}" for year in range(1984, 2024) for k in range(1, 16)]
    shards = {i: shard_of(i, 8) for i in ids}
    assert set(shards.values()) == set(range(8))  # every shard gets work
    assert max(list(shards.values()).count(s) for s in range(8)) < 2 * len(ids) / 8
    # the same in another process (Slurm array tasks), whatever its hash seed
    code = "from data_gen.harvest import shard_of; import sys; print(shard_of(sys.argv[1], 8))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code, ids[7]], env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == shards[ids[7]]


def test_independent_control_data_has_no_leap_blocks(tiny_model_dir, files, tmp_path):
    """The "+SFT" control: plain sampling, so rows hold only the prompt and model text."""
    out = tmp_path / "control"
    extra = ["--method", "independent", "--filter_peer_exchange", "false", "--limit", "2"]
    assert generate(argv(tiny_model_dir, out, files, *extra)) == 0
    rows = rows_of(out)
    assert rows and {r["method"] for r in rows} == {"independent"}
    for row in rows:
        assert [s["kind"] for s in row["segments"]][:2] == ["prompt", "model"]
        assert "peer" not in {s["kind"] for s in row["segments"]}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["counts"]["rule_failures"]["peer_exchange"] == stats["counts"]["paths"]


def test_pushing_a_single_shard_is_refused(tmp_path, capsys):
    code = leapt(
        ["generate", "--shard", "0/2", "--push_to_hub", "me/ds", "--output_dir", str(tmp_path)]
    )
    assert code == 2
    assert "leapt generate merge" in capsys.readouterr().err

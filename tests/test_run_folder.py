"""A run folder is only ever "the same run, continued": other inputs, a second writer or a
corrupt line are refused in one line (exit 2) before a model loads, the folder unchanged.

Real runs of the tiny model on the hf backend, in this process (the real-process cases,
two writers at once and a killed holder, are in ``test_run_folder_processes.py``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from pathlib import Path

import pytest

from inference.trace import TraceFile, read_traces, scan_traces
from leapt.cli import main as leapt
from leapt.run_lock import LOCK_NAME, FolderLock
from leapt.run_manifest import MANIFEST_NAME

SMALL = [
    "--n", "2", "--top_k", "1", "--T", "6", "--max_tokens", "12",
    "--summary_max_tokens", "3", "--forced_answer_tokens", "2", "--seed", "1",
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def write_problems(path: Path, texts: list[str]) -> Path:
    rows = [{"id": f"p{i}", "problem": t, "answer": str(i)} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def problems(tmp_path) -> Path:
    return write_problems(tmp_path / "problems.jsonl", ["Compute 2 + 3.", "Compute 4 + 4."])


def infer(model: Path, out: Path, source: Path, *extra: str) -> int:
    argv = ["infer", "--model", str(model), "--output_dir", str(out), "--source", str(source)]
    return leapt([*argv, *SMALL, *extra])


def refused(capsys, *words: str) -> str:
    """The one error line of a refused command, checked to name each of ``words``."""
    err = capsys.readouterr().err.strip().splitlines()
    line = next(line for line in err if ": error: " in line)
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def finished(tmp_path, tiny_model_dir, problems, capsys) -> Path:
    out = tmp_path / "run"
    assert infer(tiny_model_dir, out, problems) == 0
    capsys.readouterr()
    return out


def test_the_manifest_records_what_made_the_run(finished, tiny_model_dir, problems):
    manifest = json.loads((finished / MANIFEST_NAME).read_text())
    assert manifest["model"]["path"] == str(tiny_model_dir.resolve())
    assert manifest["model"]["config"] and manifest["model"]["weights"]
    assert (manifest["dtype"], manifest["backend"], manifest["max_model_len"]) == (
        "auto",
        "hf",
        None,
    )
    assert manifest["source"] == str(problems.resolve()) and manifest["settings"]["T"] == 6
    assert sorted(manifest["problems"]) == ["p0", "p1"] and len(manifest["protocol"]) == 16
    assert not (finished / LOCK_NAME).exists(), "a finished run leaves no lock behind"


def test_a_rerun_with_the_same_inputs_changes_nothing(finished, tiny_model_dir, problems):
    before = snapshot(finished)
    assert infer(tiny_model_dir, finished, problems) == 0
    after = snapshot(finished)
    assert {k: v for k, v in after.items() if k != "summary.json"} == {
        k: v for k, v in before.items() if k != "summary.json"
    }


def test_another_model_is_refused_naming_both_paths(
    finished, tiny_model_dir, problems, tmp_path, capsys
):
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    before = snapshot(finished)
    assert infer(other, finished, problems) == 2
    refused(capsys, "model.path", str(tiny_model_dir.resolve()), str(other.resolve()))
    assert snapshot(finished) == before


def test_a_model_folder_changed_in_place_is_refused(
    finished, tiny_model_dir, problems, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    out = tmp_path / "run2"
    assert infer(model, out, problems, "--limit", "1") == 0
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "rope_theta": 12345.0}))
    before = snapshot(out)
    assert infer(model, out, problems) == 2
    refused(capsys, "model.config")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("flags", "key", "old", "new"),
    [
        (["--dtype", "float32"], "dtype", "'auto'", "'float32'"),
        (["--max_model_len", "4096"], "max_model_len", "None", "4096"),
        (["--T", "7"], "settings.T", "6", "7"),
        (["--router", "clustered"], "settings.router", "'dispersed'", "'clustered'"),
    ],
)
def test_other_engine_inputs_are_refused_naming_the_key_and_both_values(
    finished, tiny_model_dir, problems, capsys, flags, key, old, new
):
    before = snapshot(finished)
    assert infer(tiny_model_dir, finished, problems, *flags) == 2
    refused(capsys, f"{key} {old}, not {new}")
    assert snapshot(finished) == before


def test_an_edited_protocol_is_refused_though_its_path_is_the_same(
    tmp_path, tiny_model_dir, problems, capsys
):
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text("reflection_cue: ' Let me weigh what my peers found.'\n")
    out = tmp_path / "run"
    assert infer(tiny_model_dir, out, problems, "--protocol", str(protocol)) == 0
    protocol.write_text("reflection_cue: ' Now I compare with my peers.'\n")
    before = snapshot(out)
    assert infer(tiny_model_dir, out, problems, "--protocol", str(protocol)) == 2
    refused(capsys, "protocol")
    assert snapshot(out) == before


def test_another_problem_file_with_the_same_ids_is_refused_naming_the_id(
    finished, tiny_model_dir, problems, tmp_path, capsys
):
    edited = write_problems(tmp_path / "problems.jsonl", ["Compute 2 + 3.", "Compute 9 + 9."])
    assert edited == problems  # same file, same ids, one text edited
    before = snapshot(finished)
    assert infer(tiny_model_dir, finished, edited) == 2
    refused(capsys, "'p1'")
    assert snapshot(finished) == before
    moved = tmp_path / "elsewhere.jsonl"
    shutil.copy(problems, moved)
    assert infer(tiny_model_dir, finished, moved) == 2
    refused(capsys, "source", str(moved.resolve()))


def test_more_problems_of_the_same_source_continue_the_run(tmp_path, tiny_model_dir, problems):
    out = tmp_path / "run"
    assert infer(tiny_model_dir, out, problems, "--limit", "1") == 0
    first = (out / "traces.jsonl").read_bytes()
    assert infer(tiny_model_dir, out, problems) == 0
    assert (out / "traces.jsonl").read_bytes().startswith(first)
    assert sorted(json.loads((out / MANIFEST_NAME).read_text())["problems"]) == ["p0", "p1"]


def test_a_folder_of_the_previous_version_resumes_and_still_refuses_what_it_records(
    tmp_path, tiny_model_dir, problems, capsys, caplog
):
    out = tmp_path / "old"
    assert infer(tiny_model_dir, out, problems, "--limit", "1") == 0
    (out / MANIFEST_NAME).unlink()  # what an older leapt left: traces only
    before = snapshot(out)
    # what its traces record is still checked: the model, the settings, the problem texts
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    assert infer(other, out, problems) == 2
    refused(capsys, "model.path")
    assert infer(tiny_model_dir, out, problems, "--T", "9") == 2
    refused(capsys, "settings.T 6, not 9")
    edited = write_problems(tmp_path / "edited.jsonl", ["Compute 7 + 1.", "Compute 4 + 4."])
    assert infer(tiny_model_dir, out, edited) == 2
    refused(capsys, "'p0'")
    assert snapshot(out) == before
    # the same settings continue it, with a warning naming what could not be checked
    with caplog.at_level(logging.WARNING):
        assert infer(tiny_model_dir, out, problems) == 0
    assert "dtype, max_model_len, protocol" in caplog.text
    assert [t.id for t in read_traces(out / "traces.jsonl")] == ["p0", "p1"]
    assert json.loads((out / MANIFEST_NAME).read_text())["dtype"] == "auto"


def test_a_held_folder_is_refused_naming_the_holder(finished, tiny_model_dir, problems, capsys):
    before = snapshot(finished)
    with FolderLock(finished):  # flock: another open file of this process conflicts too
        assert infer(tiny_model_dir, finished, problems, "--T", "9") == 2
        refused(capsys, f"PID {os.getpid()}", socket.gethostname(), "in use")
    assert snapshot(finished) == before


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(
    finished, tiny_model_dir, problems, caplog
):
    dead = {
        "pid": 2**22 + 7,
        "host": socket.gethostname(),
        "command": "leapt infer",
        "started": "x",
    }
    (finished / LOCK_NAME).write_text(json.dumps(dead))
    with caplog.at_level(logging.WARNING):
        assert infer(tiny_model_dir, finished, problems) == 0
    assert f"taking over the lock of PID {dead['pid']}" in caplog.text
    assert not (finished / LOCK_NAME).exists()


def test_a_refused_run_into_a_new_folder_leaves_no_folder(tmp_path, tiny_model_dir, problems):
    out = tmp_path / "a" / "b"
    with FolderLock(tmp_path / "a" / "b"):
        pass
    assert not (tmp_path / "a").exists(), "folders made for the lock go with it"
    (tmp_path / "a").write_text("")
    assert infer(tiny_model_dir, out, problems) == 2


def test_a_corrupt_middle_line_stops_the_run_naming_file_and_line(
    finished, tiny_model_dir, problems, capsys
):
    traces = finished / "traces.jsonl"
    lines = traces.read_text().splitlines(keepends=True)
    traces.write_text(lines[0] + '{"id": "p9", "paths": [tru\n' + "".join(lines[1:]))
    before = snapshot(finished)
    assert infer(tiny_model_dir, finished, problems) == 2
    refused(capsys, str(traces), "line 2", "delete line 2")
    assert snapshot(finished) == before
    # readers skip it and say how many lines they skipped
    assert leapt(["report", str(finished)]) == 0
    assert "skipped 1 corrupt line" in capsys.readouterr().err
    assert leapt(["view", str(finished), "--output", str(finished.parent / "v.html")]) == 0
    assert "skipped 1 corrupt line" in capsys.readouterr().err


def test_a_torn_last_line_is_still_cut_silently(tmp_path):
    path = tmp_path / "traces.jsonl"
    good = json.dumps({"id": "a", "problem": "x", "answer": None}) + "\n"
    path.write_text(good * 3 + '{"id": "b", "pro')
    assert [n for n, _ in scan_traces(path)] == [1, 2, 3]
    assert TraceFile(path).done_ids() == {"a"}
    assert path.read_text() == good * 3
    path.write_text(good + '{"id": "c"\n')  # terminated but unparsable: also what a kill leaves
    TraceFile(path)
    assert path.read_text() == good


def test_a_long_torn_last_line_is_cut_reading_backwards_in_chunks(tmp_path):
    path = tmp_path / "traces.jsonl"
    line = json.dumps({"id": "a", "problem": "x" * 300_000, "answer": None}) + "\n"
    path.write_text(line * 2 + line[:-1][:200_000] + "\n")  # terminated, cut mid-record
    TraceFile(path)
    assert path.read_text() == line * 2
    path.write_text(line + line[:150_000])
    TraceFile(path)
    assert path.read_text() == line


@pytest.mark.parametrize(
    "bad", ["[1, 2]", '{"problem": "no id"}', '{"id": "x", "not_a_field": 1}', "\udcff garbage"]
)
def test_a_middle_line_that_is_not_a_trace_is_refused_naming_its_number(tmp_path, bad):
    from inference.trace import CorruptTraceLine

    path = tmp_path / "traces.jsonl"
    good = json.dumps({"id": "a", "problem": "x", "answer": None}) + "\n"
    path.write_text(good + good + bad + "\n" + good, errors="surrogateescape")
    before = path.read_bytes()
    with pytest.raises(CorruptTraceLine, match=f"{path} line 3 "):
        TraceFile(path).done_ids()
    assert path.read_bytes() == before


def test_eval_refuses_another_dtype_per_method_folder(tmp_path, tiny_model_dir, problems, capsys):
    out = tmp_path / "eval"
    argv = [
        "eval", "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--benchmarks", "aime24", "--local_files", f"aime24={problems}",
        "--methods", "independent", "leap", "--report", "false", *SMALL,
    ]  # fmt: skip
    assert leapt(argv) == 0
    assert (out / "aime24" / "leap" / MANIFEST_NAME).is_file()
    before = snapshot(out)
    assert leapt([*argv, "--dtype", "float32"]) == 2
    refused(capsys, str(out / "aime24" / "independent"), "dtype")
    edited = write_problems(tmp_path / "edited.jsonl", ["Compute 2 + 3.", "Compute 5 + 5."])
    assert leapt([*argv, "--local_files", f"aime24={edited}"]) == 2
    refused(capsys, "source")
    shutil.copy(edited, problems)
    assert leapt(argv) == 2
    refused(capsys, "'p1'")
    assert snapshot(out) == before


def test_generate_refuses_other_filters_or_teacher(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "gen"
    argv = [
        "generate", "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--source", "synthetic", "--num_synthetic", "2", "--decontaminate", "false",
        "--filter_correct", "false", "--filter_natural_end", "false", *SMALL,
    ]  # fmt: skip
    assert leapt(argv) == 0
    raw = out / "raw" / "shard-0-of-1"
    assert json.loads((raw / MANIFEST_NAME).read_text())["extra"]["shard"] == "0/1"
    before = snapshot(out)
    assert leapt([*argv, "--filter_duplicates", "false"]) == 2
    refused(capsys, "extra.filters.duplicates True, not False")
    assert leapt([*argv, "--dtype", "float32"]) == 2
    refused(capsys, "dtype")
    assert snapshot(out) == before


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> Path:
    from tests.test_training_data import write_sft_dataset

    return write_sft_dataset(tmp_path_factory.mktemp("sft-data"), n=8)


def test_train_refuses_another_dataset_or_base_model(tmp_path, tiny_model_dir, sft_data, capsys):
    from tests.training_runs import smoke_argv

    out = tmp_path / "student"
    steps = ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1"]
    assert leapt(["train", *smoke_argv(tiny_model_dir, sft_data, out, *steps)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["dataset"]["path"] == str(sft_data.resolve())
    (out / "leapt_training.json").unlink()  # as if it had stopped after its last checkpoint
    before = snapshot(out)
    other_data = tmp_path / "data2"
    shutil.copytree(sft_data, other_data)
    assert leapt(["train", *smoke_argv(tiny_model_dir, other_data, out, *steps)]) == 2
    refused(capsys, "dataset.path", str(other_data.resolve()))
    data_file = sft_data / "train-00000.jsonl"
    original = data_file.read_bytes()
    data_file.write_bytes(original + original.splitlines(keepends=True)[0])  # same path, more rows
    assert leapt(["train", *smoke_argv(tiny_model_dir, sft_data, out, *steps)]) == 2
    refused(capsys, "dataset.files")
    data_file.write_bytes(original)
    other_model = tmp_path / "base2"
    shutil.copytree(tiny_model_dir, other_model)
    assert leapt(["train", *smoke_argv(other_model, sft_data, out, *steps)]) == 2
    refused(capsys, "base_model.path")
    with FolderLock(out):
        assert leapt(["train", *smoke_argv(tiny_model_dir, sft_data, out, *steps)]) == 2
        refused(capsys, "in use", f"PID {os.getpid()}")
    assert snapshot(out) == before


def test_a_hub_model_is_named_by_id_and_the_revision_the_cache_resolved(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from leapt.config import ConfigError
    from leapt.run_manifest import check_manifest, model_identity

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert model_identity("org/model") == {"id": "org/model"}  # not cached: revision unknown
    refs = tmp_path / "models--org--model" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    first = {"model": model_identity("org/model")}
    assert first == {"model": {"id": "org/model", "revision": "a" * 40}}
    check_manifest(tmp_path, {"model": {"id": "org/model"}}, first)  # unknown is not different
    (refs / "main").write_text("b" * 40)  # the Hub moved on and the cache followed
    with pytest.raises(ConfigError, match="model.revision 'aaaa"):
        check_manifest(tmp_path, first, {"model": model_identity("org/model")})
    assert model_identity("org/model", revision="v1") == {"id": "org/model", "revision": "v1"}


def test_a_hub_id_and_a_local_folder_are_not_the_same_model(tmp_path, tiny_model_dir):
    """The two records share no key; unknown-on-one-side must not read as "the same"."""
    from leapt.config import ConfigError
    from leapt.run_manifest import check_manifest, model_identity

    local = model_identity(str(tiny_model_dir))
    with pytest.raises(ConfigError, match="was made with model .*'id': 'Qwen/Qwen2.5-0.5B'"):
        check_manifest(tmp_path, {"model": {"id": "Qwen/Qwen2.5-0.5B"}}, {"model": local})
    with pytest.raises(ConfigError, match="key 'model'"):
        check_manifest(tmp_path, {"model": local}, {"model": {"id": "Qwen/Qwen2.5-0.5B"}})
    check_manifest(tmp_path, {"model": {"id": "m"}}, {"model": {"id": "m", "revision": "abc"}})


def test_infer_refuses_a_served_folder_and_serve_an_infer_folder(
    finished, tmp_path, tiny_model_dir, problems, capsys
):
    from inference.args import LeapArguments, ModelArguments
    from leapt.config import ConfigError
    from serving.runs import ServedRun, served_manifest

    served = tmp_path / "served"
    run = ServedRun(
        served, served_manifest(ModelArguments(model=str(tiny_model_dir)), LeapArguments())
    )
    run.record()
    run.close()
    before = snapshot(served)
    assert infer(tiny_model_dir, served, problems) == 2
    refused(capsys, "served True, not False", "key 'served'")
    assert snapshot(served) == before
    (finished / "traces.jsonl").rename(finished / "kept.jsonl")  # only the manifest is left
    kept = snapshot(finished)
    with pytest.raises(ConfigError, match="served False, not True"):
        ServedRun(
            finished, served_manifest(ModelArguments(model=str(tiny_model_dir)), LeapArguments())
        )
    assert snapshot(finished) == kept


@pytest.mark.parametrize("foreign", ["merge", "readme", "other"])
def test_generate_refuses_a_dataset_folder_it_did_not_write(
    tmp_path, tiny_model_dir, capsys, foreign
):
    out = tmp_path / "gen"
    out.mkdir()
    if foreign == "merge":  # an earlier `leapt generate merge` output
        (out / "data").mkdir()
        (out / "data" / "train-0.parquet").write_bytes(b"rows")
        (out / "stats.json").write_text(
            '{"merge": {"inputs": 2}, "data_file": "data/train-0.parquet"}'
        )
    elif foreign == "readme":
        (out / "README.md").write_text("# a model card of someone else's\n")
    else:
        (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    argv = [
        "generate", "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--source", "synthetic", "--num_synthetic", "2", "--decontaminate", "false", *SMALL,
    ]  # fmt: skip
    assert leapt(argv) == 2
    refused(capsys, str(out), "did not write")
    assert snapshot(out) == before


def test_a_folder_inside_one_another_process_holds_is_refused(
    tmp_path, tiny_model_dir, problems, capsys
):
    """`leapt infer` into an eval's method folder while the eval runs (it holds the root)."""
    import subprocess
    import sys

    root = tmp_path / "eval"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom leapt.run_lock import FolderLock\n"
         f"FolderLock({str(root)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        inner = root / "aime24" / "leap"
        assert infer(tiny_model_dir, inner, problems) == 2
        refused(capsys, f"{inner.resolve()} lies inside {root.resolve()}", f"PID {holder.pid}")
        assert sorted(p.name for p in root.iterdir()) == [LOCK_NAME]  # nothing made inside
    finally:
        holder.kill()
        holder.wait()
    assert infer(tiny_model_dir, root / "aime24" / "leap", problems) == 0  # free once it ended


def test_resuming_a_large_traces_file_holds_one_line_in_memory(tmp_path):
    """A paper-size unsharded harvest's traces.jsonl is gigabytes: the done ids, the repair of a
    torn last line and the scan stream it (here 40 MB must not cost 40 MB)."""
    import tracemalloc

    line = {"id": "", "problem": "p", "answer": "1", "method": "leap", "config": {}}
    path = tmp_path / "traces.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(200):
            fh.write(json.dumps({**line, "id": f"p{i}", "problem": "x" * 200_000}) + "\n")
        fh.write('{"id": "torn", "problem": "' + "y" * 200_000)  # a killed writer's last line
    size = path.stat().st_size
    tracemalloc.start()
    try:
        done = TraceFile(path).done_ids()
        ids = [t.id for _, t in scan_traces(path)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done == {f"p{i}" for i in range(200)} and len(ids) == 200
    assert path.stat().st_size < size  # the torn line was cut
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"

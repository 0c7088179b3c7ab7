"""Bad input at every command: one line naming the key or file, exit 2, no model, outputs untouched.

Every case runs through the real ``leapt`` entry point in one child interpreter
in which loading any model (transformers ``from_pretrained`` of a model class,
or a vLLM engine) is recorded, so "fails before a model loads" is observed,
not assumed.  All cases point at output folders that already hold a previous
run's files (and at inputs: datasets, traces, model folders), which must come
out byte-identical.  Run them with
``python -m pytest -q tests/test_bad_input.py``; the table is :func:`cases`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.processes import free_port

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "data" / "aime_2024.json"
SMOKE_RECIPE = REPO / "configs" / "training" / "smoke_cpu.yaml"

# Runs each argv through `leapt` and reports, per case, the exit code, stderr and
# the models whose loading was attempted.
PROBE = r"""
import contextlib, io, json, sys
import transformers.modeling_utils as mu
from leapt.cli import main

loads = []
original = mu.PreTrainedModel.from_pretrained.__func__

def record(cls, *args, **kwargs):
    loads.append(cls.__name__)
    return original(cls, *args, **kwargs)

mu.PreTrainedModel.from_pretrained = classmethod(record)
out = []
for argv in json.loads(sys.argv[1]):
    loads.clear()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    vllm_loaded = "vllm" in sys.modules
    out.append([rc, err.getvalue(), list(loads) + (["vllm"] if vllm_loaded else [])])
print(json.dumps(out))
"""


def previous_outputs(root: Path) -> dict[str, Path]:
    """Output folders of every stage, each holding a finished earlier run's files."""
    trace = {"id": "old-1", "problem": "1+1?", "answer": "2", "method": "leap", "config": {}}
    dirs = {
        name: root / name
        for name in ("infer", "eval", "generate", "train", "report", "done", "model", "secret")
    }
    files = {
        "infer/traces.jsonl": json.dumps(trace) + "\n",
        "infer/summary.json": '{"problems": 1}',
        "eval/aime24/leap/traces.jsonl": json.dumps(trace) + "\n",
        "eval/results.json": '{"benchmarks": {}}',
        "generate/stats.json": '{"counts": {}}',
        "generate/raw/shard-0-of-1/traces.jsonl": json.dumps(trace) + "\n",
        "train/checkpoint-2/trainer_state.json": '{"global_step": 2}',
        "train/checkpoint-2/leapt_checkpoint_complete": "step 2\n",
        "report/results.json": '{"benchmarks": {}}',
        "report/leap/traces.jsonl": json.dumps(trace) + "\n",
        "done/leapt_training.json": '{"kind": "full"}\n',  # a finished student
        "model/config.json": "{}",  # a checkpoint folder, with a credential beside it below
        "model/model.safetensors": "not really weights",
        "secret/config.json": "{}",
        "secret/model.safetensors": "not really weights",
        "secret/.env": "HF_TOKEN=hf_not_a_real_token\n",
        "a_file.txt": "someone's notes\n",
        "empty_model/.keep": "",
        "bad_model/config.json": "{not json",
        "list_model/config.json": "[1, 2]",
        "no_traces/notes.md": "nothing here\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "empty_model" / ".keep").unlink()
    return dirs


def shard_datasets(root: Path) -> dict[str, Path]:
    """Two shard datasets of one 2-shard run, written by `leapt generate`'s own writer."""
    from tests.test_data_gen_output import shard_dir, trace

    return {
        "s0": shard_dir(root, "shard-0-of-2", [trace("a", 1)], "0/2", []),
        "s1": shard_dir(root, "shard-1-of-2", [trace("b", 1)], "1/2", []),
    }


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def cases(
    tmp: Path, out: dict[str, Path], tiny_model: Path, shards: dict[str, Path]
) -> list[tuple[list[str], str]]:
    """(argv, text the one error line must contain) for every stage."""
    root = out["infer"].parent
    good = write(tmp / "good.jsonl", json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    no_column = write(
        tmp / "questions.jsonl", json.dumps({"question": "1+1?", "answer": "2"}) + "\n"
    )
    twice = write(
        tmp / "twice.jsonl", (json.dumps({"id": "x", "problem": "1?", "answer": "1"}) + "\n") * 2
    )
    empty = write(tmp / "empty.jsonl", "")
    broken = write(tmp / "broken.json", "{not json")
    unknown_key = write(tmp / "typo.yaml", "temprature: 0.5\n")
    bad_yaml = write(tmp / "bad.yaml", "n: 4\nT: [32, 64\nmethod: leap\n")
    list_yaml = write(tmp / "list.yaml", "- n\n- T\n")
    no_decontam = write(tmp / "nodecon.yaml", "decontam_benchmarks: []\n")
    no_segments = write(
        tmp / "chat.jsonl", json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
    )
    absent = tmp / "absent.jsonl"
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    a_file = root / "a_file.txt"
    in_file = a_file / "sub"
    empty_model, bad_model = root / "empty_model", root / "bad_model"
    list_model = root / "list_model"
    old_traces = out["infer"] / "traces.jsonl"

    infer = ["infer", "--output_dir", str(out["infer"]), "--source", str(good)]
    evaluate = ["eval", "--output_dir", str(out["eval"]), "--local_files", f"aime24={FIXTURE}"]
    generate = ["generate", "--output_dir", str(out["generate"])]
    merge = ["generate", "merge", str(shards["s0"]), str(shards["s1"])]
    train = ["train", "--config", str(SMOKE_RECIPE), "--output_dir", str(out["train"])]
    train += ["--model_name_or_path", str(tiny_model)]
    publish = ["publish", str(out["model"]), "--repo_id", "me/tiny", "--dry_run", "true"]
    model_cases = [
        (["--model", str(tmp / "no-such-model")], "no-such-model"),
        (["--model", str(empty_model)], "holds no config.json"),
        (["--model", str(bad_model)], "bad_model/config.json"),
        (["--model", str(list_model)], "list_model/config.json"),
        (["--model", "bad//id"], "'model'"),
        (["--model", "org/never-downloaded"], "'org/never-downloaded'"),
        (["--dtype", "float99"], "'dtype'"),
        (["--max_model_len", "0"], "'max_model_len'"),
        (["--T", "200"], "'T'"),
        (["--sampling_top_k", "0"], "'sampling_top_k'"),
        (["--sampling_top_k", "-2"], "'sampling_top_k'"),
        (["--gpu_memory_utilization", "0"], "'gpu_memory_utilization'"),
        (["--n", "abc"], "--n"),
        (["--config", str(bad_yaml)], "bad.yaml:3"),
        (["--output_dir", str(a_file)], "'output_dir'"),
        (["--output_dir", str(in_file)], "'output_dir'"),
    ]
    return [
        # ---- leapt infer
        ([*infer, "--temperature", "-1"], "'temperature'"),
        ([*infer, "--top_p", "0"], "'top_p'"),
        ([*infer, "--top_p", "1.5"], "'top_p'"),
        ([*infer, "--min_p", "1"], "'min_p'"),
        ([*infer, "--method", "telepathy"], "'method'"),
        ([*infer, "--router", "nearest"], "'router'"),
        ([*infer, "--n", "4", "--top_k", "4"], "'top_k'"),
        ([*infer, "--top_k", "0"], "'top_k'"),
        ([*infer, "--T", "0"], "'T'"),
        ([*infer, "--config", str(unknown_key)], "'temprature'"),
        ([*infer, "--config", str(tmp / "no-config.yaml")], "no-config.yaml"),
        ([*infer, "--config", str(list_yaml)], "list.yaml"),
        ([*infer, "--source", str(no_column)], "column 'problem'"),
        ([*infer, "--source", str(broken)], str(broken)),
        ([*infer, "--source", str(absent)], str(absent)),
        ([*infer, "--source", str(empty)], "holds no problems"),
        ([*infer, "--source", str(twice)], "appears twice"),
        ([*infer, "--source", str(tmp)], str(tmp)),
        ([*infer, "--source", "builtin:hard"], "'source'"),
        ([*infer, "--source", "synthetic", "--num_synthetic", "0"], "'num_synthetic'"),
        ([*infer, "--source", "synthetic", "--synthetic_ops", "3"], "'synthetic_ops'"),
        ([*infer, "--columns", "question=problem"], "'question'"),
        ([*infer, "--columns", "oops"], "--columns"),
        ([*infer, "--protocol", str(tmp / "no-proto.yaml")], "no-proto.yaml"),
        (
            [*infer, "--backend", "openai", "--model", str(tiny_model), "--api_base", unreachable],
            "'api_base'",
        ),
        ([*infer, "--backend", "tpu"], "'backend'"),
        ([*infer, "--task", "essay"], "'task'"),
        ([*infer, "--announce", "maybe"], "'announce'"),
        ([*infer, "--limit", "0"], "'limit'"),
        ([*infer, "--concurrent_problems", "0"], "'concurrent_problems'"),
        ([*infer, "--hf_batch_size", "0"], "'hf_batch_size'"),
        ([*infer, "--tensor_parallel_size", "0"], "'tensor_parallel_size'"),
        ([*infer, "--summary_max_tokens", "0"], "'summary_max_tokens'"),
        ([*infer, "--max_tokens", "0"], "'max_tokens'"),
        ([*infer, "--moa_layers", "0"], "'moa_layers'"),
        ([*infer, "--forced_answer_tokens", "-1"], "'forced_answer_tokens'"),
        ([*infer, "--request_timeout", "0"], "'request_timeout'"),
        ([*infer, "--request_timeout", "-5"], "'request_timeout'"),
        ([*infer, "--gpu_memory_utilization", "1.5"], "'gpu_memory_utilization'"),
        ([*infer, "--bogus", "1"], "'--bogus'"),
        ([*infer, "--temperature", "warm"], "--temperature"),
        ([*infer, "--problems", str(good)], "--source"),  # old and new spelling at once
        *[([*infer, *extra], needle) for extra, needle in model_cases],
        # ---- leapt eval
        ([*evaluate, "--benchmarks", "mmlu"], "'benchmarks'"),
        ([*evaluate, "--methods", "telepathy"], "'methods'"),
        ([*evaluate, "--local_files", f"aime24={absent}"], str(absent)),
        ([*evaluate, "--local_files", f"aime24={FIXTURE}", f"aime25={absent}"], str(absent)),
        ([*evaluate, "--local_files", f"aime24={FIXTURE}", f"mmlu={FIXTURE}"], "'local_files'"),
        ([*evaluate, "--local_files", "aime24"], "--local_files"),
        ([*evaluate, "--local_files", f"aime24={no_column}"], "column 'problem'"),
        ([*evaluate, "--local_files", f"aime24={empty}"], "holds no problems"),
        ([*evaluate, "--benchmarks", "aimo25"], "'local_files'"),
        ([*evaluate, "--temperature", "-0.1"], "'temperature'"),
        ([*evaluate, "--n", "2", "--top_k", "2"], "'top_k'"),
        ([*evaluate, "--config", str(unknown_key)], "'temprature'"),
        ([*evaluate, "--n_per_benchmark", "aime24=0"], "'n_per_benchmark'"),
        ([*evaluate, "--n_per_benchmark", "mmlu=4"], "'n_per_benchmark'"),
        ([*evaluate, "--seeds", "1", "1"], "'seeds'"),
        ([*evaluate, "--seeds", "-1"], "'seeds'"),
        ([*evaluate, "--limit", "0"], "'limit'"),
        ([*evaluate, "--columns", "problem=question"], "'--columns'"),
        ([*evaluate, "--methods"], "--methods"),
        *[([*evaluate, *extra], needle) for extra, needle in model_cases],
        # ---- leapt generate
        ([*generate, "--shard", "3/2"], "'shard'"),
        ([*generate, "--shard", "abc"], "'shard'"),
        ([*generate, "--source", str(absent)], str(absent)),
        ([*generate, "--source", str(empty)], "holds no problems"),
        ([*generate, "--num_synthetic", "0"], "'num_synthetic'"),
        ([*generate, "--decontam_ngram", "0"], "'decontam_ngram'"),
        ([*generate, "--decontam_benchmarks", "mmlu"], "'decontam_benchmarks'"),
        ([*generate, "--config", str(no_decontam)], "'decontam_benchmarks'"),
        ([*generate, "--local_files", f"mmlu={FIXTURE}"], "'local_files'"),
        ([*generate, "--min_p", "-0.5"], "'min_p'"),
        ([*generate, "--sft_prompt", "teacherish"], "'sft_prompt'"),
        ([*generate, "--max_paths_per_problem", "0"], "'max_paths_per_problem'"),
        ([*generate, "--filter_summary_max_tokens", "0"], "'filter_summary_max_tokens'"),
        ([*generate, "--push_to_hub", "bad//id"], "'push_to_hub'"),
        ([*generate, "--push_to_hub", "me/ds"], "token"),
        ([*generate, "--push_to_hub", "me/ds", "--shard", "0/2"], "'push_to_hub'"),
        ([*generate, "--config", str(unknown_key)], "'temprature'"),
        *[([*generate, *extra], needle) for extra, needle in model_cases],
        # ---- leapt generate merge
        (
            ["generate", "merge", str(tmp / "no-shards"), "--output_dir", str(tmp / "m")],
            "no-shards",
        ),
        (["generate", "merge", str(out["generate"])], "--output_dir"),
        (["generate", "merge", "--output_dir", str(tmp / "m")], "dataset directory"),
        ([*merge, "--output_dir", str(shards["s0"])], "one of the inputs"),
        ([*merge, "--output_dir", str(out["generate"])], "already holds files"),
        ([*merge, "--output_dir", str(out["infer"])], "already holds files"),
        ([*merge[:3], "--output_dir", str(shards["s1"])], "already holds files"),
        ([*merge, "--output_dir", str(a_file)], "'output_dir'"),
        ([*merge, "--output_dir", str(in_file)], "'output_dir'"),
        ([*merge[:3], "--output_dir", str(tmp / "m")], "incomplete shard set"),
        ([*merge, "--output_dir", str(tmp / "m"), "--push_to_hub", "bad//id"], "'push_to_hub'"),
        ([*merge, "--output_dir", str(tmp / "m"), "--push_to_hub", "me/ds"], "token"),
        ([*merge, "--output_dir", str(tmp / "m"), "--bogus"], "'--bogus'"),
        ([*merge, str(a_file), "--output_dir", str(tmp / "m")], "a_file.txt"),
        # ---- leapt report
        (["report", str(tmp / "no-run")], "no-run"),
        (["report", str(out["report"]), str(out["eval"])], "--output_dir"),
        (["report", str(root / "no_traces")], "no traces.jsonl"),
        (["report"], "run directory"),
        (["report", "--compare", "before", "--output_dir", str(out["report"])], "LABEL=DIR"),
        (["report", "--compare", f"before={out['eval']}"], "--output_dir"),
        (
            ["report", "--compare", f"a={tmp / 'gone'}", "--output_dir", str(out["report"])],
            "gone",
        ),
        (
            ["report", "--compare", f"a={out['eval']}", f"a={out['report']}"]
            + ["--output_dir", str(tmp / "r")],
            "distinct",
        ),
        (
            ["report", str(out["eval"]), "--compare", f"a={out['eval']}"]
            + ["--output_dir", str(tmp / "r")],
            "not both",
        ),
        (["report", str(out["eval"]), "--output_dir", str(a_file)], "'output_dir'"),
        (["report", str(out["eval"]), "--config", str(unknown_key)], "'temprature'"),
        (["report", str(out["eval"]), "--bogus", "1"], "'--bogus'"),
        # ---- leapt view
        (["view", str(tmp / "no-run")], "no-run"),
        (["view"], "run directory"),
        (["view", str(root / "no_traces")], "no traces.jsonl"),
        (["view", str(out["eval"]), "--config", str(unknown_key)], "'temprature'"),
        (["view", str(out["infer"]), "--output", str(old_traces)], "'output'"),
        (["view", str(out["infer"]), "--output", str(out["infer"] / "summary.json")], "'output'"),
        (["view", str(out["infer"]), "-o", str(a_file)], "'output'"),
        (["view", str(out["infer"]), "--output", str(out["eval"])], "'output'"),
        (["view", str(out["infer"]), "--output", str(in_file / "p.html")], "'output'"),
        (["view", str(out["infer"]), "--bogus", "1"], "'--bogus'"),
        # ---- leapt train
        ([*train, "--overlong", "chop"], "overlong"),
        ([*train, "--dataset_name", str(tmp / "no-dataset")], "no-dataset"),
        ([*train, "--dataset_name", str(no_segments)], "'segments'"),
        ([*train, "--config", str(unknown_key)], "'temprature'"),
        ([*train, "--config", str(bad_yaml)], "bad.yaml:3"),
        ([*train, "--model_name_or_path", str(tmp / "no-model")], "no-model"),
        ([*train, "--model_name_or_path", str(empty_model)], "holds no config.json"),
        ([*train, "--model_name_or_path", str(bad_model)], "bad_model/config.json"),
        ([*train, "--model_name_or_path", "bad//id"], "'model_name_or_path'"),
        ([*train, "--model_name_or_path", "org/never-downloaded"], "org/never-downloaded"),
        ([*train, "--per_device_train_batch_size", "0"], "'per_device_train_batch_size'"),
        ([*train, "--gradient_accumulation_steps", "0"], "'gradient_accumulation_steps'"),
        ([*train, "--max_length", "0"], "'max_length'"),
        ([*train, "--global_batch_size", "3"], "global_batch_size"),
        ([*train, "--loss_on", "peer", "teacher"], "loss_on"),
        ([*train, "--hub_token", "hf_x"], "hub_token"),
        ([*train, "--push_to_hub", "true"], "hub_model_id"),
        ([*train, "--push_to_hub", "true", "--hub_model_id", "bad//id"], "'hub_model_id'"),
        ([*train, "--push_to_hub", "true", "--hub_model_id", "me/x"], "token"),
        ([*train, "--dataset_streaming", "true"], "dataset_streaming"),
        ([*train, "--accelerate_config", "zero9"], "zero9"),
        ([*train, "--num_processes", "0"], "'num_processes'"),
        ([*train, "--output_dir", str(a_file)], "'output_dir'"),
        ([*train, "--output_dir", str(in_file)], "'output_dir'"),
        ([*train, "--output_dir", str(out["done"])], "already holds a finished model"),
        ([*train, "--n", "4"], "'--n'"),
        # ---- leapt publish
        (["publish", str(tmp / "no-model"), "--repo_id", "me/tiny", "--dry_run"], "no-model"),
        (["publish", "--repo_id", "me/tiny"], "MODEL_DIR"),
        (["publish", str(root / "no_traces"), "--repo_id", "me/tiny", "--dry_run"], "safetensors"),
        (["publish", str(out["secret"]), "--repo_id", "me/tiny", "--dry_run"], ".env"),
        (["publish", "--dataset", str(tmp / "no-dataset"), "--repo_id", "me/ds"], "no-dataset"),
        (["publish", "--dataset", str(out["generate"]), "--repo_id", "me/ds"], "generate"),
        ([*publish, "--config", str(unknown_key)], "'temprature'"),
        ([*publish, "--bogus", "1"], "'--bogus'"),
        ([*publish, "--eval_dir", str(tmp / "no-eval")], "no-eval"),
    ]


def test_bad_input_at_every_stage_fails_fast_naming_the_problem(tmp_path, tiny_model_dir):
    out = previous_outputs(tmp_path / "outputs")
    shards = shard_datasets(tmp_path / "outputs" / "shards")
    before = snapshot(tmp_path / "outputs")
    table = cases(tmp_path, out, tiny_model_dir, shards)
    assert len(table) >= 120
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no cached login: the "no token" cases
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([argv for argv, _ in table])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failures = []
    for (argv, needle), (rc, err, loaded) in zip(table, results, strict=True):
        lines = err.strip().splitlines()
        command = " ".join(argv[:2]) if argv[:2] == ["generate", "merge"] else argv[0]
        if not (
            rc == 2
            and len(lines) == 1
            and needle in lines[0]
            and lines[0].startswith(f"leapt {command}: error: ")
            and not loaded
        ):
            failures.append((argv, needle, rc, err, loaded))
    assert not failures, "\n".join(map(repr, failures))
    assert snapshot(tmp_path / "outputs") == before, "bad input changed an earlier run's outputs"

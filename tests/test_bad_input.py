"""Bad input at every command: one line naming the key or file, exit 2, no model, outputs untouched.

Every case runs through the real ``leapt`` entry point in one child interpreter
in which loading any model (transformers ``from_pretrained`` of a model class,
or a vLLM engine) is recorded, so "fails before a model loads" is observed,
not assumed.  All cases point at output folders that already hold a previous
run's files, which must come out byte-identical.
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
    dirs = {name: root / name for name in ("infer", "eval", "generate", "train", "report")}
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
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return dirs


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def cases(tmp: Path, out: dict[str, Path], tiny_model: Path) -> list[tuple[list[str], str]]:
    """(argv, text the one error line must contain) for every stage."""
    good = tmp / "good.jsonl"
    good.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    no_column = tmp / "questions.jsonl"
    no_column.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    broken = tmp / "broken.json"
    broken.write_text("{not json")
    unknown_key = tmp / "typo.yaml"
    unknown_key.write_text("temprature: 0.5\n")
    absent = tmp / "absent.jsonl"
    unreachable = f"http://127.0.0.1:{free_port()}/v1"

    infer = ["infer", "--output_dir", str(out["infer"]), "--source", str(good)]
    evaluate = ["eval", "--output_dir", str(out["eval"]), "--local_files", f"aime24={FIXTURE}"]
    generate = ["generate", "--output_dir", str(out["generate"])]
    train = ["train", "--config", str(SMOKE_RECIPE), "--output_dir", str(out["train"])]
    return [
        ([*infer, "--temperature", "-1"], "'temperature'"),
        ([*infer, "--top_p", "0"], "'top_p'"),
        ([*infer, "--top_p", "1.5"], "'top_p'"),
        ([*infer, "--min_p", "1"], "'min_p'"),
        ([*infer, "--method", "telepathy"], "'method'"),
        ([*infer, "--router", "nearest"], "'router'"),
        ([*infer, "--n", "4", "--top_k", "4"], "'top_k'"),
        ([*infer, "--T", "0"], "'T'"),
        ([*infer, "--config", str(unknown_key)], "'temprature'"),
        ([*infer, "--source", str(no_column)], "column 'problem'"),
        ([*infer, "--source", str(broken)], str(broken)),
        ([*infer, "--source", str(absent)], str(absent)),
        ([*infer, "--model", str(tmp / "no-such-model")], "no-such-model"),
        ([*infer, "--protocol", str(tmp / "no-proto.yaml")], "no-proto.yaml"),
        (
            [*infer, "--backend", "openai", "--model", str(tiny_model), "--api_base", unreachable],
            "'api_base'",
        ),
        ([*evaluate, "--benchmarks", "mmlu"], "'benchmarks'"),
        ([*evaluate, "--methods", "telepathy"], "'methods'"),
        ([*evaluate, "--local_files", f"aime24={absent}"], str(absent)),
        ([*evaluate, "--temperature", "-0.1"], "'temperature'"),
        ([*evaluate, "--n", "2", "--top_k", "2"], "'top_k'"),
        ([*generate, "--shard", "3/2"], "'shard'"),
        ([*generate, "--source", str(absent)], str(absent)),
        ([*generate, "--decontam_ngram", "0"], "'decontam_ngram'"),
        ([*generate, "--min_p", "-0.5"], "'min_p'"),
        ([*train, "--overlong", "chop"], "overlong"),
        ([*train, "--dataset_name", str(tmp / "no-dataset")], "no-dataset"),
        ([*train, "--config", str(unknown_key)], "'temprature'"),
        ([*evaluate, "--config", str(unknown_key)], "'temprature'"),
        (["report", str(tmp / "no-run")], "no-run"),
        (["report", str(out["report"]), str(out["eval"])], "--output_dir"),
        (["report", "--compare", "before", "--output_dir", str(out["report"])], "LABEL=DIR"),
        (
            ["generate", "merge", str(tmp / "no-shards"), "--output_dir", str(tmp / "m")],
            "no-shards",
        ),
        (["generate", "merge", str(out["generate"])], "--output_dir"),
        (["view", str(tmp / "no-run")], "no-run"),
        (["view", str(out["eval"]), "--config", str(unknown_key)], "'temprature'"),
        (["publish", str(tmp / "no-model"), "--repo_id", "me/tiny", "--dry_run"], "no-model"),
        (["publish", "--repo_id", "me/tiny"], "MODEL_DIR"),
    ]


def test_bad_input_at_every_stage_fails_fast_naming_the_problem(tmp_path, tiny_model_dir):
    out = previous_outputs(tmp_path / "outputs")
    before = snapshot(tmp_path / "outputs")
    table = cases(tmp_path, out, tiny_model_dir)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([argv for argv, _ in table])],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, needle), (rc, err, loaded) in zip(table, results, strict=True):
        lines = err.strip().splitlines()
        command = " ".join(argv[:2]) if argv[:2] == ["generate", "merge"] else argv[0]
        assert rc == 2, (argv, err)
        assert len(lines) == 1 and needle in lines[0], (argv, err)
        assert lines[0].startswith(f"leapt {command}: error: "), (argv, err)
        assert loaded == [], (argv, f"a model was loaded for bad input: {loaded}")
    assert snapshot(tmp_path / "outputs") == before, "bad input changed an earlier run's outputs"

"""The e2e run's acceptance check (leapt/e2e_check.py) and the cost table of the before/after report.

The run folder is fabricated from real pieces: a dataset written by
``data_gen.output.write_dataset``, eval folders of real traces reported by
``eval.report``, the student's finished-run record, and the before/after
report written by ``leapt report --compare``.  The check must pass on it and
fail, naming the piece, on every copy that misses one.
"""

from __future__ import annotations

import json
import shutil

import pytest

from data_gen.output import write_dataset
from data_gen.sft_format import to_row
from eval.report import write_report
from inference.trace import TraceFile
from leapt.cli import main as leapt
from leapt.cli import run_stage
from leapt.e2e_check import check_e2e, main
from leapt.wall_time import StageClock
from tests.test_eval_adherence import PROMPT, leap_path, trace

BENCH = "synthetic_heldout"


def write_eval(folder, model: str, modes=("leap", "leap_t"), seeds=(0, 1)) -> None:
    """A ``leapt eval --seeds`` folder of ``model`` with its report and its wall time."""
    for seed in seeds:
        for mode in modes:
            tf = TraceFile(folder / f"seed-{seed}" / BENCH / mode / "traces.jsonl")
            for pid in ("p1", "p2"):
                t = trace(
                    pid,
                    leap_path(" 6 sevens", " \\boxed{42}", "peer says 42"),
                    leap_path(" 42", " \\boxed{41}", "maybe 41"),
                    method=mode,
                )
                t.model, t.config = model, {"seed": seed, "task": "math", "n": 2, "method": mode}
                for path in t.paths:
                    path.generated_tokens = 10
                tf.append(t)
            (tf.path.parent / "summary.json").write_text(json.dumps({"generated_tokens": 40}))
    write_report([folder], folder)
    (folder / "wall_time.json").write_text(json.dumps({"seconds": 75.0, "runs": []}))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished e2e output folder, as `make e2e-quick` leaves it (built once)."""
    out = tmp_path_factory.mktemp("finished") / "e2e"
    data, student = out / "data", out / "student"
    t = trace("t1", leap_path(" 6 sevens", " \\boxed{42}", "peer says 42"))
    row = to_row(t, 0, [{"role": "user", "content": PROMPT}], "synthetic")
    write_dataset(data, [row], {"counts": {"kept": 1}})
    (data / "raw" / "shard-0-of-1").mkdir(parents=True)
    (data / "raw" / "shard-0-of-1" / "summary.json").write_text('{"generated_tokens": 1234}')
    clock = StageClock("generate")
    clock.record(data)
    clock.record(data)  # a resumed generate adds its own time
    student.mkdir()
    record = {"dataset": str(data), "data_stats": {"tokens": 16210, "trained_tokens": 2563}}
    (student / "leapt_training.json").write_text(json.dumps(record))  # as training.sft writes it
    (student / "wall_time.json").write_text(json.dumps({"seconds": 3725.0, "runs": []}))
    write_eval(out / "before", "embedded:smollm2-135m-instruct")
    write_eval(out / "after", str(student))
    spec = [f"before={out / 'before'}", f"after={out / 'after'}"]
    assert leapt(["report", "--compare", *spec, "--output-dir", str(out)]) == 0
    return out


@pytest.fixture
def e2e_run(finished_run, tmp_path):
    """A copy of the finished run for one test to damage."""
    return shutil.copytree(finished_run, tmp_path / "e2e")


def test_a_finished_run_passes_and_the_report_gives_each_stage_its_cost(e2e_run, capsys):
    assert check_e2e(e2e_run) == []
    assert main([str(e2e_run)]) == 0
    assert "e2e check: OK" in capsys.readouterr().out
    doc = json.loads((e2e_run / "results.json").read_text())
    after, before = doc["stages"]["after"], doc["stages"]["before"]
    assert set(before) == {"eval"}  # the base model: no training, no data of its own
    assert after["generate"]["generated_tokens"] == 1234
    runs = json.loads((e2e_run / "data" / "wall_time.json").read_text())["runs"]
    assert len(runs) == 2 and after["generate"]["seconds"] == sum(r["seconds"] for r in runs)
    assert after["train"]["seconds"] == 3725.0
    assert after["eval"]["generated_tokens"] == 2 * 2 * 40  # two seeds x two modes
    md = (e2e_run / "results.md").read_text()
    assert after["train"]["trained_tokens"] == 16210 and after["train"]["loss_tokens"] == 2563
    assert "| train, after | 1 h 02 min | 16,210 per epoch (2,563 with loss) |" in md
    assert "| eval, before | 1 min 15 s | 160 generated |" in md
    assert "| generate (teacher), after |" in md and "| 1,234 generated |" in md


def _drop(relative: str):
    def act(out):
        target = out / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return act


def _empty_dataset(out):
    write_dataset(out / "data", [], {"counts": {"kept": 0}})


def _without_mode(label: str, mode: str):
    def act(out):
        for seed_dir in (out / label).glob("seed-*"):
            shutil.rmtree(seed_dir / BENCH / mode)
        write_report([out / label], out / label)
        spec = [f"before={out / 'before'}", f"after={out / 'after'}"]
        assert leapt(["report", "--compare", *spec, "--output-dir", str(out)]) == 0

    return act


def _same_model(out):
    shutil.rmtree(out / "after")
    write_eval(out / "after", "embedded:smollm2-135m-instruct")
    spec = [f"before={out / 'before'}", f"after={out / 'after'}"]
    assert leapt(["report", "--compare", *spec, "--output-dir", str(out)]) == 0


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (_drop("student/leapt_training.json"), "stage 'student' did not finish"),
        (_drop("before"), "stage 'before' did not finish"),
        (_empty_dataset, "is empty: no training rows"),
        (_drop("data/data"), "is not a generated dataset"),
        (_without_mode("after", "leap_t"), f"after / {BENCH} / leap_t: not evaluated"),
        (_without_mode("before", "leap"), f"before / {BENCH} / leap: not evaluated"),
        (_same_model, "evaluated the same model"),
        (_drop("results.json"), "before/after report was not written"),
        (_drop("results.md"), "results.md missing"),
        (_drop("adherence_compare.png"), "adherence_compare.png missing or not a PNG"),
        (_drop("accuracy_compare.png"), "accuracy_compare.png missing or not a PNG"),
    ],
)
def test_a_run_missing_a_piece_fails_naming_it(e2e_run, damage, named, capsys):
    damage(e2e_run)
    problems = check_e2e(e2e_run)
    assert any(named in p for p in problems), problems
    assert run_stage("e2e check", main, [str(e2e_run)]) == 1
    err = capsys.readouterr().err
    assert "[leapt e2e check] error: FAILED" in err and named in err


def test_an_unmeasured_metric_fails(e2e_run):
    doc = json.loads((e2e_run / "results.json").read_text())
    doc["after"][BENCH]["leap_t"]["cons@n"] = None
    doc["before"][BENCH]["leap"]["adherence"]["self_open_rate"] = None
    (e2e_run / "results.json").write_text(json.dumps(doc))
    assert check_e2e(e2e_run) == [
        f"before / {BENCH} / leap: adherence self_open_rate not measured",
        f"after / {BENCH} / leap_t: cons@n not measured",
    ]

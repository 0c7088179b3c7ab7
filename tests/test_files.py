"""Results and marker files: replaced whole or not at all, and a marker that does not parse is
"not finished" to every reader (leapt train, the report's cost table, the e2e check, make)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.costs import stage_costs
from leapt.e2e_check import check_e2e
from leapt.files import atomic_path, atomic_write_text, read_marker

REPO = Path(__file__).resolve().parent.parent


def test_a_writer_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"new": tr')
        raise RuntimeError("killed while writing")
    assert target.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


WRITER = r"""
import json, sys
from leapt.files import atomic_write_text

target, ready = sys.argv[1], sys.argv[2]
docs = [json.dumps({"version": v, "rows": [v] * 400_000}) for v in (1, 2)]
atomic_write_text(target, docs[0])
open(ready, "w").close()
i = 0
while True:  # rewrite until killed: the kill lands inside some write
    i += 1
    atomic_write_text(target, docs[i % 2])
"""


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.9])
def test_a_writer_killed_with_sigkill_leaves_a_whole_file(tmp_path, delay):
    """``kill -9`` runs no exception handler: the rename is what keeps a reader from half a file."""
    import time

    from tests.processes import kill_when

    target, ready = tmp_path / "results.json", tmp_path / "ready"
    started: list[float] = []

    def moment() -> bool:
        if not ready.exists():
            return False
        started.append(started[0] if started else time.monotonic())
        return time.monotonic() - started[0] >= delay

    argv = [sys.executable, "-c", WRITER, str(target), str(ready)]
    assert kill_when(argv, moment) == -9
    doc = json.loads(target.read_text())  # whole: one of the two versions, never a mix
    assert doc["version"] in (1, 2) and doc["rows"] == [doc["version"]] * 400_000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("results.json", "ready")]
    assert all(name.startswith(".results.json.") for name in leftovers), leftovers


def test_two_writers_never_share_a_temp_name_and_the_file_is_readable_like_any_other(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.suffix == ".png"  # writers that choose the format by suffix still can
        first.write_bytes(b"one")
        second.write_bytes(b"two")
    assert target.read_bytes() == b"one"  # the last to finish wins, whole
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_text(tmp_path / "new" / "x.md", "é")
    assert (tmp_path / "new" / "x.md").read_text(encoding="utf-8") == "é"


@pytest.mark.parametrize("text", ["", '{"kind": "full", "log_hist', "[1, 2]", "\xff\xfe"])
def test_a_marker_that_does_not_parse_reads_as_unfinished_everywhere(tmp_path, text):
    record = tmp_path / "student" / "leapt_training.json"
    record.parent.mkdir()
    record.write_bytes(text.encode("latin-1"))
    assert read_marker(record) is None
    assert "train" not in stage_costs(tmp_path / "eval", str(record.parent))
    assert any("stage 'student' did not finish" in p for p in check_e2e(tmp_path))
    ask = [sys.executable, "-m", "leapt.files", "finished", str(record)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run(ask, env=env).returncode == 1
    record.write_text(json.dumps({"kind": "full"}))
    assert subprocess.run(ask, env=env).returncode == 0
    assert read_marker(record) == {"kind": "full"}


def test_leapt_train_refuses_a_finished_folder_but_retrains_over_a_torn_marker(
    tmp_path, tiny_model_dir, capsys
):
    from leapt.cli import main as leapt

    out = tmp_path / "student"
    out.mkdir()
    (out / "leapt_training.json").write_text('{"kind": "full", "log_')
    argv = ["train", "--config", str(REPO / "configs/training/smoke_cpu.yaml")]
    argv += ["--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out)]
    argv += ["--dataset_name", str(tmp_path / "no-dataset")]
    assert leapt(argv) == 2  # it went on to the dataset: the torn marker did not stop it
    err = capsys.readouterr().err
    assert "no-dataset" in err and "finished" not in err.splitlines()[-1]
    (out / "leapt_training.json").write_text('{"kind": "full"}')
    assert leapt(argv) == 2
    assert "already holds a finished model" in capsys.readouterr().err

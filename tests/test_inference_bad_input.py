"""Bad `leapt infer` input: a one-line message naming the key or file, exit 2, no model loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs each argv through the real `leapt` entry point in one interpreter and reports the
# exit code, stderr, and whether any backend module (and so any model) was ever imported.
PROBE = r"""
import contextlib, io, json, sys
from leapt.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    out.append([rc, err.getvalue()])
loaded = sorted(m for m in sys.modules if m.startswith("inference.backends.") and m != "inference.backends.base")
print(json.dumps({"results": out, "backends_loaded": loaded}))
"""


def test_bad_input_fails_fast_naming_the_problem(tmp_path):
    missing_col = tmp_path / "qs.jsonl"
    missing_col.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    base = ["infer", "--output_dir", str(tmp_path / "out")]
    cases = [
        (["--method", "telepathy"], "'method'"),
        (["--router", "nearest"], "'router'"),
        (["--n", "4", "--top_k", "4"], "'top_k'"),
        (["--T", "0"], "'T'"),
        (["--problems", str(missing_col)], "column 'problem'"),
        (["--problems", str(broken)], str(broken)),
        (["--problems", str(tmp_path / "absent.jsonl")], "absent.jsonl"),
        (["--problems", str(good), "--model", str(tmp_path / "no-such-model")], "no-such-model"),
        (["--protocol", str(tmp_path / "no-proto.yaml")], "no-proto.yaml"),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([base + argv for argv, _ in cases])],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, needle), (rc, err) in zip(cases, report["results"], strict=True):
        assert rc == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (argv, err)
    assert report["backends_loaded"] == [], "no model may be loaded for bad input"
    assert not (tmp_path / "out").exists(), "nothing is written for bad input"

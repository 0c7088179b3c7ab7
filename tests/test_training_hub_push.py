"""`leapt train --push_to_hub`: a failed push is one line that never carries the token.

The Hub here is a local server that refuses every request and, like some
proxies and servers do, echoes the Authorization header in its error body --
the way a token ends up in an exception message.
"""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.processes import REPO, leapt_argv, leapt_env
from tests.test_training_data import write_sft_dataset
from tests.training_runs import smoke_argv
from training.sft import FINISHED_MARKER

SECRET = "hf_" + "trainPushSecret0123456789abcdef"  # fake, split so scanners do not flag it


class EchoingHub(BaseHTTPRequestHandler):
    """Refuses every request; ``server.seen`` collects the Authorization headers it got."""

    def log_message(self, *args) -> None:
        pass

    def _refuse(self) -> None:
        # read the whole request first: closing a socket with unread bytes resets the
        # connection, and the client, maybe still sending, then sees a reset, not the 401
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        self.server.seen.append(auth)
        body = json.dumps({"error": f"Invalid credentials in Authorization header: {auth}"})
        data = body.encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = _refuse


@pytest.fixture
def echoing_hub():
    """The server (its ``url`` and ``seen``), new per test: no state outlives the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingHub)  # the kernel's port: no race
    server.seen = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_failed_push_is_one_line_without_the_token(tiny_model_dir, tmp_path, echoing_hub):
    data = write_sft_dataset(tmp_path / "data", n=4)
    out = tmp_path / "run"
    argv = leapt_argv(
        "train",
        *smoke_argv(tiny_model_dir, data, out, "--max_steps", "2"),
        *("--push_to_hub", "true", "--hub_model_id", "me/leapt-push-test"),
    )
    env = leapt_env(HF_TOKEN=SECRET, HF_ENDPOINT=echoing_hub.url, HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert f"Bearer {SECRET}" in echoing_hub.seen, "the push must have reached the Hub"
    assert SECRET not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("leapt train: error: could not push")
    assert "'me/leapt-push-test'" in last and "push_to_hub" in last and "401" in last
    assert (out / FINISHED_MARKER).exists(), "the trained model stays complete on disk"
    for file in out.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file

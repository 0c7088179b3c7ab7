"""Start a real `leapt` process and `kill -9` it at a chosen moment (for resume tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def leapt_argv(*args: str) -> list[str]:
    """The `leapt` console script, run by this interpreter on this checkout."""
    return [sys.executable, "-m", "leapt.cli", *args]


def leapt_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def kill_when(
    argv: list[str],
    ready: Callable[[], bool],
    timeout: float = 600,
    poll: float = 0.02,
    **env: str,
) -> int:
    """Run ``argv``; as soon as ``ready()`` holds, SIGKILL its whole process group.

    Fails if the process ends on its own first (the kill must interrupt it).
    Returns the exit status (``-9``).
    """
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=leapt_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(f"run ended before the kill: {proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(poll)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    return proc.returncode


def lines_in(path: Path) -> int:
    """Complete lines of a file that may not exist yet."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def free_port() -> int:
    """A TCP port free right now on localhost (for a server or a launcher's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

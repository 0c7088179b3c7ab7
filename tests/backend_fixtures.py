"""Session fixtures for the real vLLM backends (a pytest plugin module).

Loading vLLM costs tens of seconds on CPU, so the offline engine and the
OpenAI server are each started once per session and shared by every test
module that lists this module in ``pytest_plugins`` (a plugin registers its
fixtures once, unlike a fixture imported into several modules).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.vllm_server import MAX_MODEL_LEN, VLLMServer, tiny_model_args


@pytest.fixture(scope="session")
def vllm_server_launched(tiny_model_dir: Path, tmp_path_factory) -> Iterator[VLLMServer]:
    """The server process, launched but not yet waited for."""
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    server = VLLMServer(
        tiny_model_dir, log, "--dtype", "float32", "--max-model-len", str(MAX_MODEL_LEN)
    ).launch()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server(vllm_server_launched: VLLMServer) -> VLLMServer:
    """A real ``vllm.entrypoints.openai.api_server`` on 127.0.0.1 serving the tiny model."""
    vllm_server_launched.wait_healthy()
    return vllm_server_launched


@pytest.fixture(scope="session")
def vllm_backend(tiny_model_dir: Path, vllm_server_launched: VLLMServer) -> Iterator:
    """The offline vLLM engine on the tiny model; checks that close() frees its workers.

    Every module using it also uses the server, so it launches the server first
    and the two start-ups overlap.
    """
    from inference.backends import vllm_offline

    me = psutil.Process()
    before = {p.pid for p in me.children()}
    backend = vllm_offline.load(tiny_model_args(tiny_model_dir, "vllm"), str(tiny_model_dir))
    started = [
        p
        for p in me.children()
        # multiprocessing's resource tracker lives as long as this process, by design
        if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())
    ]
    engine = started + [c for p in started for c in p.children(recursive=True)]
    yield backend
    backend.close()
    _, alive = psutil.wait_procs(engine, timeout=30)
    assert not alive, f"vLLM engine processes still running after close(): {alive}"


@pytest.fixture(scope="session")
def openai_backend(vllm_server: VLLMServer, tiny_model_dir: Path) -> Iterator:
    """The openai backend talking to ``vllm_server``."""
    from inference.backends import openai_api

    args = tiny_model_args(tiny_model_dir, "openai", api_base=vllm_server.base_url)
    backend = openai_api.load(args, str(tiny_model_dir))
    yield backend
    backend.close()

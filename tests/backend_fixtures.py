"""Session fixtures for the real vLLM backends (a pytest plugin module).

Loading vLLM costs tens of seconds on CPU, so the offline engine and the
OpenAI server are each started once per session and shared by every test
module that lists this module in ``pytest_plugins`` (a plugin registers its
fixtures once, unlike a fixture imported into several modules).

Both are stopped right after the last test of those modules, not at the end
of the session: an idle engine's workers still poll (several % of a core
each), which the rest of a 2-core run would pay for minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.vllm_server import MAX_MODEL_LEN, VLLMServer, tiny_model_args

#: stop functions of what the fixtures below started, newest last (each may run twice)
_RUNNING: list[Callable[[], None]] = []
_LAST_USER = pytest.StashKey[str]()


def _uses_these_fixtures(item: pytest.Item) -> bool:
    return __name__ in getattr(getattr(item, "module", None), "pytest_plugins", ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note the last test that may use the fixtures (any test of a module listing this one)."""
    users = [item.nodeid for item in items if _uses_these_fixtures(item)]
    if users:
        config.stash[_LAST_USER] = users[-1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """After the last test that may use them, stop the engine and the server (newest first)."""
    yield
    if item.nodeid == item.config.stash.get(_LAST_USER, None):
        while _RUNNING:
            _RUNNING.pop()()


@pytest.fixture(scope="session")
def vllm_server_launched(tiny_model_dir: Path, tmp_path_factory) -> Iterator[VLLMServer]:
    """The server process, launched but not yet waited for."""
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    server = VLLMServer(
        tiny_model_dir,
        log,
        *("--dtype", "float32", "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager"),
    ).launch()
    _RUNNING.append(server.stop)
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

    It launches the server first, so the two start-ups overlap: a session that
    runs the vLLM tests needs both (alone, test_backend_vllm_context.py starts
    the server needlessly).
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
    _RUNNING.append(backend.close)
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

"""Headless Debian chromium driven over the DevTools protocol, for the viewer's browser tests.

A few dozen lines over a websocket instead of a browser-automation framework:
start ``chromium`` with ``--remote-debugging-port=0``, read the port it chose
from ``DevToolsActivePort``, open a page target and send it commands
(navigate, evaluate JavaScript, take a screenshot).  Uncaught page errors and
console errors (e.g. a Content-Security-Policy violation) are collected in
``errors`` so a test can require a clean page.  Install the browser with
``.ci/setup-browser.sh``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

EXECUTABLE = "chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


def available() -> bool:
    return shutil.which(EXECUTABLE) is not None


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, work_dir: Path, width: int = 1400, height: int = 900, wait: float = 60.0):
        from websockets.sync.client import connect

        profile = Path(work_dir) / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's stale port
        self.wait = wait
        self.errors: list[str] = []
        self._id = 0
        self.proc = subprocess.Popen(
            [EXECUTABLE, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
            + ["about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port, path = self._devtools_address(profile / "DevToolsActivePort")
            self.ws = connect(
                f"ws://127.0.0.1:{port}{path}", proxy=None, max_size=None, open_timeout=wait
            )
            target = self.call("Target.createTarget", url="about:blank", session=False)
            self.session = self.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True, session=False
            )["sessionId"]
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            self.call("Runtime.enable")
            self.call("Log.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_address(self, port_file: Path) -> tuple[str, str]:
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) >= 2:
                return lines[0], lines[1]
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events seen meanwhile are noted)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=self.wait))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._note(reply)

    def _note(self, event: dict[str, Any]) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"].get("text", "")[:500])
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(json.dumps(params.get("args", []))[:500])

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> None:
        """Poll until ``expression`` is truthy (the page renders some views asynchronously)."""
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({expression})"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"page never satisfied {expression!r}")

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready") -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_for(ready)

    def screenshot(self, path: Path, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        Path(path).write_bytes(data)
        return data

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A headless Chromium for browser tests, driven over the Chrome DevTools Protocol (CDP).

Owns: starting the system's `chromium` (Debian's package; nothing is downloaded) with a throwaway
profile and no network but the loopback, finding its DevTools endpoint (the DevToolsActivePort
file it writes), and a small synchronous CDP client over one websocket (python-websockets):
commands, the events they cause, and the few page helpers the tests need (navigate, evaluate,
wait for a condition, screenshot). Leaves what to check to the tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevToolsError(RuntimeError):
    """A CDP command failed, or the page did not reach a condition in time."""


class Page:
    """One tab, attached through the browser's connection (flat sessions); with no session id,
    the browser itself."""

    _ids = itertools.count(1)  # unique across the sessions sharing a connection

    def __init__(self, ws: ClientConnection, session_id: str | None) -> None:
        self._ws = ws
        self._session = session_id
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping the events that come meanwhile.
        Raises DevToolsError when the browser answers with an error."""
        message_id = next(self._ids)
        command = {"id": message_id, "method": method, "params": params}
        self._ws.send(json.dumps(command | ({"sessionId": self._session} if self._session else {})))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == message_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited). Raises DevToolsError when it throws."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        """Poll until the expression is truthy; its value. Raises DevToolsError on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out after {timeout_s} s waiting for {expression!r}")
            time.sleep(0.1)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Console errors and uncaught exceptions so far (a refused load under the page's
        Content-Security-Policy is a console error too)."""
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                out.append(json.dumps(e["params"]["args"])[:500])
            elif e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                out.append(e["params"]["entry"]["text"][:500])
        return out


@contextmanager
def chromium_page(
    chromium: str, profile_dir: Path, *, width: int = 1280, height: int = 800
) -> Iterator[Page]:
    """A headless Chromium with one blank tab; the browser is stopped on exit. Raises DevToolsError
    when it does not start within 30 s."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    args = [
        chromium,
        "--headless",
        "--no-sandbox",  # the tests may run as root (CI does), where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile_dir}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    log = (profile_dir / "chromium.log").open("wb")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LANG": "C.UTF-8"}
    )
    try:
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise DevToolsError(
                    f"chromium did not start: {(profile_dir / 'chromium.log').read_text()[-2000:]}"
                )
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 2**20, open_timeout=20) as ws:
            browser = Page(ws, None)
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            page = Page(ws, session)
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.call(f"{domain}.enable")
            page.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield page
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()

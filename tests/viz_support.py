"""Helpers for driving `odsim viz` in a real browser: start the server on a free port, launch Chromium.

Used by tests/test_viz_browser.py and tools/viz-screenshot.py. Chromium is Debian's package (`make test` installs
it when missing); Playwright's own browser download is never used. ODSIM_CHROMIUM overrides the path.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path(os.environ.get("ODSIM_CHROMIUM", "/usr/bin/chromium"))
# --no-sandbox: Chromium's sandbox refuses to run as root and needs user namespaces that containers often lack;
# the browser only visits our own local page. The other flags keep it off the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odsim_command() -> list[str]:
    """The installed `odsim` script next to this Python (the venv), else the module."""
    script = Path(sys.executable).with_name("odsim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]


class Server:
    """A running `odsim viz` process; `output` collects what it prints (for failure messages)."""

    def __init__(self, process: subprocess.Popen, url: str):
        self.process, self.url, self.lines = process, url, []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])


@contextlib.contextmanager
def serve(port: int | None = None, timeout: float = 120.0, offline: bool = True):
    """Start `odsim viz` on a free port, wait until it answers, yield a Server; stop it afterwards.

    offline: point Solara's CDN at a closed local port, so an asset missing from the local copy fails (as it
    would with no internet) instead of being fetched quietly by the server on a machine that has internet."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if offline:
        env["SOLARA_ASSETS_CDN"] = f"http://127.0.0.1:{free_port()}/"
    process = subprocess.Popen([*odsim_command(), "viz", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    server = Server(process, url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                time.sleep(0.5)  # let the reader thread collect the last lines
                raise RuntimeError(f"odsim viz exited with code {process.returncode}:\n{server.output}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"odsim viz did not answer at {url} within {timeout:.0f} s:\n{server.output}")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def printed_address(server: Server) -> str | None:
    """The address `odsim viz` printed on start."""
    for line in server.lines:
        match = re.search(r"serving the explorer at (http://\S+)", line)
        if match:
            return match.group(1)
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

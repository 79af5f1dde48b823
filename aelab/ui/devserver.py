"""Start the real lab (``launch.py``) as a subprocess on a free port: for tests and scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Debian's Chromium and the flags it needs on a closed network (Playwright cannot download
# browsers here); used by the browser tests and scripts/screenshot.py.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the lab exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)  # polling interval, not a stand-in for synchronisation
    raise TimeoutError(f"the lab did not answer at {url} within {timeout:.0f} s")


class LabServer:
    """``python launch.py`` on a free port with the given environment; a context manager."""

    def __init__(
        self, env: dict[str, str] | None = None, log: Path | None = None, args: list[str] = ()
    ) -> None:
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        self.log_path = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LabServer:
        out = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "launch.py"),
                "--port",
                str(self.port),
                "--no-browser",
                *self.args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(self.url, self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

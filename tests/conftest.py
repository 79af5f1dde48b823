"""Shared fixtures: every test writes runs and exports into its own temporary folder."""

from __future__ import annotations

import pytest
import torch

# One thread: CI machines have 2 cores, and oversubscribed torch threads slow tests down badly.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _session_dirs(tmp_path_factory):
    """Runs and exports of module- and session-scoped fixtures (set up before any test's own
    folders) go to a temporary folder too, never into the checkout's runs/."""
    root = tmp_path_factory.mktemp("session")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(root / "runs"))
        mp.setenv("AELAB_EXPORTS_DIR", str(root / "exports"))
        yield


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Keep runs/ and exports/ of each test inside tmp_path, and start with no stray settings."""
    monkeypatch.setenv("AELAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AELAB_EXPORTS_DIR", str(tmp_path / "exports"))
    for var in ("AELAB_LOAD_PLUGINS", "AELAB_PLUGINS_DIR", "AELAB_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def fresh_plugins():
    """Reload plugins before and after a test that changes what is registered."""
    from aelab import plugins

    plugins.reset()
    yield plugins
    plugins.set_plugins_dir(None)
    plugins.reset()


@pytest.fixture
def run_consumer():
    """Run examples/consumer.py with aelab and torch unimportable; returns its last JSON line."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "consumer.py"
    blocker = "import sys, runpy\nsys.modules['aelab'] = None\nsys.modules['torch'] = None\n"

    def run(*args: str, cwd: Path) -> dict:
        argv = f"sys.argv = {['consumer.py', *map(str, args)]!r}\n"
        code = blocker + argv + f"runpy.run_path({str(script)!r}, run_name='__main__')"
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """The lab served by launch.py, with its own runs and exports folders, shared by every test
    that drives its endpoints (each test opens its own sessions with ``labapi.client``)."""
    from aelab.ui.devserver import LabServer

    root = tmp_path_factory.mktemp("lab_api")
    env = {"AELAB_RUNS_DIR": str(root / "runs"), "AELAB_EXPORTS_DIR": str(root / "exports")}
    with LabServer(env, log=root / "server.log") as server:
        server.root = root
        yield server


@pytest.fixture(scope="module")
def browser():
    """One Chromium per browser-test module."""
    from playwright.sync_api import sync_playwright

    from aelab.ui.devserver import ARGS, CHROMIUM

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(lab, browser):
    """A fresh tab (a fresh gradio session) on the lab, once its controls are generated (for
    the browser tests: their module imports ``browserkit`` first, which skips without Chromium)."""
    from browserkit import TIMEOUT, expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(lab.url)
    expect(pg.locator("#architecture")).to_contain_text("parameters")
    yield pg
    context.close()

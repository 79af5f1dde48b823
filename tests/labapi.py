"""Helpers for tests that drive the lab's named endpoints with gradio_client.

The ``lab`` fixture itself (one launch.py subprocess for the whole test session) is in
conftest.py; a test file imports these helpers with ``from labapi import client, train``.
"""

from __future__ import annotations

import time

from gradio_client import Client

SMALL = {"code_size": 2, "layers": 1, "nodes": 32}


def client(lab) -> Client:
    """A new client: its own gradio session, like a new browser tab."""
    return Client(lab.url, verbose=False)


def train(c: Client, model: str = "autoencoder", params: dict | None = None, **config):
    """Call /train on the built-in digits and return its final outputs."""
    cfg = {"epochs": 2, "seed": 0, **config}
    return c.predict(model, "digits", None, params or SMALL, cfg, api_name="/train")


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)

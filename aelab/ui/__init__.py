"""The Gradio lab: the only part of aelab that imports gradio."""

from __future__ import annotations

from typing import Any


def build_app() -> Any:
    """Build the lab's gradio Blocks (imports gradio on first use)."""
    from .app import build_app as _build

    return _build()

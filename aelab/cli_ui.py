"""The ``aelab ui`` command: open the Gradio lab (its imports wait until the command runs)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_ui(args: argparse.Namespace) -> int:
    """Launch the lab."""
    from .ui.launcher import serve

    return serve(args)


def register(subparsers: Any) -> None:
    """Add ``aelab ui`` to the CLI."""
    from .ui.launcher import add_arguments

    parser = subparsers.add_parser("ui", help="open the lab in a browser (Gradio)")
    add_arguments(parser)
    parser.set_defaults(func=cmd_ui)

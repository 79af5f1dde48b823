"""Command-line options for the lab and launching it (used by launch.py and ``aelab ui``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import AelabError
from .texts import CSS

DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 200  # uploads larger than this are refused by the server itself


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The lab's options: host, port, sharing, runs folder, upload limit."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to serve on (default $AELAB_PORT or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (off unless asked)",
    )
    parser.add_argument(
        "--runs-dir", help="folder for saved runs (default $AELAB_RUNS_DIR or ./runs)"
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest accepted upload in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return parser


def port_from(args: argparse.Namespace) -> int:
    """The port: --port, else AELAB_PORT, else 7860; a number from 1 to 65535."""
    if args.port is not None:
        port, where = args.port, "--port"
    else:
        text = os.environ.get("AELAB_PORT")
        if not text:
            return DEFAULT_PORT
        try:
            port, where = int(text), "AELAB_PORT"
        except ValueError:
            raise AelabError(f"AELAB_PORT must be a port number, not '{text}'.") from None
    if not 1 <= port <= 65535:
        raise AelabError(f"{where} must be a port number from 1 to 65535, not {port}.")
    return port


def serve(args: argparse.Namespace) -> int:
    """Build and launch the lab with these options; blocks until the server stops."""
    # Analytics off before gradio is imported: it reads the variable at import time.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.runs_dir:
        os.environ["AELAB_RUNS_DIR"] = str(Path(args.runs_dir).resolve())
    port = port_from(args)
    if not args.max_upload_mb > 0:
        raise AelabError(
            f"--max-upload-mb must be a positive size in MB, not {args.max_upload_mb}."
        )
    from ..export import exports_root
    from .app import build_app

    demo = build_app()
    exports = exports_root().resolve()
    exports.mkdir(parents=True, exist_ok=True)
    try:
        demo.launch(
            server_name=args.host,
            server_port=port,
            share=bool(args.share),
            inbrowser=not args.no_browser,
            # Bytes as an int: gradio's size parser reads "50.0mb" as the unit ".0mb" and fails.
            max_file_size=int(args.max_upload_mb * 1024 * 1024),
            allowed_paths=[str(exports)],  # exported files are offered for download from here
            footer_links=["api", "gradio"],
            css=CSS,
            show_error=True,
        )
    except OSError as exc:  # a port that is taken: one sentence, not gradio's traceback
        raise AelabError(
            f"Cannot serve on {args.host}:{port}: it is in use or not available; "
            "choose another port with --port or AELAB_PORT."
        ) from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of launch.py: errors are one line, not a traceback."""
    import sys

    from ..cli import OneLineParser

    parser = OneLineParser(prog="launch.py", description="Open the aelab lab.")
    args = add_arguments(parser).parse_args(argv)
    try:
        return serve(args)
    except AelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

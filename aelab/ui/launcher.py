"""Command-line options for the lab and launching it (used by launch.py and ``aelab ui``)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ..errors import AelabError
from .texts import CSS

DEFAULT_HOST = "127.0.0.1"  # this machine only, unless asked
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 200  # uploads larger than this are refused by the server itself
# The variables read when the flag is not given, in order: the lab's own first, then those every
# Gradio app honours. GRADIO_SHARE is not among them: a public link needs --share.
PORT_VARIABLES = ("AELAB_PORT", "GRADIO_SERVER_PORT")
HOST_VARIABLES = ("GRADIO_SERVER_NAME",)
# A host name, an IPv4 address or an IPv6 address (bracketed or not); not a URL.
_HOST = re.compile(r"\[?[A-Za-z0-9._:%-]+\]?")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The lab's options: host, port, sharing, runs folder, upload limit."""
    parser.add_argument(
        "--host",
        default=None,
        help=f"address to bind (default $GRADIO_SERVER_NAME, else {DEFAULT_HOST}: this machine "
        "only)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to serve on (default $AELAB_PORT, else $GRADIO_SERVER_PORT, else "
        f"{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        help="also open a public gradio.live link (off unless asked; GRADIO_SHARE is not read)",
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


def _variable(names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of these environment variables that is set and not blank: (value, name)."""
    for name in names:
        text = os.environ.get(name, "").strip()
        if text:
            return text, name
    return None


def port_and_origin(args: argparse.Namespace) -> tuple[int, str]:
    """The port and what chose it: --port, else AELAB_PORT, else GRADIO_SERVER_PORT, else 7860
    ("default"); a number from 1 to 65535."""
    if args.port is not None:
        port, where = args.port, "--port"
    else:
        found = _variable(PORT_VARIABLES)
        if found is None:
            return DEFAULT_PORT, "default"
        text, where = found
        try:
            port = int(text)
        except ValueError:
            raise AelabError(f"{where} must be a port number, not '{text}'.") from None
    if not 1 <= port <= 65535:
        raise AelabError(f"{where} must be a port number from 1 to 65535, not {port}.")
    return port, where


def port_from(args: argparse.Namespace) -> int:
    """The port: --port, else AELAB_PORT, else GRADIO_SERVER_PORT, else 7860."""
    return port_and_origin(args)[0]


def host_and_origin(args: argparse.Namespace) -> tuple[str, str]:
    """The address to bind and what chose it: --host, else GRADIO_SERVER_NAME, else 127.0.0.1
    ("default"); a host name or an IP address, without a port or a scheme."""
    if args.host is not None:
        host, where = args.host.strip(), "--host"
    else:
        found = _variable(HOST_VARIABLES)
        if found is None:
            return DEFAULT_HOST, "default"
        host, where = found
    # One colon is a host with a port ("localhost:7860"); an IPv6 address has two or more.
    if not _HOST.fullmatch(host) or host.count(":") == 1:
        raise AelabError(
            f"{where} must be an address to bind, such as 127.0.0.1 (this machine only) or "
            f"0.0.0.0 (every network interface), not '{host}'."
        )
    return host, where


def host_from(args: argparse.Namespace) -> str:
    """The address to bind: --host, else GRADIO_SERVER_NAME, else 127.0.0.1."""
    return host_and_origin(args)[0]


def _cannot_serve(host: str, host_origin: str, port: int, port_origin: str) -> str:
    """One sentence for a port that is taken or an address that is not this machine's, naming
    the variable that chose either when one did."""
    chosen = [
        f"the {what} from {where}"
        for what, where in (("address", host_origin), ("port", port_origin))
        if where in HOST_VARIABLES + PORT_VARIABLES
    ]
    note = f" ({' and '.join(chosen)})" if chosen else ""
    return (
        f"Cannot serve on {host}:{port}{note}: it is in use or not available; "
        "choose another port with --port or AELAB_PORT, or another address with --host."
    )


def serve(args: argparse.Namespace) -> int:
    """Build and launch the lab with these options; blocks until the server stops."""
    # Analytics off before gradio is imported: it reads the variable at import time.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.runs_dir:
        os.environ["AELAB_RUNS_DIR"] = str(Path(args.runs_dir).resolve())
    port, port_origin = port_and_origin(args)
    host, host_origin = host_and_origin(args)
    if not args.max_upload_mb > 0:
        raise AelabError(
            f"--max-upload-mb must be a positive size in MB, not {args.max_upload_mb}."
        )
    # gradio reads both variables when it is imported (the port it starts from, the address it
    # checks a port on) and stops on a port that is not a number: it is told what was chosen
    # here, so a variable that a flag overrode cannot get in the way.
    os.environ["GRADIO_SERVER_NAME"] = host
    os.environ["GRADIO_SERVER_PORT"] = str(port)
    from ..fsio import exports_root
    from .app import build_app

    demo = build_app()
    exports = exports_root().resolve()
    exports.mkdir(parents=True, exist_ok=True)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=bool(args.share),  # always given, so that GRADIO_SHARE cannot open a public link
            inbrowser=not args.no_browser,
            # Bytes as an int: gradio's size parser reads "50.0mb" as the unit ".0mb" and fails.
            max_file_size=int(args.max_upload_mb * 1024 * 1024),
            allowed_paths=[str(exports)],  # exported files are offered for download from here
            footer_links=["api", "gradio"],
            css=CSS,
            show_error=True,
        )
    except OSError as exc:  # a port that is taken: one sentence, not gradio's traceback
        raise AelabError(_cannot_serve(host, host_origin, port, port_origin)) from exc
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

"""Names that become folder or file names (run ids, export folders, graph and file names).

One rule everywhere: letters, digits, '.', '_' and '-', starting with a letter or digit, not
ending in '.', at most 128 characters. So a name is always one plain entry inside the folder it is
meant for: never a path (no '/' or '\\', no '.' or '..', not absolute), never hidden or
option-like (no leading '.' or '-'), never with control characters (a trailing newline included).
Only the standard library is used, so the torch-free runtime can import it.
"""

from __future__ import annotations

import re

from .errors import AelabError

MAX_LENGTH = 128
ALLOWED = "letters, digits, '.', '_' and '-', starting with a letter or digit, not ending in '.'"
_CHARS = re.compile(r"[A-Za-z0-9._-]*")


class IdError(AelabError, ValueError):
    """A name that cannot be used as an id or a file name inside its folder."""


def id_problem(value: object, max_length: int = MAX_LENGTH) -> str | None:
    """Why ``value`` is not a valid id (a short clause), or None when it is one."""
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not text"
    if not value:
        return "it is empty"
    if value.endswith(("\n", "\r")):
        return "it ends with a newline"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "it contains a control character"
    if "/" in value or "\\" in value:
        return "it contains a path separator"
    if value in (".", ".."):
        return "it names a folder relative to another one"
    if value[0] in ".-":
        return f"it starts with '{value[0]}'"
    if value.endswith("."):
        return "it ends with '.' (which Windows drops, so it would name another folder)"
    if len(value) > max_length:
        return f"it is longer than {max_length} characters"
    bad = next((c for c in value if not _CHARS.fullmatch(c)), None)
    if bad is not None:
        return f"it contains {bad!r}"
    return None


def is_id(value: object, max_length: int = MAX_LENGTH) -> bool:
    """Whether ``value`` is a valid id."""
    return id_problem(value, max_length) is None


def check_id(
    value: object,
    what: str = "run id",
    *,
    error: type[Exception] = IdError,
    max_length: int = MAX_LENGTH,
) -> str:
    """Return ``value`` if it is a valid id; otherwise raise ``error`` with one sentence."""
    problem = id_problem(value, max_length)
    if problem is None:
        return value  # type: ignore[return-value]
    raise error(
        f"{what[:1].upper()}{what[1:]} {show(value)} is not allowed because {problem}; use "
        f"{ALLOWED}, at most {max_length} characters."
    )


def show(value: object) -> str:
    """A name as a message shows it: quoted, control characters escaped, long ones cut."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 80 else text[:80] + "...")

"""onnxruntime, imported with its telemetry off: import ``ort`` from here, never directly.

The official onnxruntime wheels (1.31) record telemetry through the 1DS SDK: on ``import
onnxruntime`` they write ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid`` and
``onnxruntime.db`` (a device id, the OS, CPU model, memory, container type and the Python
executable's path, queued for upload to Microsoft) under ``XDG_CACHE_HOME`` (else ``~/.cache``),
and a ``.ses`` session file in the temporary folder. Only the environment variable
``ORT_DISABLE_TELEMETRY=1``, set before onnxruntime is first imported in the process, prevents
all of it; ``onnxruntime.disable_telemetry_events()`` afterwards only suppresses later events.

So this module sets the variable (unless the user set it, to any value: ``ORT_DISABLE_TELEMETRY=0``
opts back in) and only then imports onnxruntime. Where onnxruntime was imported before aelab,
it is too late for the variable; then later events are suppressed through the API and
:data:`TOO_LATE` is True.
"""

from __future__ import annotations

import os
import sys

ENV = "ORT_DISABLE_TELEMETRY"

# Whether onnxruntime was already imported (by the caller) before aelab could turn telemetry off.
TOO_LATE = "onnxruntime" in sys.modules and not os.environ.get(ENV)

if not os.environ.get(ENV):
    os.environ[ENV] = "1"  # inherited by subprocesses too

import onnxruntime as ort  # noqa: E402 - only once the variable is set

if os.environ.get(ENV) != "0":
    # Belt and braces: where the variable came too late, at least no further events.
    ort.disable_telemetry_events()


def disabled() -> bool:
    """Whether onnxruntime's telemetry is off in this process (the variable was in time)."""
    return not TOO_LATE and os.environ.get(ENV) != "0"


__all__ = ["ENV", "TOO_LATE", "disabled", "ort"]

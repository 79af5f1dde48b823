"""The hooks a plugin can implement. Hooks are always called with keyword arguments."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("aelab")
hookimpl = pluggy.HookimplMarker("aelab")


@hookspec
def register_models(register: Callable) -> None:
    """Register model specs: call ``register(spec)`` once per :class:`aelab.models.ModelSpec`."""


@hookspec
def register_applications(register: Callable) -> None:
    """Register uses of a trained model: call ``register(spec)`` once per
    :class:`aelab.applications.ApplicationSpec`."""


@hookspec
def register_datasets(register: Callable) -> None:
    """Register datasets: call ``register(name, loader, description)``; ``loader()`` returns a Dataset."""


@hookspec
def register_readers(register: Callable) -> None:
    """Register file formats: call ``register(reader)`` once per :class:`aelab.readers.Reader`
    (its name, a one-line description, the suffixes and/or ``can_read(path)`` check saying what
    it reads, and ``read(path, options)`` returning a Dataset)."""


@hookspec
def register_trackers(register: Callable) -> None:
    """Register experiment trackers: call ``register(tracker)`` once per
    :class:`aelab.tracking.Tracker` (its name, a one-line description, the modules it needs and
    ``make(**options)`` returning a training callback; ``aelab train --log NAME`` chooses it)."""

"""aelab: a local lab for the autoencoder family.

The public Python API (``aelab.train``, ``aelab.load``, ...) is imported on first use, so
``import aelab`` and ``aelab --help`` stay instant.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute): the public API, each imported when first asked for.
_PUBLIC = {
    # aelab.train is also the trainer's module; the module is callable (see aelab/train.py).
    "train": ("aelab", "train"),
    "load": ("aelab.api", "load"),
    "Trained": ("aelab.api", "Trained"),
    "dataset": ("aelab.api", "dataset"),
    "from_array": ("aelab.api", "from_array"),
    "load_data": ("aelab.data", "load_data"),
    "Dataset": ("aelab.data", "Dataset"),
    "models": ("aelab.plugins", "get_models"),
    "applications": ("aelab.plugins", "get_applications"),
    "AelabError": ("aelab.errors", "AelabError"),
    "AutoencoderTransformer": ("aelab.sklearn", "AutoencoderTransformer"),
    "AutoencoderOutlierDetector": ("aelab.sklearn", "AutoencoderOutlierDetector"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        module, attr = _PUBLIC[name]
        if name == "train":
            value = importlib.import_module("aelab.train")
        else:
            value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

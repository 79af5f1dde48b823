"""Conformance kit for plugin authors: checks any ModelSpec against the contract aelab relies on.

Each function raises AssertionError with a sentence saying what is wrong; aelab's own test suite
runs them on every built-in model, e.g.::

    from aelab.testing import check_spec, check_build_and_step, check_roundtrip, check_graphs

    def test_my_model(tmp_path):
        data = tiny_dataset()
        check_spec(MY_SPEC)
        check_build_and_step(MY_SPEC, data)
        check_graphs(MY_SPEC, data)
        check_roundtrip(MY_SPEC, data, tmp_path)
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import torch

from .models import CAPABILITIES, GraphSpec, Model, ModelSpec
from .params import Params, TrainConfig

_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


def _fail(spec: ModelSpec, message: str) -> None:
    raise AssertionError(f"Model '{spec.id}': {message}")


def check_spec(spec: ModelSpec) -> None:
    """The spec's identity, texts and parameter schema are complete enough for the CLI and UI."""
    if not isinstance(spec, ModelSpec):
        raise AssertionError(f"expected a ModelSpec, got {type(spec).__name__}")
    if not _ID.match(spec.id):
        _fail(
            spec, "the id must be lower-case letters, digits, '-' or '_', starting with a letter."
        )
    for name in ("name", "description", "help"):
        if not str(getattr(spec, name)).strip():
            _fail(spec, f"'{name}' is empty; the UI and `aelab models` show it.")
    if not spec.description.rstrip().endswith("."):
        _fail(spec, "the description should be one sentence ending with a full stop.")
    if len(spec.help) < 120:
        _fail(
            spec, "the help text is under 120 characters; say how it works and what it optimises."
        )
    if not spec.accepts or not set(spec.accepts) <= {"flat", "image"}:
        _fail(spec, f"accepts must list 'flat' and/or 'image', not {spec.accepts!r}.")
    if not (isinstance(spec.params, type) and issubclass(spec.params, Params)):
        _fail(spec, "params must be a subclass of aelab.params.Params.")
    try:
        spec.params()
    except Exception as exc:  # noqa: BLE001 - any failure means the defaults are unusable
        _fail(spec, f"the default parameters do not validate ({exc}).")
    schema = spec.schema()
    for field_name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            _fail(spec, f"parameter '{field_name}' has no description (the UI shows it as help).")
        if not prop.get("title"):
            _fail(
                spec, f"parameter '{field_name}' has no title (the UI labels its widget with it)."
            )
        if prop.get("type") in ("integer", "number"):
            has_lo = any(k in prop for k in ("minimum", "exclusiveMinimum"))
            has_hi = any(k in prop for k in ("maximum", "exclusiveMaximum"))
            if not (has_lo and has_hi):
                _fail(
                    spec,
                    f"numeric parameter '{field_name}' needs both bounds (a slider needs them).",
                )
    caps = getattr(spec.factory, "capabilities", None)
    if caps is None or not set(caps) <= set(CAPABILITIES):
        _fail(spec, f"the model class must declare capabilities within {CAPABILITIES}.")


def build(spec: ModelSpec, data: Any, params: dict[str, Any] | None = None, seed: int = 0) -> Model:
    """Build ``spec`` for ``data`` with a fixed seed (a helper for the checks)."""
    torch.manual_seed(seed)
    return spec.build(params or {}, data.sample_shape, data.kind)


def _batch(data: Any, n: int = 16) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = torch.as_tensor(data.x[:n], dtype=torch.float32)
    labels = getattr(data, "labels", None)
    extra = {} if labels is None else {"y": torch.as_tensor(labels[:n], dtype=torch.long)}
    return x, extra


def check_build_and_step(spec: ModelSpec, data: Any, params: dict[str, Any] | None = None) -> Model:
    """The model builds for ``data``, declares matching optimizers and takes one finite step."""
    model = build(spec, data, params)
    if not isinstance(model, Model):
        _fail(spec, f"the factory returned {type(model).__name__}, not an aelab Model.")
    if tuple(model.sample_shape) != tuple(data.sample_shape):
        _fail(
            spec, f"sample_shape {model.sample_shape} differs from the data's {data.sample_shape}."
        )
    optimizers = model.configure_optimizers(TrainConfig())
    if list(optimizers) != list(model.steps):
        _fail(spec, f"steps {list(model.steps)} differ from the optimizers {list(optimizers)}.")
    x, extra = _batch(data)
    if not model.needs_labels:
        extra = {}
    model.train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, opt in optimizers.items():
        opt.zero_grad(set_to_none=True)
        terms = model.training_step(x, name, **extra)
        if "loss" not in terms:
            _fail(spec, f"training_step for '{name}' returned no 'loss' term (got {list(terms)}).")
        for key, value in terms.items():
            if not (isinstance(value, torch.Tensor) and value.dim() == 0):
                _fail(spec, f"loss term '{key}' of step '{name}' is not a scalar tensor.")
            if not math.isfinite(float(value.detach())):
                _fail(spec, f"loss term '{key}' of step '{name}' is not finite ({float(value)}).")
        terms["loss"].backward()
        opt.step()
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    if not changed:
        _fail(spec, "one training step changed no weight.")
    model.eval()
    with torch.no_grad():
        val = model.validation_step(x, **extra)
    if not all(math.isfinite(float(v)) for v in val.values()):
        _fail(spec, f"validation_step gave non-finite terms {val}.")
    if "sample" in model.capabilities:
        g = torch.Generator().manual_seed(0)
        out = model.sample(3, generator=g)
        if tuple(out.shape) != (3, *data.sample_shape):
            _fail(
                spec, f"sample(3) has shape {tuple(out.shape)}, expected {(3, *data.sample_shape)}."
            )
    return model


def _graph_input(graph: GraphSpec, n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if graph.input_range is None:
        return torch.randn(n, *graph.input_shape, generator=g)
    lo, hi = graph.input_range
    return lo + (hi - lo) * torch.rand(n, *graph.input_shape, generator=g)


def _outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_graphs(spec: ModelSpec, data: Any, model: Model | None = None) -> list[GraphSpec]:
    """Every exportable graph runs in eval mode, deterministically, with the declared outputs."""
    model = model if model is not None else build(spec, data)
    model.eval()
    graphs = model.graphs()
    if not graphs:
        _fail(spec, "graphs() returned nothing to export.")
    names = [g.name for g in graphs]
    if len(set(names)) != len(names):
        _fail(spec, f"graph names repeat: {names}.")
    for graph in graphs:
        x = _graph_input(graph)
        with torch.no_grad():
            first = _outputs(graph.module(x))
            second = _outputs(graph.module(x))
        where = f"graph '{graph.name}'"
        if len(first) != len(graph.output_names):
            _fail(spec, f"{where} returned {len(first)} outputs but declares {graph.output_names}.")
        for name, a, b in zip(graph.output_names, first, second):
            if a.shape[0] != x.shape[0]:
                _fail(
                    spec, f"{where} output '{name}' lost the batch axis (shape {tuple(a.shape)})."
                )
            if not torch.equal(a, b):
                _fail(
                    spec,
                    f"{where} output '{name}' differs between two calls: randomness in eval mode.",
                )
        if graph.name in ("autoencoder", "decoder", "generator"):
            if tuple(first[0].shape[1:]) != tuple(data.sample_shape):
                _fail(
                    spec,
                    f"{where} outputs shape {tuple(first[0].shape[1:])}, not the data's "
                    f"{tuple(data.sample_shape)}.",
                )
        if graph.name in ("decoder", "generator") and tuple(graph.input_shape) != tuple(
            model.code_shape
        ):
            _fail(spec, f"{where} takes {graph.input_shape} but code_shape is {model.code_shape}.")
        if graph.name == "encoder":
            if tuple(first[0].shape[1:]) != tuple(model.code_shape[: first[0].dim() - 1]):
                _fail(
                    spec,
                    f"{where} gives codes of shape {tuple(first[0].shape[1:])}, but "
                    f"code_shape is {model.code_shape}.",
                )
    return graphs


def check_roundtrip(spec: ModelSpec, data: Any, tmp_path: str | os.PathLike) -> None:
    """A model saved with save_run and loaded with load_run gives identical graph outputs."""
    from . import runs

    model = check_build_and_step(spec, data)
    model.eval()
    config = TrainConfig()
    folder = runs.save_run(
        runs.new_run_id(spec.id),
        spec,
        model.params,
        config,
        model,
        model.configure_optimizers(config),
        [],
        data.meta(),
        runs_dir=tmp_path,
    )
    loaded = runs.load_run(folder).model
    if type(loaded) is not type(model):
        a, b = type(loaded), type(model)
        if a.__qualname__ == b.__qualname__:
            _fail(
                spec,
                f"the plugin module was imported twice, as '{a.__module__}' (registered with "
                f"aelab) and '{b.__module__}' (where this spec comes from), so load_run built the "
                f"other copy's {a.__qualname__}; install the plugin as a package, or check the "
                f"registered spec: aelab.plugins.get_model('{spec.id}').",
            )
        _fail(spec, f"load_run built a {a.__name__}, not a {b.__name__}.")
    for g_old, g_new in zip(model.graphs(), loaded.graphs()):
        x = _graph_input(g_old)
        with torch.no_grad():
            for name, a, b in zip(
                g_old.output_names, _outputs(g_old.module(x)), _outputs(g_new.module(x))
            ):
                if not torch.equal(a, b):
                    diff = float((a - b).abs().max())
                    _fail(
                        spec,
                        f"graph '{g_old.name}' output '{name}' changed after save/load "
                        f"(max difference {diff:.3g}).",
                    )

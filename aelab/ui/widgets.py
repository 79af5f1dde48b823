"""Gradio controls generated from a pydantic JSON schema, and their values turned back into data."""

from __future__ import annotations

import json
import math
from typing import Any

import gradio as gr

from ..errors import ParamsError

# A slider is only usable when its range has few enough stops; wider ranges get a number box.
MAX_SLIDER_STOPS = 2048


def _bounds(prop: dict[str, Any]) -> tuple[float | None, float | None]:
    lo = prop.get("minimum", prop.get("exclusiveMinimum"))
    hi = prop.get("maximum", prop.get("exclusiveMaximum"))
    return lo, hi


def _is_list_or_int(prop: dict[str, Any]) -> bool:
    types = {p.get("type") for p in prop.get("anyOf", [])}
    return "array" in types


def _slider_step(lo: float, hi: float) -> float:
    """A round step giving about a hundred stops across the range."""
    return 10 ** math.floor(math.log10((hi - lo) / 100)) if hi > lo else 0.01


def kind_of(prop: dict[str, Any]) -> str:
    """Which control a schema property gets: dropdown, checkbox, slider, number, list or text."""
    if "enum" in prop or "const" in prop:
        return "dropdown"
    typ = prop.get("type")
    if typ == "boolean":
        return "checkbox"
    if _is_list_or_int(prop):
        return "list"
    lo, hi = _bounds(prop)
    if typ in ("integer", "number") and lo is not None and hi is not None:
        if typ == "integer":
            return "number" if hi - lo > MAX_SLIDER_STOPS else "slider"
        # Rates such as 5e-4 in (0, 1] would fall between a slider's stops: type them instead.
        step = _slider_step(lo, hi)
        default = prop.get("default")
        off_grid = default is not None and abs(round(default / step) * step - default) > 1e-9
        return "number" if off_grid or (lo > 0 and hi / lo >= 1000) else "slider"
    if typ in ("integer", "number"):
        return "number"
    return "text"


def display(value: Any) -> Any:
    """A value as its control shows it (lists as JSON text)."""
    return json.dumps(value) if isinstance(value, list) else value


def control(
    name: str, prop: dict[str, Any], value: Any = None, elem_id: str | None = None
) -> gr.components.Component:
    """One labelled control for a schema property, with its description as help text."""
    value = prop.get("default") if value is None else value
    label = prop.get("title", name.replace("_", " ").capitalize())
    info = prop.get("description")
    common = {"label": label, "info": info, "elem_id": elem_id or name, "interactive": True}
    kind = kind_of(prop)
    if kind == "dropdown":
        if "const" in prop:  # fixed by this model: shown, not editable
            return gr.Dropdown(
                choices=[prop["const"]], value=prop["const"], **{**common, "interactive": False}
            )
        return gr.Dropdown(choices=list(prop["enum"]), value=value, **common)
    if kind == "checkbox":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "slider":
        lo, hi = _bounds(prop)
        step = 1 if prop.get("type") == "integer" else _slider_step(lo, hi)
        return gr.Slider(minimum=lo, maximum=hi, step=step, value=value, **common)
    if kind == "number":
        lo, hi = _bounds(prop)
        precision = 0 if prop.get("type") == "integer" else None
        return gr.Number(value=value, minimum=lo, maximum=hi, precision=precision, **common)
    if kind == "list":
        info = (info or "") + " Type one number or a list such as [256, 64]."
        return gr.Textbox(value=display(value), **{**common, "info": info.strip()})
    return gr.Textbox(value="" if value is None else str(value), **common)


def coerce(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Turn control values back into what the schema expects (numbers, lists)."""
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, raw in (values or {}).items():
        prop = props.get(name, {})
        label = prop.get("title", name)
        kind = kind_of(prop) if prop else "text"
        if kind == "list" and isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise ParamsError(
                    f"'{label}' must be a whole number or a list of whole numbers such as "
                    f"[256, 64], not '{raw}'."
                ) from None
        if raw is None and kind in ("number", "slider"):
            raise ParamsError(f"'{label}' needs a value.")
        if prop.get("type") == "integer" and isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        out[name] = raw
    return out


def defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """Each property's default value, as the controls show it."""
    return {k: display(p.get("default")) for k, p in schema.get("properties", {}).items()}


def model_controls(spec: Any, values: dict[str, Any]) -> dict[str, gr.components.Component]:
    """The controls of one model's hyperparameters, set to ``values`` (a name missing from it
    gets its default); ids are "<model id>-<name>".

    The lab draws them for the chosen model only, inside a ``gr.render``: a hidden column for
    every registered model made the first page about a third larger (and slower to build and
    serve) for controls nobody sees.
    """
    props = spec.schema().get("properties", {})
    return {
        name: control(name, prop, value=values.get(name), elem_id=f"{spec.id}-{name}")
        for name, prop in props.items()
    }

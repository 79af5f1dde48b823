"""One parameter schema: model hyperparameters and training settings, validated by pydantic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ParamsError


class Params(BaseModel):
    """Hyperparameters every autoencoder has; a model subclasses this to add its own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    code_size: int = Field(
        8,
        ge=1,
        le=1024,
        title="Code size",
        description="Number of units in the code (bottleneck). Smaller than the input gives an "
        "undercomplete autoencoder that must compress; larger gives an overcomplete one.",
    )
    layers: int = Field(
        2,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden layers between the input and the code in the encoder; the decoder "
        "mirrors them. 0 connects the input straight to the code.",
    )
    nodes: int | list[int] = Field(
        128,
        title="Nodes per layer",
        description="Units in each hidden layer: one number for every layer, or a list with one "
        "width per layer from the input side (for example [256, 64]).",
    )
    loss: Literal["mse", "bce"] = Field(
        "mse",
        title="Reconstruction loss",
        description="mse: mean squared error, for continuous values. bce: binary cross-entropy, "
        "for values in [0, 1] read as pixel intensities or probabilities.",
    )
    noise: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        title="Noise level",
        description="Standard deviation of Gaussian noise added to the input during training "
        "only; the loss still compares with the clean input. 0 turns it off.",
    )

    @model_validator(mode="after")
    def _check_nodes(self) -> Params:
        widths = self.nodes if isinstance(self.nodes, list) else [self.nodes] * self.layers
        if isinstance(self.nodes, list) and len(self.nodes) != self.layers:
            raise ValueError(
                f"nodes lists {len(self.nodes)} widths but layers is {self.layers}; "
                "give one width per hidden layer or a single number"
            )
        for w in widths:
            if not 1 <= w <= 8192:
                raise ValueError(f"each layer width must be between 1 and 8192, got {w}")
        return self

    def widths(self) -> list[int]:
        """The width of each hidden layer, from the input side."""
        return list(self.nodes) if isinstance(self.nodes, list) else [self.nodes] * self.layers


class TrainConfig(BaseModel):
    """How to train: independent of the model."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(
        10, ge=1, le=100_000, title="Epochs", description="Passes over the training data."
    )
    batch_size: int = Field(
        64, ge=1, le=65_536, title="Batch size", description="Samples per optimisation step."
    )
    lr: float = Field(
        1e-3, gt=0.0, le=10.0, title="Learning rate", description="Step size of the optimiser."
    )
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field(
        "adam",
        title="Optimizer",
        description="Optimisation algorithm for every optimizer the model declares.",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Seeds weights, shuffling, noise and the validation split: the same seed "
        "gives the same losses on CPU.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        title="Device",
        description="auto picks CUDA, then Apple MPS, then the CPU.",
    )
    val_fraction: float = Field(
        0.2,
        ge=0.0,
        le=0.9,
        title="Validation fraction",
        description="Share of the data held out for the validation loss.",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        title="Precision",
        description="Arithmetic of the forward pass: fp32, or mixed precision under autocast "
        "(bf16, or fp16 with a gradient scaler); weights and optimizer state stay 32-bit. "
        "Mixed precision pays on GPUs with tensor cores; on a CPU, bf16 pays where the CPU "
        "has bf16 instructions (1.6-1.9x on this project's AMD EPYC) and fp16 is many times "
        "slower (no fp16 kernels).",
    )
    compile: bool = Field(
        False,
        title="Compile",
        description="Compile the model's networks with torch.compile before training; the "
        "first steps wait for the compiler. Pays for large convolutional models on a GPU.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=1024,
        title="Threads",
        description="CPU threads torch computes with in this process; 0 keeps torch's default "
        "(one per core).",
    )
    workers: int = Field(
        -1,
        ge=-1,
        le=64,
        title="Reader processes",
        description="Processes reading streamed data ahead of training; -1 picks one per "
        "spare core (at most 4), 0 reads in the training process. Data held in memory needs "
        "none.",
    )


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith(("function-after", "int", "list")))


def friendly(exc: ValidationError, what: str) -> ParamsError:
    """Turn a pydantic error into one sentence naming the field, the problem and what is expected."""
    parts = []
    for err in exc.errors():
        field_name = _field_path(err.get("loc", ()))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "is not a known setting"
        elif err.get("type") == "literal_error":
            msg = msg.replace("Input should be", "must be")
        else:
            msg = msg.replace("Input should be", "must be")
        parts.append(f"'{field_name}' {msg}" if field_name else msg)
    return ParamsError(f"Invalid {what}: " + "; ".join(parts) + ".")


def validate(cls: type[BaseModel], values: dict[str, Any], what: str = "parameters") -> Any:
    """Build ``cls`` from ``values``, raising ParamsError with one readable sentence."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        raise friendly(exc, what) from None


_NUMERIC = ("integer", "number")


def _numeric(prop: dict[str, Any]) -> bool:
    """Whether a schema property is a number (``float``, ``int``, or one of them or None)."""
    if prop.get("type") in _NUMERIC:
        return True
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    return bool(branches) and all(b.get("type") in _NUMERIC for b in branches)


def _bounds(prop: dict[str, Any]) -> tuple[bool, bool]:
    """Whether a numeric property has a lower and an upper bound (in any of its branches)."""
    parts = [prop, *prop.get("anyOf", [])]
    lo = any(k in p for p in parts for k in ("minimum", "exclusiveMinimum"))
    hi = any(k in p for p in parts for k in ("maximum", "exclusiveMaximum"))
    return lo, hi


def schema_problems(params_cls: Any, base: type[BaseModel] | None = None) -> list[str]:
    """What keeps a model's Params class from being shown and validated by the CLI and the lab:
    one phrase per problem, naming the parameter and what it lacks (empty when all is well).

    The rules: a subclass of :class:`Params` that keeps ``extra="forbid"``; every parameter has a
    ``title`` and a ``description``; every numeric one a lower and an upper bound. The plugin host
    refuses a model registered with any of these missing, and the conformance kit reports them.
    """
    base = base or Params
    if not (isinstance(params_cls, type) and issubclass(params_cls, base)):
        return [
            f"its params {params_cls!r} are not a subclass of {base.__module__}.{base.__name__}"
        ]
    problems = []
    if params_cls.model_config.get("extra") != "forbid":
        problems.append(
            f"its params allow unknown settings; keep model_config's extra='forbid' from {base.__name__}"
        )
    try:
        props = params_cls.model_json_schema().get("properties", {})
    except Exception as exc:  # noqa: BLE001 - any failure means no widget can be built
        return [*problems, f"its params have no JSON schema ({type(exc).__name__}: {exc})"]
    for name, info in params_cls.model_fields.items():
        prop = props.get(info.alias or name, {})
        missing = []
        numeric = _numeric(prop)
        if numeric:
            lo, hi = _bounds(prop)
            if not lo and not hi:
                missing.append("bounds (ge= or gt=, and le= or lt= in its Field)")
            elif not lo:
                missing.append("a lower bound (ge= or gt= in its Field)")
            elif not hi:
                missing.append("an upper bound (le= or lt= in its Field)")
        if not (info.description or prop.get("description") or "").strip():
            missing.append("a description (description= in its Field; the lab shows it as help)")
        if not (info.title or "").strip():
            missing.append("a title (title= in its Field; it labels the parameter's control)")
        if missing:
            listed = (
                missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
            )
            kind = "numeric parameter" if numeric else "parameter"
            problems.append(f"{kind} '{name}' lacks {listed}")
    return problems


def coerce_option(cls: type[BaseModel], key: str, raw: str) -> Any:
    """Parse a CLI ``-o key value`` string into the type the schema expects."""
    import json

    if key not in cls.model_fields:
        known = ", ".join(cls.model_fields)
        raise ParamsError(f"Unknown option '{key}'; this model's options are: {known}.")
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # plain strings such as "bce" need no quoting

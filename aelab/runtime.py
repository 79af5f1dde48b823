"""Run aelab exports with numpy and onnxruntime only: no torch, no onnx, nothing else heavy.

``load(path)`` takes an export folder (with its ``manifest.json``) or one ``.onnx`` file and
returns an :class:`ExportedModel` with ``encode``, ``decode``, ``reconstruct`` and ``sample`` as
far as the exported graphs allow.
"""

from __future__ import annotations

import base64
import math
import numbers
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import manifest as mf
from . import windowing
from .manifest import (  # noqa: F401 - part of this module's API
    MANIFEST,
    META_PREFIX,
    RuntimeInputError,
    RuntimeLoadError,
    sha256_file,
)
from .roles import ROLE_BY_NAME, ROLES
from .telemetry import disabled as telemetry_off  # noqa: F401 - part of this module's API
from .telemetry import ort  # onnxruntime, imported with its telemetry off

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# Benchmarked on the lab's models (benchmarks/bench_onnx.py): their graphs are small, batch-1
# latency gains nothing from a thread pool, and on a shared CPU a second thread lost throughput
# even at batch 1024. Callers with big batches on an idle machine pass threads=N (or set
# AELAB_ORT_THREADS).
DEFAULT_THREADS = 1
RANGE_SLACK = 1e-5  # float rounding at the edges of [0, 1] is not an error
STANDARD_NORMAL = "standard normal, N(0, I)"  # what a code or noise input holds by default
MAX_SAMPLE_BYTES = 1 << 30  # sample() draws at most 1 GiB of float32 inputs and outputs a call


# A 69-byte Identity model (opset 13) used only to find out whether CUDA really loads.
_PROBE_MODEL = base64.b64decode(
    "CAg6OwoQCgF4EgF5IghJZGVudGl0eRIFcHJvYmVaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAN"
)
_cuda_ok: bool | None = None
_probe_lock = threading.Lock()


# -- providers -----------------------------------------------------------------------------
def available_providers() -> list[str]:
    """Providers that can really run here, best first: CUDA only when it loads, then CPU."""
    return [PROVIDERS["cuda"], PROVIDERS["cpu"]] if cuda_works() else [PROVIDERS["cpu"]]


def cuda_works() -> bool:
    """Whether a CUDA session really starts (probed once, quietly, then cached)."""
    global _cuda_ok
    with _probe_lock:
        if _cuda_ok is None:
            _cuda_ok = _probe_cuda()
        return _cuda_ok


def _probe_cuda() -> bool:
    if PROVIDERS["cuda"] not in ort.get_available_providers():
        return False
    # onnxruntime-gpu logs an error through its default logger when the CUDA libraries are
    # missing; raise the threshold for the probe and put back onnxruntime's default (warning).
    ort.set_default_logger_severity(4)
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        session = ort.InferenceSession(
            _PROBE_MODEL, opts, providers=[PROVIDERS["cuda"], PROVIDERS["cpu"]]
        )
        return session.get_providers()[0] == PROVIDERS["cuda"]
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(2)


def _resolve_provider(provider: str) -> str:
    if provider is not None and not isinstance(provider, str):
        raise RuntimeInputError(f"Provider must be 'auto', 'cpu' or 'cuda', not {provider!r}.")
    choice = (provider or "auto").lower()
    if choice == "auto":
        return available_providers()[0]
    if choice not in PROVIDERS:
        raise RuntimeInputError(f"Provider must be 'auto', 'cpu' or 'cuda', not '{provider}'.")
    if choice == "cuda" and not cuda_works():
        raise RuntimeLoadError(
            "The CUDA provider was asked for but cannot load here (no GPU, or the CUDA and cuDNN "
            "libraries onnxruntime-gpu needs are missing); use provider='cpu' or 'auto'."
        )
    return PROVIDERS[choice]


def default_threads() -> int:
    """Intra-op threads when none are given: ``AELAB_ORT_THREADS`` or DEFAULT_THREADS."""
    raw = os.environ.get("AELAB_ORT_THREADS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_THREADS


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The session options aelab validates, benchmarks and runs with."""
    if threads is not None and not (_whole(threads) and 1 <= threads <= 1024):
        raise RuntimeInputError(f"threads must be a whole number from 1 to 1024, not {threads!r}.")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One graph of a few dense layers has no parallel branches: sequential mode, one inter-op
    # thread, and DEFAULT_THREADS intra-op threads unless the caller asks for more.
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = threads or default_threads()
    opts.log_severity_level = 3
    return opts


# -- preprocessing -------------------------------------------------------------------------
def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def apply_scaling(raw: np.ndarray, scaling: dict | None) -> np.ndarray:
    """Map raw values to [0, 1] float32 with a recorded scaling (none, divide or minmax), clipped."""
    scaling = scaling or {"method": "none"}
    method = scaling.get("method", "none")
    x = np.asarray(raw, dtype=np.float64)
    if method == "none":
        out = x
    elif method == "divide":
        out = x / float(scaling["scale"])
    elif method == "minmax":
        lo, hi = np.asarray(scaling["min"], np.float64), np.asarray(scaling["max"], np.float64)
        if lo.ndim == 1 and lo.size > 1:
            if lo.size != x.shape[-1]:
                raise RuntimeInputError(
                    f"The recorded scaling has {lo.size} features but the input has "
                    f"{x.shape[-1]} values per sample; pass data with the training features."
                )
        span = np.where(hi > lo, hi - lo, 1.0)
        out = (x - lo) / span
    elif method == windowing.WINDOW_METHOD:  # windows of a series, each on its own
        out = windowing.minmax_each_window(x)
    else:
        raise RuntimeInputError(
            f"Unknown scaling method '{method}'; expected none, divide, minmax or "
            f"{windowing.WINDOW_METHOD}."
        )
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _fit_shape(x: np.ndarray, shape: tuple[int, ...], graph: str, name: str) -> np.ndarray:
    """(N, *shape) from (N, *shape), one sample, (N, H, W) for one channel, or flat vectors."""
    size = math.prod(shape)
    if x.shape[1:] == shape and x.ndim == len(shape) + 1:
        return x
    if x.shape == shape:
        return x[None]
    if len(shape) == 3 and shape[0] == 1 and x.ndim in (2, 3) and x.shape[-2:] == shape[1:]:
        return x.reshape(-1, *shape)  # (H, W) or (N, H, W) for a one-channel input
    if (
        len(shape) == 3
        and x.ndim == 4
        and x.shape[1:] == (*shape[1:], shape[0])
        and shape[0] != shape[1]
    ):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # channels-last images
    if x.ndim == 2 and x.shape[1] == size:
        return x.reshape(-1, *shape)
    if x.ndim == 1 and x.size == size:
        return x.reshape(1, *shape)
    expected = "(N, " + ", ".join(map(str, shape)) + ")"
    flat = f" or N flat vectors of {size} values" if len(shape) > 1 else ""
    raise RuntimeInputError(
        f"Graph '{graph}' expects input '{name}' of shape {expected}{flat}, but got an array of "
        f"shape {tuple(x.shape)}."
    )


def graph_role(entry: dict) -> str:
    """A manifest entry's role; for an export written before roles, derived from its name."""
    role = entry.get("role")
    return role if role in ROLES else ROLE_BY_NAME.get(entry.get("name"), "other")


def graph_note(entry: dict) -> str | None:
    """What an unbounded input holds when it is not simply N(0, I) (the graph's input_note)."""
    takes = (entry.get("input") or {}).get("distribution")
    return takes if takes and takes != STANDARD_NORMAL else None


def graph_prior(entry: dict) -> str | None:
    """The distribution (``"normal"``: N(0, I)) a graph's input may be drawn from to generate
    data, or None. Exports written before priors were recorded are read as aelab then sampled:
    a decoder or sampler whose input is plain N(0, I) noise has a prior."""
    if "prior" in entry:
        return entry["prior"]
    plain = (entry.get("input") or {}).get("distribution") == STANDARD_NORMAL
    return "normal" if plain and graph_role(entry) in ("decoder", "sampler") else None


class ExportedModel:
    """The graphs of one export, each an onnxruntime session, with the lab's verbs on top.

    The verbs pick graphs by role (``roles``: graph name -> role), never by name, so a plugin
    may call its graphs anything; ``run`` and friends take a graph's name or a role.
    """

    def __init__(self, manifest: dict, files: dict[str, Path], provider: str, threads: int | None):
        self.manifest = manifest
        self._entries = {g["name"]: g for g in manifest["graphs"]}
        self.graphs: list[str] = list(self._entries)
        self.roles: dict[str, str] = {n: graph_role(g) for n, g in self._entries.items()}
        self.priors: dict[str, str | None] = {n: graph_prior(g) for n, g in self._entries.items()}
        self._role_graph: dict[str, str] = {}  # each role's first graph
        for name, role in self.roles.items():
            self._role_graph.setdefault(role, name)
        # Looked up on every call, so computed once.
        self._shapes = {n: tuple(g["input"]["shape"][1:]) for n, g in self._entries.items()}
        self._outputs = {n: [o["name"] for o in g["outputs"]] for n, g in self._entries.items()}
        opts = session_options(threads)
        self._sessions = {
            name: mf.session(path, opts, providers=_provider_list(provider))
            for name, path in files.items()
        }
        for name, session in self._sessions.items():
            problem = mf.session_problem(session, self._entries[name])
            if problem:
                raise RuntimeLoadError(
                    f"{files[name]} does not fit its entry in the manifest: {problem}."
                )
        ran = {s.get_providers()[0] for s in self._sessions.values()}
        # The provider that really runs, which can differ from the one asked for.
        self.provider: str = PROVIDERS["cpu"] if PROVIDERS["cpu"] in ran else provider

    def __repr__(self) -> str:
        return f"ExportedModel({self.manifest.get('model')!r}, graphs={self.graphs}, provider={self.provider!r})"

    # -- description -----------------------------------------------------------------------
    def graph_for(self, role: str) -> str | None:
        """The first graph with this role, or None."""
        return self._role_graph.get(role)

    def resolve(self, graph: str) -> str:
        """The graph called ``graph``, else the first graph whose role is ``graph``."""
        if not isinstance(graph, str):
            raise RuntimeInputError(f"Name a graph or a role as a string, not {graph!r}.")
        if graph in self._entries:
            return graph
        found = self.graph_for(graph)
        if found is None:
            raise RuntimeInputError(
                f"This export has no graph '{graph}'; it has: {self._listing()}."
            )
        return found

    def _listing(self) -> str:
        """The graphs, each with its role where the name does not say it."""
        return ", ".join(n if r == n else f"{n} ({r})" for n, r in self.roles.items())

    def input_shape(self, graph: str) -> tuple[int, ...]:
        """The per-sample input shape of a graph (a name or a role; the batch axis left out)."""
        return self._shapes[self.resolve(graph)]

    def output_names(self, graph: str) -> list[str]:
        """The names of a graph's outputs (a name or a role), in order."""
        return list(self._outputs[self.resolve(graph)])

    def _entry(self, graph: str) -> dict:
        return self._entries[self.resolve(graph)]

    def _by_role(self, role: str, verb: str) -> str:
        graph = self.graph_for(role)
        if graph is None:
            raise RuntimeInputError(
                f"This export cannot {verb}: it has no {role} graph, only {self._listing()}."
            )
        return graph

    # -- running ---------------------------------------------------------------------------
    def prepare(self, graph: str, x: Any, preprocess: bool = False) -> np.ndarray:
        """Check (and with ``preprocess`` scale) an input batch for a graph (a name or a role);
        one-sentence errors."""
        return self._prepare(self.resolve(graph), x, preprocess)

    def _prepare(self, graph: str, x: Any, preprocess: bool) -> np.ndarray:
        entry = self._entries[graph]
        spec = entry["input"]
        shape = self._shapes[graph]
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):  # ragged nested lists, or objects numpy cannot stack
            raise RuntimeInputError(
                f"Graph '{graph}' expects one rectangular array of numbers for input "
                f"'{spec['name']}', but the {type(x).__name__} given has rows of different "
                "lengths or values that are not numbers."
            ) from None
        # dtype kinds: f float; with preprocess also i/u integers and b booleans (raw values).
        if arr.dtype.kind != "f" and not (preprocess and arr.dtype.kind in "iub"):
            hint = " (or raw numbers with preprocess=True)" if spec.get("preprocessing") else ""
            raise RuntimeInputError(
                f"Graph '{graph}' expects float32 values{hint} for input '{spec['name']}', but got "
                f"an array of dtype {arr.dtype}."
            )
        arr = _fit_shape(arr, shape, graph, spec["name"])
        if preprocess and spec.get("preprocessing"):
            if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
                # Scaling clips, so an infinity would pass as 0 or 1: refuse it first.
                raise RuntimeInputError(_not_finite(graph, spec["name"]))
            arr = apply_scaling(arr, spec["preprocessing"].get("scaling"))
        with np.errstate(over="ignore"):  # too large for float32: refused just below
            arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not arr.size:
            raise RuntimeInputError(
                f"Graph '{graph}' got an empty batch; pass at least one sample."
            )
        # min and max propagate NaN and show infinities, so two reductions check everything.
        lo, hi = float(arr.min()), float(arr.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise RuntimeInputError(_not_finite(graph, spec["name"]))
        rng = spec.get("range")
        if rng is not None and (lo < rng[0] - RANGE_SLACK or hi > rng[1] + RANGE_SLACK):
            raise RuntimeInputError(
                f"Graph '{graph}' expects values in [{rng[0]:g}, {rng[1]:g}] for input "
                f"'{spec['name']}', but they run from {lo:.4g} to {hi:.4g}; pass "
                "preprocess=True to scale raw values as the training data was."
            )
        return arr

    def run(self, graph: str, x: Any, preprocess: bool = False) -> dict[str, np.ndarray]:
        """Run one graph (a name or a role) on a batch and return every output by name."""
        graph = self.resolve(graph)
        arr = self._prepare(graph, x, preprocess)
        # Naming the outputs saves onnxruntime looking them up on every call.
        names = self._outputs[graph]
        outs = self._session_run(graph, names, arr)
        return dict(zip(names, outs))

    def _session_run(self, graph: str, names: list[str], arr: np.ndarray) -> list[np.ndarray]:
        """onnxruntime's run, its failures (a file that does not match its manifest, loaded
        with verify=False) as one sentence."""
        try:
            return self._sessions[graph].run(names, {self._entries[graph]["input"]["name"]: arr})
        except Exception as exc:
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            raise RuntimeLoadError(
                f"Graph '{graph}' failed in onnxruntime ({mf.ort_reason(exc)}); its file does not "
                "match what the manifest says it takes and gives."
            ) from None

    def _first(self, graph: str, x: Any, preprocess: bool = False) -> np.ndarray:
        return next(iter(self.run(graph, x, preprocess).values()))

    def encode(self, x: Any, preprocess: bool = False) -> np.ndarray:
        """Codes for a batch through the encoder graph (a VAE's mean: its first output;
        ``run('encoder', x)`` gives all)."""
        return self._first(self._by_role("encoder", "encode"), x, preprocess)

    def decode(self, z: Any) -> np.ndarray:
        """Outputs for a batch of codes, through the decoder graph."""
        return self._first(self._by_role("decoder", "decode"), z)

    def reconstruct(self, x: Any, preprocess: bool = False) -> np.ndarray:
        """Encode then decode, through the autoencoder graph when there is one."""
        whole = self.graph_for("autoencoder")
        if whole is not None:
            return self._first(whole, x, preprocess)
        if self.graph_for("encoder") is not None and self.graph_for("decoder") is not None:
            return self.decode(self.encode(x, preprocess))
        raise RuntimeInputError(f"This export cannot reconstruct; it has: {self._listing()}.")

    def sampler(self) -> str:
        """The graph ``sample`` draws through: a sampler with a prior first, else a decoder with
        one; a one-sentence RuntimeInputError says why there is none."""
        drawn = [n for role in ("sampler", "decoder") for n, r in self.roles.items() if r == role]
        for name in drawn:
            if self.priors[name] == "normal" and not graph_note(self._entries[name]):
                return name
        for name in drawn:
            note = graph_note(self._entries[name])
            if note:
                raise RuntimeInputError(
                    f"Graph '{name}' takes {note}, not noise alone; build that input and call "
                    f"run('{name}', x)."
                )
        decoder = self.graph_for("decoder")
        if decoder is not None:
            raise RuntimeInputError(
                "This export cannot sample: decoding random codes of a plain autoencoder does "
                f"not generate data; its decoder '{decoder}' has no prior."
            )
        sampler = self.graph_for("sampler")
        if sampler is not None:
            raise RuntimeInputError(
                f"This export cannot sample: its sampler '{sampler}' declares no prior (a graph "
                "declares prior='normal' when N(0, I) noise through it generates data)."
            )
        raise RuntimeInputError(
            "This export cannot sample: it has no sampler or decoder with a prior, only "
            f"{self._listing()}."
        )

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new samples: N(0, I) codes or noise (seeded) through the graph with a prior
        (a sampler, else a decoder); refused where none has one (a plain autoencoder)."""
        graph = self.sampler()
        if not _whole(n) or n < 1:
            raise RuntimeInputError(
                f"The number of samples must be a whole number of at least 1, not {n!r}."
            )
        if seed is not None and not (_whole(seed) and seed >= 0):
            raise RuntimeInputError(
                f"The seed must be a whole number (0 or more) or None, not {seed!r}."
            )
        limit = self._sample_limit(graph)
        if n > limit:
            raise RuntimeInputError(
                f"sample draws at most {limit:,} samples a call from this export (1 GiB of "
                f"float32 inputs and outputs), not {n:,}; draw them in batches."
            )
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((int(n), *self.input_shape(graph)), dtype=np.float32)
        return self._first(graph, z)

    def _sample_limit(self, graph: str) -> int:
        """How many samples fit in MAX_SAMPLE_BYTES of the graph's inputs and outputs."""
        shapes = [self._entries[graph]["input"], *self._entries[graph]["outputs"]]
        values = sum(
            math.prod(d for d in (s.get("shape") or [])[1:] if _whole(d) and d > 0) for s in shapes
        )
        return max(1, MAX_SAMPLE_BYTES // (4 * max(1, values)))

    # -- time series (exports of a model trained on windows of a series) ------------------------
    def series_record(self) -> dict:
        """How the training series was cut: window, stride, scaling, channels (the manifest's
        ``preprocessing.series``); a RuntimeInputError when the model was not trained on one."""
        pre = self.manifest.get("preprocessing") or {}
        record = pre.get("series") or (
            self._entry(self.graphs[0])["input"].get("preprocessing") or {}
        ).get("series")
        if not isinstance(record, dict):
            raise RuntimeInputError(
                "This export was not trained on windows of a time series, so it cannot cut one."
            )
        problem = mf.series_problem(record)
        if problem:
            raise RuntimeLoadError(f"This export's manifest is not usable: {problem}.")
        return record

    def series_windows(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """A raw series (T,) or (T, C) cut and scaled exactly as the training series was: model
        inputs (N, C, window) float32 and the time step each window starts at."""
        record = self.series_record()
        try:
            series = windowing.as_series(values, len(record.get("channels") or []) or None)
            starts = windowing.window_starts(len(series), record["window"], record["stride"])
        except ValueError as exc:
            raise RuntimeInputError(str(exc)) from None
        raw = windowing.cut_windows(series, starts, record["window"])
        scaling = (self.manifest.get("preprocessing") or {}).get("scaling")
        return apply_scaling(raw, scaling), starts

    def reconstruct_series(self, values: Any) -> dict[str, np.ndarray]:
        """A raw series reconstructed window by window and put back on its time axis (each
        step the mean of the windows covering it): ``reconstruction`` (T, C) in the series'
        units, ``error`` (T,) and ``channel_error`` (T, C) squared errors in [0, 1] units
        averaged over the windows covering each step, ``window_error`` (N,) and ``starts``."""
        x, starts = self.series_windows(values)
        series = windowing.as_series(values)
        raw = windowing.cut_windows(series, starts, x.shape[-1])
        scaling = (self.manifest.get("preprocessing") or {}).get("scaling") or {}
        out = windowing.put_back(self.reconstruct(x), x, raw, starts, len(series), scaling)
        return {**out, "starts": starts}

    # -- anomaly detection (the record ``aelab export`` writes for a model that can score) -------
    def anomaly_record(self) -> dict:
        """The export's anomaly-detection record: score kind, graph, normalisation, threshold."""
        record = (self.manifest.get("applications") or {}).get("anomaly")
        if not isinstance(record, dict) or record.get("score") not in ("reconstruction", "critic"):
            why = (self.manifest.get("application_notes") or {}).get("anomaly")
            hint = (
                f"it was left out because {why[0].lower()}{why[1:]}"
                if why
                else "export a saved run of a model that reconstructs or has a discriminator "
                "(`aelab export RUN`) to get one."
            )
            raise RuntimeInputError(
                "This export carries no anomaly-detection record (a score, its normalisation and "
                f"a threshold); {hint}"
            )
        problem = mf.anomaly_problem(record)
        if problem:
            raise RuntimeLoadError(f"This export's manifest is not usable: {problem}.")
        return record

    def score(self, x: Any, preprocess: bool = False, normalize: bool = False) -> np.ndarray:
        """Anomaly scores per sample (float64, higher = more anomalous), as torch gives them:
        reconstruction MSE through the autoencoder graph, or the critic's logit negated;
        ``normalize`` gives (score - mean) / std of the scores on the run's normal data."""
        record = self.anomaly_record()
        graph = self.resolve(record["graph"])
        arr = self._prepare(graph, x, preprocess)
        if record["output"] not in self._outputs[graph]:
            raise RuntimeLoadError(
                f"This export's anomaly record names the output '{record['output']}', which graph "
                f"'{graph}' does not have."
            )
        out = self._session_run(graph, [record["output"]], arr)[0].astype(np.float64)
        if record["score"] == "reconstruction":
            s = ((out - arr.astype(np.float64)) ** 2).reshape(len(arr), -1).mean(axis=1)
        else:
            s = -out.reshape(len(arr), -1)[:, 0]
        if normalize:
            norm = record["normalization"]
            s = (s - norm["mean"]) / norm["std"]
        return s

    def is_anomaly(
        self, x: Any, preprocess: bool = False, threshold: float | None = None
    ) -> np.ndarray:
        """Whether each sample's score is at or above the exported threshold (or ``threshold``,
        in raw score units), as a bool array."""
        limit = self.anomaly_record()["threshold"] if threshold is None else float(threshold)
        return self.score(x, preprocess) >= limit


def _provider_list(provider: str) -> list[str]:
    return [provider] if provider == PROVIDERS["cpu"] else [provider, PROVIDERS["cpu"]]


# -- loading -------------------------------------------------------------------------------
def _not_finite(graph: str, name: str) -> str:
    return f"Input '{name}' of graph '{graph}' holds NaN or infinite values; pass finite numbers."


def load(
    path: str | os.PathLike,
    provider: str = "auto",
    threads: int | None = None,
    verify: bool = True,
) -> ExportedModel:
    """Load an export folder or one ``.onnx`` file; provider is 'auto', 'cpu' or 'cuda'.

    Every graph file is checked against the sha256 its manifest records (a single file too, when
    the manifest.json beside it lists it), and a manifest without checksums is refused;
    ``verify=False`` loads the files unchecked (files changed on purpose, or an export written
    without checksums).
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise RuntimeInputError(f"Pass an export folder or an .onnx file as a path, not {path!r}.")
    if not isinstance(verify, bool):
        raise RuntimeInputError(f"verify must be True or False, not {verify!r}.")
    p = Path(path)
    chosen = _resolve_provider(provider)
    session_options(threads)  # refuses a bad thread count before any file is read
    if p.is_dir():
        if not (p / MANIFEST).is_file():
            raise RuntimeLoadError(f"{p} holds no {MANIFEST}; it is not an aelab export folder.")
        manifest, files = mf.read_folder(p, verify)
    elif p.is_file():
        manifest, files = mf.read_file(p, verify)
    else:
        raise RuntimeLoadError(f"No export at {p}; pass an export folder or an .onnx file.")
    return ExportedModel(manifest, files, chosen, threads)

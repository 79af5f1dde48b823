"""Compression: quantise the code to b bits per unit, count the bytes against the raw input, and
measure the reconstruction error next to PCA at the same byte budget (``aelab compress``).

A compressed file (``.aez``) is ``AEZ1``, the header's length (4 bytes, little-endian), a JSON
header (run, model, weights fingerprint, bits, per-unit ranges, shapes, count), the codes as
one packed big-endian bit-stream of ``count × units × bits`` bits, and a CRC-32 of everything
before it (4 bytes). Nothing is pickled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .common import (
    add_force_json,
    add_image_size,
    aligned,
    check_batch,
    check_run_data,
    out_path,
    print_summary,
)
from .output import atomic_output, save_npy, write_pngs, written

HELP = """\
**How it works.** The encoder turns each sample into a code of *k* numbers. Each number is
quantised uniformly to *b* bits: 2ᵇ levels spread evenly between the unit's minimum and maximum
(over the data being compressed, so nothing is clipped, or over the training data, one fixed
scale for every file, with values outside it clipped). The integers are packed tightly, k·b bits
per sample, and decompressing maps them back to the nearest level and runs the decoder.

**Counting bytes.** *Bytes per sample* = k·b/8 for the packed code **plus the file's header
shared by all its samples**: the header (run, bits, the 2k float ranges, shapes) and 12 bytes of
framing, divided by the number of samples, exactly as `aelab compress --out` writes the file.
The raw size is **1 byte per pixel and channel for images** (8-bit, how images are stored) and
4 bytes per value (float32) for flat data; the *ratio* is raw bytes over compressed bytes, header
included. No entropy coding is applied: gzip or an arithmetic coder on the integers would save
more, for the model and PCA alike.

**Reading it.** MSE is the mean squared error over all values in [0, 1] and PSNR = 10·log₁₀(1 /
MSE) dB (higher is better; +3 dB halves the error). The *unquantised* figure decodes the float
code: the gap to it is what quantisation costs. Each extra bit halves the step, so the
quantisation noise falls by about 6 dB per bit until the model's own error dominates; 6-8 bits
usually make it negligible, 1-2 bits are a hard test of how smooth the decoder is.

**Against PCA.** The baseline keeps as many principal components (fitted on the training part)
as the model has code units, quantised the same way, so it costs exactly the same bytes. PCA is
the best *linear* code and strong on small, simple images such as 8×8 digits; a non-linear
autoencoder earns its keep at small codes. Autoencoder compression is lossy and data-specific:
a model trained on digits compresses digits, not photographs, and general codecs (JPEG, PNG)
remain better on arbitrary images.

**Files.** `aelab compress RUN INPUT --out data.aez` writes the file and `aelab compress RUN
--decompress data.aez --out recon.npy` (or a folder of PNGs) restores it; only the same run,
with the same weights, can decode it.
"""

MAGIC = b"AEZ1"
FORMAT = "aelab-compressed"
VERSION = 1
FRAMING = len(MAGIC) + 4 + 4  # magic, header length, CRC-32 trailer
SWEEP_BITS = tuple(range(1, 13))  # the rate-distortion sweep of the lab and `--sweep`
MAX_PSNR = 100.0
RangeFrom = Literal["data", "training"]
RANGE_TEXT = {"data": "the data compressed", "training": "the training data"}


class CompressParams(AppParams):
    """How many bits per code unit, where the quantisation range comes from, batch size."""

    bits: int = Field(
        8,
        ge=1,
        le=16,
        title="Bits per code unit",
        description="Each code unit is stored as an integer of this many bits (2^bits levels).",
    )
    range_from: RangeFrom = Field(
        "data",
        title="Quantisation range",
        description="data: each unit's min and max over the samples being compressed (nothing "
        "is clipped); training: over the training data's codes (one fixed scale, values outside "
        "are clipped). The range is stored in the compressed file either way.",
    )
    batch_size: int = Field(
        1024,
        ge=1,
        le=65536,
        title="Batch size",
        description="Samples encoded or decoded per forward pass.",
    )


# -- quantisation and packing -----------------------------------------------------------------
def header_number(value: np.float32) -> float:
    """A float32 as the shortest number the header can hold that reads back as exactly it."""
    short = float(str(value))
    return short if np.float32(short) == value else float(value)


@dataclass
class Quantiser:
    """Uniform quantisation of each code unit to ``bits`` bits between ``lo`` and ``hi``."""

    lo: np.ndarray  # (units,) float32
    hi: np.ndarray  # (units,) float32
    bits: int

    @classmethod
    def fit(cls, codes: np.ndarray, bits: int) -> Quantiser:
        """Per-unit min and max of ``codes`` (N, units)."""
        codes = np.asarray(codes, dtype=np.float32)
        return cls(codes.min(axis=0), codes.max(axis=0), int(bits))

    @property
    def levels(self) -> int:
        """The largest integer stored, 2^bits − 1."""
        return (1 << self.bits) - 1

    def _step(self) -> np.ndarray:
        span = np.where(self.hi > self.lo, self.hi - self.lo, np.float32(1.0))
        return (span / np.float32(self.levels)).astype(np.float32)

    def quantise(self, codes: np.ndarray) -> np.ndarray:
        """The nearest level of every value, as integers in [0, 2^bits − 1] (clipped)."""
        z = np.asarray(codes, dtype=np.float64)
        q = np.rint((z - self.lo.astype(np.float64)) / self._step().astype(np.float64))
        return np.clip(q, 0, self.levels).astype(np.uint32)

    def dequantise(self, q: np.ndarray) -> np.ndarray:
        """The code values of the levels ``q`` (float32)."""
        return (self.lo + np.asarray(q, dtype=np.float32) * self._step()).astype(np.float32)


def pack(q: np.ndarray, bits: int) -> bytes:
    """Integers of ``bits`` bits each as one big-endian bit-stream, zero-padded to whole bytes."""
    flat = np.asarray(q, dtype=np.uint32).reshape(-1)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    stream = ((flat[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(stream.reshape(-1)).tobytes()


def unpack(payload: bytes, bits: int, count: int) -> np.ndarray:
    """The first ``count`` integers of ``bits`` bits each from a packed bit-stream."""
    stream = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=count * bits)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    return (stream.reshape(count, bits).astype(np.uint32) << shifts).sum(axis=1, dtype=np.uint32)


def payload_bytes(n: int, units: int, bits: int) -> int:
    """Bytes of the packed codes of ``n`` samples."""
    return math.ceil(n * units * bits / 8)


def fingerprint(model: Any) -> str:
    """A short hash of the model's weights: a file decodes only with the weights that made it."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode("utf-8"))
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# -- the codes of the model and of PCA ----------------------------------------------------------
def _encode(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    from .. import inspect as ins

    codes = ins.encode(model, x, batch_size=batch_size).astype(np.float32)
    if not np.isfinite(codes).all():
        raise ApplicationError(
            "The model's codes hold NaN or infinite values (did its training diverge?); they "
            "cannot be quantised."
        )
    return codes


def decode(model: Any, codes: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Samples decoded from flat codes (N, units), in eval mode, clipped to [0, 1]."""
    import torch

    was = model.training
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    out = []
    with torch.no_grad():
        for i in range(0, len(codes), batch_size):
            z = torch.as_tensor(np.asarray(codes[i : i + batch_size], np.float32), device=device)
            out.append(model.decode(z.reshape(len(z), *model.code_shape)).cpu().numpy())
    model.train(was)
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)


@dataclass
class _Coder:
    """A code of the data (the model's or PCA's), and how to turn codes back into samples."""

    codes: np.ndarray  # (N, k) float32, of the samples being compressed
    train_codes: np.ndarray | None  # (M, k), of the training data (for range_from="training")
    restore: Callable[[np.ndarray], np.ndarray]  # (N, k) codes -> samples clipped to [0, 1]

    def quantiser(self, bits: int, range_from: str) -> Quantiser:
        if range_from == "training":
            if self.train_codes is None:
                raise ApplicationError(
                    "The quantisation range 'training' needs the training data; pass it, or use "
                    "the range of the data being compressed ('data')."
                )
            return Quantiser.fit(self.train_codes, bits)
        return Quantiser.fit(self.codes, bits)


def _model_coder(model: Any, x: np.ndarray, x_train: np.ndarray | None, params: Any) -> _Coder:
    bs = params.batch_size
    train = _encode(model, x_train, bs) if params.range_from == "training" else None
    return _Coder(_encode(model, x, bs), train, lambda z: decode(model, z, bs))


def _pca_coder(x: np.ndarray, x_train: np.ndarray, components: int) -> tuple[_Coder, int]:
    from sklearn.decomposition import PCA

    flat_train = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    k = int(max(1, min(components, flat_train.shape[1], len(flat_train))))
    pca = PCA(k, random_state=0).fit(flat_train)
    shape = x.shape[1:]

    def restore(t: np.ndarray) -> np.ndarray:
        flat = pca.inverse_transform(np.asarray(t, np.float64))
        return np.clip(flat, 0.0, 1.0).astype(np.float32).reshape(len(t), *shape)

    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    codes = pca.transform(flat).astype(np.float32)
    return _Coder(codes, pca.transform(flat_train).astype(np.float32), restore), k


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference over every value."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(error: float) -> float:
    """PSNR in dB of a mean squared error for values in [0, 1], capped at 100 dB."""
    return float(min(MAX_PSNR, 10.0 * math.log10(1.0 / max(error, 10 ** (-MAX_PSNR / 10)))))


# -- the core ------------------------------------------------------------------------------------
def header(
    identity: dict[str, str],
    quantiser: Quantiser,
    range_from: str,
    code_shape: tuple[int, ...],
    data_shape: tuple[int, ...],
) -> dict[str, Any]:
    """The JSON header of a file of ``data_shape[0]`` samples (see the module's docstring)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        **identity,
        "bits": quantiser.bits,
        "range_from": range_from,
        "code_shape": list(code_shape),
        "sample_shape": list(data_shape[1:]),
        "kind": "image" if len(data_shape) == 4 else "flat",
        "count": int(data_shape[0]),
        "lo": [header_number(v) for v in quantiser.lo],
        "hi": [header_number(v) for v in quantiser.hi],
    }


@dataclass
class CompressResult:
    """Quantised codes of a batch, their reconstructions, the sizes and the PCA baseline."""

    x: np.ndarray  # the originals (N, ...) in [0, 1]
    q: np.ndarray  # (N, units) integers
    quantiser: Quantiser
    reconstruction: np.ndarray  # decoded from the quantised code
    unquantised: np.ndarray  # decoded from the float code
    code_shape: tuple[int, ...]
    params: CompressParams
    identity: dict[str, str]  # run, model and weights fingerprint, as written in the header
    pca_reconstruction: np.ndarray | None = None
    pca_unquantised: np.ndarray | None = None
    pca_components: int = 0
    pca_fitted_on: str = ""
    _figures: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(len(self.x))

    @property
    def units(self) -> int:
        return int(self.q.shape[1])

    @property
    def is_image(self) -> bool:
        """Whether the samples are (C, H, W) images."""
        return self.x.ndim == 4

    def header(self) -> dict[str, Any]:
        """What the compressed file's JSON header holds."""
        return header(
            self.identity, self.quantiser, self.params.range_from, self.code_shape, self.x.shape
        )

    def header_bytes(self) -> bytes:
        return json.dumps(self.header(), separators=(",", ":")).encode("utf-8")

    def sizes(self) -> dict[str, Any]:
        """Bytes: raw, of the packed code, of the header, of the file, per sample and ratio."""
        n, units, bits = self.n, self.units, self.quantiser.bits
        values = int(np.prod(self.x.shape[1:]))
        overhead = FRAMING + len(self.header_bytes())
        file_bytes = overhead + payload_bytes(n, units, bits)
        raw = values if self.is_image else 4 * values
        return {
            "raw_bytes_per_sample": raw,
            "raw_counted_as": "8-bit pixels" if self.is_image else "float32 values",
            "raw_float32_bytes_per_sample": 4 * values,
            "raw_8bit_bytes_per_sample": values if self.is_image else None,
            "code_bytes_per_sample": units * bits / 8,
            "header_bytes": overhead,
            "file_bytes": file_bytes,
            "bytes_per_sample": file_bytes / n,
            "ratio": raw * n / file_bytes,
        }

    def figures(self) -> dict[str, float]:
        """MSE and PSNR of the model and of PCA, quantised and not."""
        if not self._figures:
            f = {
                "mse": mse(self.reconstruction, self.x),
                "mse_unquantised": mse(self.unquantised, self.x),
            }
            if self.pca_reconstruction is not None:
                f["pca_mse"] = mse(self.pca_reconstruction, self.x)
                f["pca_mse_unquantised"] = mse(self.pca_unquantised, self.x)
            for key in list(f):
                f[key.replace("mse", "psnr")] = psnr(f[key])
            self._figures = f
        return self._figures

    def to_json(self) -> dict[str, Any]:
        """A summary without the arrays: sizes, errors, the quantisation cost, PCA."""
        f = self.figures()
        s = self.sizes()
        out: dict[str, Any] = {
            "n": self.n,
            "kind": "image" if self.is_image else "flat",
            **{k: v for k, v in self.identity.items() if k != "weights"},
            "units": self.units,
            "bits": self.quantiser.bits,
            "range_from": self.params.range_from,
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()},
            "mse": round(f["mse"], 7),
            "psnr": round(f["psnr"], 3),
            "mse_unquantised": round(f["mse_unquantised"], 7),
            "psnr_unquantised": round(f["psnr_unquantised"], 3),
            # + 0.0: a cost that rounds to zero reads 0.0, not -0.0
            "quantisation_cost_db": round(f["psnr_unquantised"] - f["psnr"], 3) + 0.0,
        }
        if self.pca_reconstruction is not None:
            out["pca"] = {
                "components": self.pca_components,
                "fitted_on": self.pca_fitted_on,
                "code_bytes_per_sample": self.pca_components * self.quantiser.bits / 8,
                "mse": round(f["pca_mse"], 7),
                "psnr": round(f["pca_psnr"], 3),
                "mse_unquantised": round(f["pca_mse_unquantised"], 7),
                "psnr_unquantised": round(f["pca_psnr_unquantised"], 3),
            }
            out["psnr_gain_vs_pca"] = round(f["psnr"] - f["pca_psnr"], 3)
        return out


def _identity(model: Any, run_id: str | None, model_id: str | None) -> dict[str, str]:
    return {
        "run": run_id or "",
        "model": model_id or getattr(getattr(model, "spec", None), "id", "") or "",
        "weights": fingerprint(model),
    }


def compress(
    model: Any,
    x: np.ndarray,
    params: CompressParams,
    *,
    x_train: np.ndarray | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    baseline: bool = True,
) -> CompressResult:
    """Encode ``x``, quantise the code to ``params.bits`` bits per unit, decode it; with
    ``baseline`` also PCA at the same bytes, fitted on ``x_train`` (on ``x`` when None)."""
    SPEC.require(model)
    x = check_batch(model, x, "The data")
    if x_train is not None:
        x_train = check_batch(model, x_train, "The training data")
    coder = _model_coder(model, x, x_train, params)
    quantiser = coder.quantiser(params.bits, params.range_from)
    q = quantiser.quantise(coder.codes)
    result = CompressResult(
        x=x,
        q=q,
        quantiser=quantiser,
        reconstruction=coder.restore(quantiser.dequantise(q)),
        unquantised=coder.restore(coder.codes),
        code_shape=tuple(model.code_shape),
        params=params,
        identity=_identity(model, run_id, model_id),
    )
    if baseline:
        fit_on = x if x_train is None else x_train
        pca, k = _pca_coder(x, fit_on, result.units)
        pq = pca.quantiser(params.bits, params.range_from)
        result.pca_reconstruction = pca.restore(pq.dequantise(pq.quantise(pca.codes)))
        result.pca_unquantised = pca.restore(pca.codes)
        result.pca_components = k
        result.pca_fitted_on = "the compressed data" if x_train is None else "the training data"
    return result


def rate_distortion(
    model: Any,
    x: np.ndarray,
    params: CompressParams,
    *,
    x_train: np.ndarray | None = None,
    bits: tuple[int, ...] = SWEEP_BITS,
    run_id: str | None = None,
    model_id: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """MSE and PSNR of the model and of PCA at the same bytes, for every number of bits.

    Bytes per sample count a file of ``x`` as ``--out`` writes it: the packed code (units ×
    bits / 8) plus the header and framing divided by the number of samples."""
    SPEC.require(model)
    x = check_batch(model, x, "The data")
    if x_train is not None:
        x_train = check_batch(model, x_train, "The training data")
    coder = _model_coder(model, x, x_train, params)
    units = coder.codes.shape[1]
    pca, k = _pca_coder(x, x if x_train is None else x_train, units)
    identity = _identity(model, run_id, model_id)
    rows = []
    for i, b in enumerate(bits):
        if progress is not None:
            progress(i / len(bits), f"{b} bit(s) per unit")
        qz = coder.quantiser(b, params.range_from)
        head = header(identity, qz, params.range_from, tuple(model.code_shape), x.shape)
        size = (
            FRAMING + len(json.dumps(head, separators=(",", ":"))) + payload_bytes(len(x), units, b)
        )
        row: dict[str, Any] = {
            "bits": b,
            "bytes_per_sample": size / len(x),
            "code_bytes_per_sample": units * b / 8,
        }
        for name, c in (("model", coder), ("pca", pca)):
            qz = c.quantiser(b, params.range_from)
            error = mse(c.restore(qz.dequantise(qz.quantise(c.codes))), x)
            row[f"{name}_mse"] = error
            row[f"{name}_psnr"] = psnr(error)
        rows.append(row)
    if progress is not None:
        progress(1.0, "done")
    for row in rows:
        row["pca_components"] = k
    return rows


# -- the file ----------------------------------------------------------------------------------
def to_bytes(result: CompressResult) -> bytes:
    """The compressed file's bytes (see the module's docstring for the layout)."""
    header = result.header_bytes()
    body = MAGIC + struct.pack("<I", len(header)) + header + pack(result.q, result.quantiser.bits)
    return body + struct.pack("<I", zlib.crc32(body))


def write(result: CompressResult, out: Path, force: bool = False) -> Path:
    """Write the compressed file atomically (never over an existing one without ``force``)."""
    out = Path(out)
    if out.suffix.lower() != ".aez":
        raise ApplicationError(f"Write compressed samples to a .aez file, not {out.name}.")
    blob = to_bytes(result)
    with atomic_output(out, force) as tmp:
        tmp.write_bytes(blob)
    return out


@dataclass
class Decompressed:
    """What a compressed file holds, decoded."""

    header: dict[str, Any]
    q: np.ndarray
    quantiser: Quantiser
    samples: np.ndarray  # (count, *sample_shape) in [0, 1]
    file_bytes: int

    def to_json(self) -> dict[str, Any]:
        h = self.header
        return {
            "run": h["run"],
            "model": h["model"],
            "n": int(h["count"]),
            "kind": h["kind"],
            "sample_shape": h["sample_shape"],
            "units": len(h["lo"]),
            "bits": h["bits"],
            "range_from": h["range_from"],
            "file_bytes": self.file_bytes,
            "bytes_per_sample": round(self.file_bytes / int(h["count"]), 4),
        }


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and v > 0 for v in value)


def read_file(path: Path) -> tuple[dict[str, Any], np.ndarray, Quantiser, int]:
    """Header, integers and quantiser of a compressed file, refusing a damaged one."""
    path = Path(path)
    if not path.is_file():
        raise ApplicationError(f"No compressed file at {path}.")
    blob = path.read_bytes()
    if len(blob) < FRAMING or blob[:4] != MAGIC:
        raise ApplicationError(
            f"{path} is not an aelab compressed file: it does not start with {MAGIC.decode()}."
        )
    (length,) = struct.unpack("<I", blob[4:8])
    (crc,) = struct.unpack("<I", blob[-4:])
    if 8 + length + 4 > len(blob) or zlib.crc32(blob[:-4]) != crc:
        raise ApplicationError(
            f"{path} is damaged or truncated: its CRC-32 checksum does not match its contents."
        )
    try:
        header = json.loads(blob[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        header = None
    keys = ("run", "model", "weights", "bits", "code_shape", "sample_shape", "count", "lo", "hi")
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or any(k not in header for k in keys)
    ):
        raise ApplicationError(f"{path} has no valid {FORMAT} header.")
    if header.get("version") != VERSION:
        raise ApplicationError(
            f"{path} is format version {header.get('version')}; this aelab reads version {VERSION}."
        )
    bits, count = header["bits"], header["count"]
    units = math.prod(header["code_shape"]) if _int_list(header["code_shape"]) else -1
    if (
        not isinstance(bits, int)
        or not 1 <= bits <= 16
        or not isinstance(count, int)
        or count < 1
        or units < 1
        or not _int_list(header["sample_shape"])
        or not isinstance(header["lo"], list)
        or not isinstance(header["hi"], list)
        or len(header["lo"]) != units
        or len(header["hi"]) != units
    ):
        raise ApplicationError(
            f"{path} has an inconsistent header (bits, count, shapes or ranges do not fit)."
        )
    payload = blob[8 + length : -4]
    if len(payload) != payload_bytes(count, units, bits):
        raise ApplicationError(
            f"{path} holds {len(payload)} bytes of codes, but its header announces "
            f"{payload_bytes(count, units, bits)} ({count} samples × {units} units × {bits} bits)."
        )
    try:
        lo = np.asarray(header["lo"], dtype=np.float64).astype(np.float32)
        hi = np.asarray(header["hi"], dtype=np.float64).astype(np.float32)
    except (TypeError, ValueError):
        raise ApplicationError(f"{path} has ranges that are not numbers.") from None
    q = unpack(payload, bits, count * units).reshape(count, units)
    return header, q, Quantiser(lo, hi, bits), len(blob)


def decompress(
    model: Any, path: Path, run_id: str | None = None, batch_size: int = 1024
) -> Decompressed:
    """Decode a compressed file with the run that wrote it (its id and weights must match)."""
    SPEC.require(model)
    header, q, quantiser, size = read_file(path)
    if run_id is not None and header["run"] != run_id:
        raise ApplicationError(
            f"{path} was made by run '{header['run']}', not '{run_id}'; decompress it with that "
            "run."
        )
    if header["weights"] != fingerprint(model):
        raise ApplicationError(
            f"{path} was made by other weights than run '{run_id or header['run']}' has now "
            "(trained further since?); its codes cannot be decoded faithfully."
        )
    if list(header["sample_shape"]) != list(model.sample_shape) or list(
        header["code_shape"]
    ) != list(model.code_shape):
        raise ApplicationError(
            f"{path} holds samples of shape {header['sample_shape']} with codes of "
            f"{header['code_shape']}, but the model has {list(model.sample_shape)} and "
            f"{list(model.code_shape)}."
        )
    samples = decode(model, quantiser.dequantise(q), batch_size)
    return Decompressed(header, q, quantiser, samples, size)


def write_samples(samples: np.ndarray, out: Path, force: bool = False) -> list[Path]:
    """Decompressed samples as a .npy (scaled like the data, in [0, 1]) or, for images, a
    folder of PNGs; written atomically."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in ("", ".npy"):
        raise ApplicationError(
            f"Write decompressed samples to a .npy file or (images) a folder, not {out.name}."
        )
    if suffix == "" and samples.ndim != 4:
        raise ApplicationError(
            "These samples are flat vectors, not images: write them to a .npy file."
        )
    with atomic_output(out, force, folder=suffix == "") as tmp:
        if suffix == "":
            write_pngs(samples, tmp)
        else:
            save_npy(tmp, samples)
    return written(out)


# -- the command -------------------------------------------------------------------------------
def _data(args: argparse.Namespace, run: Any) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The samples to compress, the training part (for PCA and the 'training' range) or None,
    and the data's name."""
    from ..data import load_data, load_run_data
    from ..errors import DataError

    wanted = args.input or args.data
    try:
        train, val = load_run_data(run.data_meta, run.config.val_fraction, run.config.seed)
    except DataError:
        if not wanted:
            raise ApplicationError(
                "Pass INPUT or --data: the run's own data cannot be reloaded."
            ) from None
        train = val = None
    if wanted:
        data = load_data(wanted, image_size=args.image_size)
        name = data.name
    else:
        data = val if val is not None else train
        name = f"{data.name} (held-out part)" if val is not None else data.name
    check_run_data(data, run)
    return data.x, None if train is None else train.x, name


def _text(s: dict[str, Any]) -> str:
    """The summary as aligned ``name value`` lines."""
    rows = [
        ("run", s["run"]),
        ("data", f"{s['data']} ({s['n']} samples, {s['kind']})"),
        (
            "code",
            f"{s['units']} units x {s['bits']} bits = {s['code_bytes_per_sample']:g} bytes "
            f"per sample (range of {RANGE_TEXT[s['range_from']]})",
        ),
        (
            "file",
            f"{s['file_bytes']} bytes = {s['bytes_per_sample']:.3f} per sample (header "
            f"{s['header_bytes']} bytes shared)",
        ),
        (
            "raw",
            f"{s['raw_bytes_per_sample']} bytes per sample ({s['raw_counted_as']}): ratio "
            f"{s['ratio']:.2f}x",
        ),
        (
            "model",
            f"MSE {s['mse']:.6f}, PSNR {s['psnr']:.2f} dB (unquantised {s['psnr_unquantised']:.2f}"
            f" dB: quantisation costs {round(s['quantisation_cost_db'], 2) + 0.0:.2f} dB)",
        ),
    ]
    if "pca" in s:
        p = s["pca"]
        rows.append(
            (
                "PCA",
                f"{p['components']} components x {s['bits']} bits: MSE {p['mse']:.6f}, PSNR "
                f"{p['psnr']:.2f} dB (unquantised {p['psnr_unquantised']:.2f} dB; fitted on "
                f"{p['fitted_on']})",
            )
        )
        rows.append(("model - PCA", f"{s['psnr_gain_vs_pca']:+.2f} dB"))
    if s.get("out"):
        rows.append(("written to", s["out"]))
    return aligned(rows)


def _cmd_decompress(args: argparse.Namespace) -> int:
    from ..runs import load_run

    if args.input or args.data:
        raise ApplicationError(
            "Pass either --decompress FILE (to restore it) or data to compress, not both."
        )
    out = out_path(args)
    run = load_run(args.run)
    result = decompress(run.model, Path(args.decompress), run.run_id, args.batch_size)
    files = write_samples(result.samples, out, args.force) if out is not None else []
    summary = {**result.to_json(), "out": args.out, "files": len(files)}
    where = f"; written to {args.out} ({len(files)} file(s))" if out is not None else ""
    print_summary(
        summary,
        args.json,
        lambda: (
            f"Restored {summary['n']} sample(s) of shape {summary['sample_shape']} from "
            f"{args.decompress} ({summary['units']} units x {summary['bits']} bits, "
            f"{summary['bytes_per_sample']:g} bytes per sample){where}."
        ),
    )
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    """``aelab compress RUN [INPUT] [--bits B] [--out F.aez] [--json]`` and
    ``aelab compress RUN --decompress F.aez [--out recon.npy|folder]``."""
    from ..runs import load_run

    if args.decompress:
        return _cmd_decompress(args)
    if args.input and args.data:
        raise ApplicationError("Pass the data to compress as INPUT or as --data, not both.")
    if args.out and Path(args.out).suffix.lower() != ".aez":
        raise ApplicationError(
            f"Write compressed samples to a .aez file, not {Path(args.out).name}."
        )
    out = out_path(args)
    params = SPEC.validate_params(
        {"bits": args.bits, "range_from": args.range_from, "batch_size": args.batch_size}
    )
    run = load_run(args.run)
    SPEC.require(run.model)
    x, x_train, name = _data(args, run)
    result = compress(
        run.model, x, params, x_train=x_train, run_id=run.run_id, model_id=run.spec.id
    )
    if out is not None:
        write(result, out, args.force)
    summary = {"data": name, **result.to_json(), "out": args.out}
    print_summary(summary, args.json, lambda: _text(summary))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab compress``."""
    s = sub.add_parser(
        "compress",
        help="quantise codes to b bits: bytes against raw, error against PCA; .aez files",
        description="Without --out: report bytes per sample, compression ratio and error "
        "(MSE, PSNR) of the model's code quantised to --bits bits per unit, next to PCA at the "
        "same bytes (default data: the run's held-out part). With --out F.aez: also write the "
        "compressed file. With --decompress F.aez: restore it (--out recon.npy or a folder of "
        "PNGs).",
    )
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("input", nargs="?", help="data to compress: a built-in name or a data file")
    s.add_argument("--data", help="same as INPUT (default: the run's held-out part)")
    s.add_argument("--bits", type=int, default=8, help="bits per code unit, 1-16 (8)")
    s.add_argument(
        "--range",
        dest="range_from",
        choices=["data", "training"],
        default="data",
        help="quantisation range per unit: of the data compressed (default) or the training data",
    )
    s.add_argument("--decompress", metavar="FILE", help="a .aez file to restore")
    s.add_argument(
        "--out",
        help="compressing: the .aez file to write; decompressing: a .npy or a folder (PNGs)",
    )
    s.add_argument("--batch-size", type=int, default=1024, help="samples per forward pass (1024)")
    add_image_size(s)
    add_force_json(s)
    s.set_defaults(func=cmd_compress)


def _serves(model: Any) -> str | None:
    if getattr(model, "code_kind", "continuous") == "discrete":
        return (
            "Compression quantises a continuous code, but this model's code is already made of "
            "codebook indices."
        )
    return None


SPEC = ApplicationSpec(
    id="compress",
    name="Compression",
    description="Quantises the code to a few bits per unit and reports bytes per sample, the "
    "compression ratio and the reconstruction error, next to PCA at the same bytes.",
    params=CompressParams,
    run=lambda model, data, params: compress(model, data.x, params),
    needs=frozenset({"encode", "decode"}),
    serves=_serves,
    cli=add_command,
    panel="aelab.ui.panels.compress:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register compression."""
    register(SPEC)

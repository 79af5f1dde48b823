"""Hardening of the torch-free runtime (issue 12): its own one-sentence errors for every bad call
and every unusable manifest, integrity checks on what it loads, and no telemetry.

Every export here is real (torch → ONNX, validated) and every check runs real onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from aelab import runtime
from aelab.cli import main
from aelab.export import export_model
from aelab.plugins import get_model

SCALING = {"method": "divide", "scale": 16.0}
META = {"name": "digits", "kind": "image", "sample_shape": [1, 8, 8], "scaling": SCALING}
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Seeded, untrained exports of an autoencoder (no prior) and a VAE (a decoder with one)."""
    base = tmp_path_factory.mktemp("hardening")
    out = {}
    for model_id in ("autoencoder", "vae"):
        spec = get_model(model_id)
        torch.manual_seed(0)
        model = spec.build({"code_size": 4}, (1, 8, 8), "image").eval()
        out[model_id] = base / model_id
        export_model(
            model, spec, model.params, run_id=model_id, data_meta=META, out_dir=base / model_id
        )
    return out


def _digits(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


def _one_sentence(exc: BaseException) -> str:
    """The message, checked: the runtime's own class, one line, one sentence, no raw text."""
    assert type(exc) in (runtime.RuntimeInputError, runtime.RuntimeLoadError), repr(exc)
    message = str(exc)
    assert message.endswith(".") and "\n" not in message, message
    assert message.count(". ") == 0, message  # one sentence
    for raw in ("Traceback", "InvalidProtobuf", "ONNXRuntimeError", "Errno", "KeyError"):
        assert raw not in message, message
    return message


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


# -- 1. the runtime's documented errors ------------------------------------------------------
BAD_CALLS = {
    "ragged list": (
        lambda ae, vae: ae.reconstruct([[0.1, 0.2], [0.3]]),
        "one rectangular array of numbers",
    ),
    "ragged nested list": (
        lambda ae, vae: ae.encode([[[0.1] * 8] * 8, [[0.1] * 8] * 7]),
        "rows of different lengths",
    ),
    "sample 10**12": (lambda ae, vae: vae.sample(10**12), "draw them in batches"),
    "sample 'abc'": (lambda ae, vae: vae.sample("abc"), "whole number of at least 1, not 'abc'"),
    "sample -1": (lambda ae, vae: vae.sample(-1), "at least 1, not -1"),
    "sample 2.5": (lambda ae, vae: vae.sample(2.5), "whole number of at least 1, not 2.5"),
    "sample True": (lambda ae, vae: vae.sample(True), "whole number"),
    "sample seed 'x'": (lambda ae, vae: vae.sample(3, seed="x"), "seed must be a whole number"),
    "sample seed -1": (lambda ae, vae: vae.sample(3, seed=-1), "seed must be a whole number"),
    "object array": (
        lambda ae, vae: ae.reconstruct(np.array([{"a": 1}, None], dtype=object)),
        "dtype object",
    ),
    "strings": (lambda ae, vae: ae.reconstruct(np.array(["0.5"] * 64)), "expects float32"),
    "complex numbers": (
        lambda ae, vae: ae.reconstruct(np.zeros((1, 1, 8, 8), np.complex64)),
        "expects float32",
    ),
    "wrong shape": (
        lambda ae, vae: ae.reconstruct(np.zeros((2, 3, 5), np.float32)),
        "of shape (N, 1, 8, 8) or N flat vectors of 64 values",
    ),
    "a scalar": (lambda ae, vae: ae.reconstruct(np.float32(0.5)), "got an array of shape ()"),
    "NaN": (
        lambda ae, vae: ae.reconstruct(np.full((1, 1, 8, 8), np.nan, np.float32)),
        "NaN or infinite",
    ),
    "inf": (lambda ae, vae: vae.decode(np.array([[np.inf, 0, 0, 0]], np.float32)), "NaN or inf"),
    # Scaling clips into [0, 1]: an infinity must be refused before it becomes a plain 1.
    "inf with preprocess": (
        lambda ae, vae: ae.reconstruct(np.full((1, 1, 8, 8), np.inf), preprocess=True),
        "NaN or infinite values; pass finite numbers",
    ),
    "float64 too large for float32": (
        lambda ae, vae: vae.decode(np.full((1, 4), 1e300)),
        "NaN or infinite",
    ),
    "graph not a string": (lambda ae, vae: ae.run(3, _digits()), "Name a graph or a role"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_calls_get_the_runtimes_own_sentence(exports, case):
    call, fragment = BAD_CALLS[case]
    ae, vae = runtime.load(exports["autoencoder"]), runtime.load(exports["vae"])
    with pytest.raises(Exception) as info:
        call(ae, vae)
    assert fragment in _one_sentence(info.value)
    assert isinstance(info.value, ValueError)  # RuntimeInputError is a ValueError too


BAD_LOADS = {
    "path None": (lambda folder: runtime.load(None), "as a path, not None"),
    "empty path": (lambda folder: runtime.load(""), "as a path, not ''"),
    "provider 5": (lambda folder: runtime.load(folder, provider=5), "not 5"),
    "threads 'x'": (lambda folder: runtime.load(folder, threads="x"), "threads must be"),
    "threads 0": (lambda folder: runtime.load(folder, threads=0), "from 1 to 1024, not 0"),
    "verify 'no'": (lambda folder: runtime.load(folder, verify="no"), "True or False"),
}


@pytest.mark.parametrize("case", list(BAD_LOADS))
def test_bad_load_arguments_get_one_sentence(exports, case):
    call, fragment = BAD_LOADS[case]
    with pytest.raises(Exception) as info:
        call(exports["autoencoder"])
    assert fragment in _one_sentence(info.value)


def _drop(key):
    return lambda m: m["graphs"][0].pop(key)


def _set(**values):
    return lambda m: m["graphs"][0].update(values)


def _top(**values):
    return lambda m: m.update(values)


def _input(**values):
    return lambda m: m["graphs"][0]["input"].update(values)


# Each edit of a good manifest, and what the sentence must say.
BAD_MANIFESTS = {
    "entry without a name": (_drop("name"), "its graph entry 1 has no 'name'"),
    "entry without an input": (_drop("input"), "its graph 'autoencoder' has no 'input' object"),
    "entry without outputs": (_drop("outputs"), "has no 'outputs' list"),
    "output without a name": (_set(outputs=[{"shape": [1]}]), "an output without a name"),
    "input shape of text": (_input(shape=["batch", "8"]), "positive whole sizes"),
    "input shape of zeros": (_input(shape=["batch", 0, 8]), "positive whole sizes"),
    "input without a name": (_input(name=None), "has no input name"),
    "input range reversed": (_input(range=[1, 0]), "not [low, high] numbers"),
    "divide by zero": (
        _input(preprocessing={"scaling": {"method": "divide", "scale": 0}}),
        "whose 'scale' is not a positive number",
    ),
    "unknown scaling": (
        _input(preprocessing={"scaling": {"method": "log"}}),
        "unknown scaling method 'log'",
    ),
    "role a number": (_set(role=3), "'role' that is an int, not a string"),
    "sha256 not hex": (_set(sha256="abc"), "not 64 lowercase hex digits"),
    "a graph twice": (lambda m: m["graphs"].append(dict(m["graphs"][0])), "twice"),
    "graphs an object": (_top(graphs={"autoencoder": {}}), "'graphs' entry is an object, not a"),
    "graphs a number": (_top(graphs=5), "'graphs' entry is an int, not a list"),
    "graphs a string": (_top(graphs="autoencoder"), "'graphs' entry is a string, not a list"),
    "graphs missing": (lambda m: m.pop("graphs"), "'graphs' entry is a null, not a list"),
    "graphs empty": (_top(graphs=[]), "its 'graphs' list is empty"),
    "entry a string": (_top(graphs=["autoencoder"]), "its graph entry 1 is a string"),
    "applications a list": (_top(applications=[]), "its 'applications' entry is a list"),
    "preprocessing a string": (_top(preprocessing="divide"), "'preprocessing' entry is a string"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_an_unusable_manifest_gets_one_sentence(exports, tmp_path, case):
    edit, fragment = BAD_MANIFESTS[case]
    copy = _copy(exports["autoencoder"], tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(copy).reconstruct(_digits(), preprocess=True)
    message = _one_sentence(info.value)
    assert str(copy / "manifest.json") in message and fragment in message, message


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"{oops", "is not valid JSON (Expecting property name"),
        (b"", "is not valid JSON (Expecting value at line 1, column 1)"),
        (b"[1, 2]", "it holds a list, not a JSON object"),
        (b'"a manifest"', "it holds a string, not a JSON object"),
        (b"null", "it holds a null, not a JSON object"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_a_manifest_that_is_not_a_json_object_gets_one_sentence(
    exports, tmp_path, content, fragment
):
    copy = _copy(exports["autoencoder"], tmp_path)
    (copy / "manifest.json").write_bytes(content)
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(copy)
    assert fragment in _one_sentence(info.value)


# -- 2. integrity ------------------------------------------------------------------------------
def _alter_weights(path: Path) -> None:
    """Change the weights of a valid ONNX file: it still loads and runs, but computes another
    function."""
    proto = onnx.load(str(path))
    init = max(proto.graph.initializer, key=lambda t: len(onnx.numpy_helper.to_array(t).ravel()))
    arr = onnx.numpy_helper.to_array(init).copy()
    arr += 0.5
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(proto, str(path))


def test_a_changed_single_file_is_noticed_beside_its_manifest(exports, tmp_path):
    copy = _copy(exports["autoencoder"], tmp_path)
    before = runtime.load(copy / "autoencoder.onnx").reconstruct(_digits())
    _alter_weights(copy / "autoencoder.onnx")
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(copy / "autoencoder.onnx")
    message = _one_sentence(info.value)
    assert "autoencoder.onnx does not match its sha256 in manifest.json" in message
    assert "verify=False" in message
    # On purpose: verify=False loads it, and it really computes something else.
    after = runtime.load(copy / "autoencoder.onnx", verify=False).reconstruct(_digits())
    assert np.abs(after - before).max() > 1e-6
    # The folder is refused as well, and a file away from any manifest describes itself.
    with pytest.raises(runtime.RuntimeLoadError, match="does not match its sha256"):
        runtime.load(copy)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(copy / "autoencoder.onnx", alone)
    assert runtime.load(alone / "autoencoder.onnx").graphs == ["autoencoder"]


def test_a_manifest_without_checksums_is_refused_unless_asked(exports, tmp_path, capsys):
    copy = _copy(exports["autoencoder"], tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["graphs"]:
        del entry["sha256"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for target in (copy, copy / "encoder.onnx"):
        with pytest.raises(runtime.RuntimeLoadError) as info:
            runtime.load(target)
        message = _one_sentence(info.value)
        assert "records no sha256 for" in message and "pass verify=False" in message
    want = runtime.load(exports["autoencoder"]).reconstruct(_digits())
    np.testing.assert_array_equal(runtime.load(copy, verify=False).reconstruct(_digits()), want)

    np.save(tmp_path / "x.npy", _digits())
    assert (
        main(["infer", str(copy), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy")]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no sha256" in err[0] and "pass --no-verify" in err[0], err
    assert "verify=False" not in err[0]
    argv = ["infer", str(copy), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy")]
    assert main([*argv, "--no-verify"]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), want)


def test_random_bytes_in_an_onnx_file_get_one_sentence(exports, tmp_path, capsys):
    junk = np.random.default_rng(0).bytes(4096)
    alone = tmp_path / "junk.onnx"
    alone.write_bytes(junk)
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(alone)
    assert "is not an ONNX model (its bytes do not parse as one)" in _one_sentence(info.value)
    copy = _copy(exports["autoencoder"], tmp_path)
    (copy / "decoder.onnx").write_bytes(junk)
    with pytest.raises(runtime.RuntimeLoadError, match="does not match its sha256"):
        runtime.load(copy)
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(copy, verify=False)  # unchecked, the bytes still have to be ONNX
    assert "decoder.onnx is not an ONNX model" in _one_sentence(info.value)

    np.save(tmp_path / "x.npy", _digits())
    code = main(["infer", str(alone), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "is not an ONNX model" in err[0], err
    assert "InvalidProtobuf" not in err[0]


def test_files_that_do_not_fit_their_manifest_get_one_sentence(exports, tmp_path):
    """Loaded unchecked, an encoder file swapped for the decoder is refused by its names; a
    manifest whose input shape was edited (the manifest itself carries no checksum) fails in
    onnxruntime, reported in a sentence rather than as onnxruntime's raw InvalidArgument."""
    copy = _copy(exports["autoencoder"], tmp_path)
    shutil.copy(exports["autoencoder"] / "decoder.onnx", copy / "encoder.onnx")
    with pytest.raises(runtime.RuntimeLoadError) as info:
        runtime.load(copy, verify=False)
    message = _one_sentence(info.value)
    assert "encoder.onnx does not fit its entry in the manifest" in message
    assert "it takes the input 'code', not 'input'" in message

    copy = _copy(exports["autoencoder"], tmp_path / "edited")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"][0]["input"]["shape"] = ["batch", 64]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    m = runtime.load(copy)
    with pytest.raises(runtime.RuntimeLoadError) as info:
        m.reconstruct(_digits().reshape(3, 64))
    message = _one_sentence(info.value)
    assert "Graph 'autoencoder' failed in onnxruntime" in message, message


# -- 3. nothing sent home ----------------------------------------------------------------------
def _fresh_env(root: Path) -> dict[str, str]:
    """A clean environment whose home, XDG and temporary folders are fresh empty folders under
    ``root`` (nothing inherited: pytest's own process has ORT_DISABLE_TELEMETRY set by now)."""
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
        "AELAB_RUNS_DIR": str(root / "work" / "runs"),
        "AELAB_EXPORTS_DIR": str(root / "work" / "exports"),
    }
    if os.environ.get("PYTHONPATH"):  # the code under test, where the suite runs a copy
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for var in ("HOME", "TMPDIR", *(f"XDG_{k}_HOME" for k in ("CACHE", "CONFIG", "DATA", "STATE"))):
        env[var] = str(root / var.lower())
        (root / var.lower()).mkdir(parents=True)
    (root / "work").mkdir()
    return env


def _written(root: Path, allowed: set[Path]) -> list[str]:
    """Every file under ``root`` outside the allowed files and folders."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or path in allowed or any(a in path.parents for a in allowed):
            continue
        found.append(str(path.relative_to(root)))
    return found


def test_the_runtime_turns_onnxruntime_telemetry_off(exports, tmp_path):
    """Plain onnxruntime writes a device id and a telemetry database under the home folder on
    import; through aelab.runtime it writes nothing (and the setting reaches subprocesses)."""
    code = (
        "import os, sys, numpy as np\n"
        "from aelab import runtime\n"
        f"m = runtime.load({str(exports['autoencoder'])!r})\n"
        "m.reconstruct(np.zeros((1, 1, 8, 8), np.float32))\n"
        "print(os.environ.get('ORT_DISABLE_TELEMETRY'), runtime.telemetry_off())\n"
    )
    plain = tmp_path / "plain"
    env = _fresh_env(plain)
    proc = subprocess.run(
        [sys.executable, "-c", "import onnxruntime"], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # The control: without aelab, onnxruntime 1.31 records telemetry in the fresh home.
    assert _written(plain, set()), "onnxruntime wrote nothing: this check shows nothing now"

    aelab = tmp_path / "aelab"
    env = _fresh_env(aelab)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert _written(aelab, set()) == []
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "True"]


def test_a_train_export_infer_cycle_writes_nothing_outside_its_folders(tmp_path):
    """`aelab train`, `aelab export` and `aelab infer`, each a fresh process with fresh home,
    XDG and temporary folders, write only the run, the export and the output file."""
    env = _fresh_env(tmp_path)
    work = tmp_path / "work"

    def aelab(*argv: str) -> str:
        proc = subprocess.run(
            [str(BIN / "aelab"), *argv],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1]

    aelab("train", "autoencoder", "--epochs", "1", "-o", "code_size", "2")
    (run_id,) = [p.name for p in (work / "runs").iterdir()]
    folder = Path(aelab("export", run_id))
    np.save(work / "in.npy", _digits())
    aelab("infer", str(folder), "in.npy", "--out", "out.npy")
    assert np.load(work / "out.npy").shape == (3, 1, 8, 8)
    allowed = {work / "runs", work / "exports", work / "in.npy", work / "out.npy"}
    assert (work / "runs" / run_id / "run.json").is_file() and (folder / "manifest.json").is_file()
    assert _written(tmp_path, allowed) == []

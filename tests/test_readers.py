"""The reader hook: built-in formats go through it, a plugin adds one, a broken one is refused."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from filekit import one_sentence

from aelab import plugins
from aelab.data import FORMATS, Dataset, apply_scaling, describe_formats, load_data
from aelab.errors import DataError
from aelab.hookspecs import hookimpl
from aelab.readers import Reader, ReadOptions, get_readers

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
READERS = "## Readers"

DROP_IN = '''
import numpy as np

from aelab.data import Dataset
from aelab.hookspecs import hookimpl
from aelab.readers import Reader


def read_pgmish(path, options):
    """Whitespace-separated bytes, one sample per line."""
    rows = [[int(v) for v in line.split()] for line in path.read_text().splitlines() if line]
    x = np.array(rows, dtype=np.float64) / 255.0
    return Dataset(path.name, x, "flat", scaling={"method": "divide", "scale": 255.0})


@hookimpl
def register_readers(register):
    register(Reader("bytes", "lines of whitespace-separated bytes 0-255", read_pgmish,
                    suffixes=(".bytes",)))
'''


def _flat(path: Path, options: ReadOptions) -> Dataset:
    return Dataset(path.name, np.linspace(0, 1, 8).reshape(4, 2), "flat")


class _Plugin:
    """Readers registered for one test: pass them in, they are registered by ``register``."""

    def __init__(self, *readers: object):
        self.readers = readers

    @hookimpl
    def register_readers(self, register):
        for reader in self.readers:
            register(reader)


@pytest.fixture
def register():
    """Register a plugin object under a name for the test, and forget it afterwards."""
    added: list[object] = []

    def add(plugin: object, name: str) -> None:
        plugins.load_plugins()
        plugins.pm.register(plugin, name=name)
        added.append(plugin)
        plugins.invalidate()

    yield add
    for plugin in added:
        if plugins.pm.is_registered(plugin):
            plugins.pm.unregister(plugin)
    plugins.invalidate()


# -- the built-in readers --------------------------------------------------------------------


def test_builtin_formats_are_readers_of_a_default_plugin():
    readers = get_readers()
    assert list(readers)[:5] == ["npy", "npz", "csv", "images", "idx"]
    assert {r.plugin for r in list(readers.values())[:5]} == {"aelab.builtin_readers"}
    assert list(FORMATS) == [r.label for r in readers.values()]
    assert all(r.description in describe_formats() for r in readers.values())
    assert readers["csv"].suffixes == (".csv",) and readers["images"].can_read is not None


def test_csv_reader_keeps_the_column_names(tmp_path):
    (tmp_path / "t.csv").write_text("height,weight,label\n1,2,a\n3,4,b\n5,6,a\n")
    data = load_data(tmp_path / "t.csv")
    assert data.feature_names == ["height", "weight"] and data.label_names == ["a", "b"]
    assert data.meta()["feature_names"] == ["height", "weight"]


# -- a third-party reader --------------------------------------------------------------------


def _doc_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)\n```", text[text.index(READERS) :], flags=re.S)


def test_documented_reader_and_its_test_as_printed_pass(tmp_path, monkeypatch):
    path = tmp_path / "aelab_jsonl.py"
    path.write_text(_doc_blocks()[0] + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("aelab_jsonl", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "aelab_jsonl", module)
    spec.loader.exec_module(module)
    namespace: dict = {}
    exec(_doc_blocks()[1], namespace)
    namespace["test_jsonl_reader"](tmp_path)
    assert "jsonl" not in get_readers()  # the documented test cleans up after itself
    (tmp_path / "bad.jsonl").write_text('[1, 2]\n{"x": [3]}\n')
    plugins.pm.register(module, name="jsonl")
    plugins.invalidate()
    try:
        with pytest.raises(DataError) as exc_info:
            load_data(tmp_path / "bad.jsonl")
        one_sentence(exc_info, "bad.jsonl", "same number of numbers")
    finally:
        plugins.pm.unregister(module)
        plugins.invalidate()


def test_a_drop_in_reader_is_used_by_load_data_the_cli_and_listed(tmp_path, fresh_plugins, capsys):
    from aelab.cli import main

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "bytesreader.py").write_text(DROP_IN, encoding="utf-8")
    rng = np.random.default_rng(0)
    data_file = tmp_path / "points.bytes"
    data_file.write_text(
        "\n".join(" ".join(map(str, row)) for row in rng.integers(0, 256, (40, 6)))
    )
    fresh_plugins.set_plugins_dir(folder)
    data = load_data(data_file)
    assert data.sample_shape == (6,) and data.source == str(data_file.resolve())
    assert get_readers()["bytes"].plugin == "bytesreader"
    args = ["--plugins-dir", str(folder)]
    assert main([*args, "datasets"]) == 0
    out = capsys.readouterr().out
    assert ".bytes" in out and "sensors" in out and "wine" in out
    assert main([*args, "datasets", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert ".bytes" in listed["formats"]
    train = [
        "train",
        "autoencoder",
        "--data",
        str(data_file),
        "--epochs",
        "1",
        "-o",
        "code_size",
        "2",
    ]
    code = main([*args, *train])
    assert code == 0, capsys.readouterr().err


def test_builtin_readers_come_first_and_can_read_picks_by_content(tmp_path, register):
    called = []

    def steal(path, options):
        called.append(path)
        return _flat(path, options)

    magic = Reader(
        "magic",
        "files starting with MAGIC, whatever their name",
        _flat,
        can_read=lambda p: p.is_file() and p.read_bytes()[:5] == b"MAGIC",
    )
    register(_Plugin(Reader("mycsv", "another csv reader", steal, suffixes=(".CSV",)), magic), "x")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    assert load_data(tmp_path / "t.csv").feature_names == ["a", "b"] and not called
    (tmp_path / "data.weird").write_bytes(b"MAGIC and more")
    assert len(load_data(tmp_path / "data.weird")) == 4
    (tmp_path / "other.weird").write_bytes(b"nothing")
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "other.weird")
    one_sentence(exc_info, "other.weird", "unsupported file type '.weird'", "magic")


# -- broken readers --------------------------------------------------------------------------


def test_broken_readers_are_refused_loudly(register, capsys):
    from aelab.cli import main

    register(
        _Plugin(
            Reader("nothing", "reads nothing at all", _flat),
            Reader("csv", "a second csv", _flat, suffixes=(".csv",)),
            Reader("Bad Name", "", "not callable", suffixes=("tsv",)),
            Reader("fine", "a good one beside the broken ones", _flat, suffixes=(".fine",)),
        ),
        "brokenreaders",
    )
    register(type("Crash", (), {"register_readers": hookimpl(lambda self, register: 1 / 0)})(), "c")
    register(_Plugin("just a string"), "wrongtype")
    readers = get_readers()
    assert "fine" in readers and "nothing" not in readers and "Bad Name" not in readers
    assert readers["csv"].plugin == "aelab.builtin_readers"
    lines = plugins.load_warnings()
    refused = [line for line in lines if "brokenreaders" in line]
    assert len(refused) == 3
    assert any(
        "'nothing'" in line and "neither suffixes nor a can_read" in line for line in refused
    )
    assert any(
        "'csv'" in line and "taken by plugin 'aelab.builtin_readers'" in line for line in refused
    )
    bad = next(line for line in refused if "Bad Name" in line)
    assert all(w in bad for w in ("lower-case", "one-line description", "read must be", "dot"))
    assert any("'c' failed in register_readers: ZeroDivisionError" in line for line in lines)
    assert any(
        "'wrongtype'" in line and "expected an aelab.readers.Reader" in line for line in lines
    )
    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    info = {p["name"]: p for p in json.loads(out)}
    assert "neither suffixes" in info["brokenreaders"]["error"]
    plugins.invalidate()  # a command that builds the registry prints each refusal on stderr
    assert main(["datasets"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: reader '") == 3 and "brokenreaders" in err


def test_a_failing_reader_is_one_sentence_naming_it(tmp_path, register):
    def crash(path, options):
        return {}["x"]

    def loud(path, options):
        return Dataset(path.name, np.array([[0.0, 5.0], [1.0, 2.0]]), "flat")

    def single(path, options):
        return Dataset(path.name, np.zeros((1, 2)), "flat")

    def sniff(path):
        raise OSError("disk on fire")

    register(
        _Plugin(
            Reader("crash", "always fails", crash, suffixes=(".crash",)),
            Reader("array", "returns an array", lambda p, o: np.zeros((3, 2)), suffixes=(".arr",)),
            Reader("loud", "forgets to scale", loud, suffixes=(".loud",)),
            Reader("single", "one sample", single, suffixes=(".one",)),
            Reader("sniffer", "a broken check", _flat, suffixes=(".sniff",), can_read=sniff),
        ),
        "flaky",
    )
    cases = {
        "f.crash": ["reader 'crash'", "plugin 'flaky'", "KeyError"],
        "f.arr": ["reader 'array'", "ndarray", "not an aelab.data.Dataset"],
        "f.loud": ["reader 'loud'", "from 0 to 5", "[0, 1]"],
        "f.one": ["1 sample(s)", "at least 2"],
        "f.sniff": ["can_read check of reader 'sniffer'", "OSError", "disk on fire"],
    }
    for name, fragments in cases.items():
        (tmp_path / name).write_text("something")
        with pytest.raises(DataError) as exc_info:
            load_data(tmp_path / name)
        one_sentence(exc_info, name, *fragments)
    (tmp_path / "empty.crash").write_text("")
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "empty.crash")
    one_sentence(exc_info, "empty.crash", "empty")


def test_reader_options_reach_the_reader(tmp_path, register):
    seen = []

    def spy(path, options):
        seen.append(options)
        x = np.linspace(0, 1, 12).reshape(3, 4)
        return Dataset(path.name, apply_scaling(x, {"method": "none"}), "flat")

    register(_Plugin(Reader("spy", "records its options", spy, suffixes=(".spy",))), "spy")
    (tmp_path / "a.spy").write_text("x")
    load_data(tmp_path / "a.spy", label_column="kind", image_size=9)
    assert seen == [ReadOptions(label_column="kind", image_size=9, grayscale=None)]

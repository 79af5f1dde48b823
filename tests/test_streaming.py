"""Streaming datasets (aelab.streaming): samples read from disk in batches equal the in-memory load
of the same file, split and pickle like it, and keep memory bounded."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from filekit import one_sentence, write_idx, write_png

from aelab import streaming
from aelab.data import Dataset, keep_labels, load_data
from aelab.errors import DataError
from aelab.readers import get_readers
from aelab.streaming import StreamingDataset


def image_folder(root: Path, rgb: bool, sizes=((6, 5),), per_class: int = 4, jpeg=False) -> Path:
    """Class sub-folders a, b, c of random images (cycling through ``sizes``, as (H, W))."""
    rng = np.random.default_rng(len(sizes) + 2 * rgb)
    i = 0
    for name in "abc":
        for k in range(per_class):
            h, w = sizes[i % len(sizes)]
            pixels = rng.integers(0, 256, (h, w, 3) if rgb else (h, w))
            ext = ".jpg" if jpeg and k == 1 else ".png"
            write_png(root / name / f"{k}{ext}", pixels)
            i += 1
    return root


# -- each case writes a file and names the load_data options to read it with ------------------


def _npy(arr):
    def make(tmp_path):
        np.save(tmp_path / "data.npy", arr)
        return tmp_path / "data.npy", {}

    return make


def _with(make, **kwargs):
    def wrapped(tmp_path):
        path, options = make(tmp_path)
        return path, {**options, **kwargs}

    return wrapped


def _idx_labelled(tmp_path):
    rng = np.random.default_rng(4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 3, 30))
    path = write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (30, 5, 4)))
    return path, {}


def _idx_float(tmp_path):
    values = np.random.default_rng(5).normal(size=(25, 6)) * 4
    return write_idx(tmp_path / "vectors.idx", values, 0x0D), {}


def _folder(**kwargs):
    options = {k: kwargs.pop(k) for k in ("image_size", "grayscale") if k in kwargs}
    return lambda tmp_path: (image_folder(tmp_path / "pics", **kwargs), options)


def _flat_folder(tmp_path):
    rng = np.random.default_rng(6)
    for k in range(5):
        write_png(tmp_path / "flat" / f"{k}.png", rng.integers(0, 256, (4, 4)))
    return tmp_path / "flat", {}


RNG = np.random.default_rng(0)
CASES = {
    "npy-uint8-grey": _npy(RNG.integers(0, 256, (40, 6, 5)).astype(np.uint8)),
    "npy-uint8-nhwc-grey-resized": _with(
        _npy(RNG.integers(0, 256, (24, 6, 5, 3)).astype(np.uint8)), grayscale=True, image_size=4
    ),
    "npy-uint8-grey-as-rgb": _with(
        _npy(RNG.integers(0, 256, (12, 1, 4, 4)).astype(np.uint8)), grayscale=False
    ),
    "npy-float64-flat-minmax": _npy(RNG.normal(size=(60, 7)) * 5 - 2),
    "npy-float32-flat-in-unit": _npy(RNG.random((30, 5), dtype=np.float32)),
    "npy-float16-flat-minmax": _npy((RNG.normal(size=(30, 4)) * 3).astype(np.float16)),
    "npy-int16-nchw-minmax": _npy(RNG.integers(-300, 300, (30, 1, 5, 5)).astype(np.int16)),
    "npy-bigendian-float64": _npy((RNG.normal(size=(20, 3)) * 9).astype(">f8")),
    "npy-fortran-order": _npy(np.asfortranarray(RNG.normal(size=(40, 6)).astype(np.float32))),
    "npy-bool-flat": _npy(RNG.random((50, 9)) > 0.5),
    "idx-uint8-labelled": _idx_labelled,
    "idx-float-flat": _idx_float,
    "folder-grey-classes": _folder(rgb=False),
    "folder-rgb-classes-jpeg": _folder(rgb=True, jpeg=True),
    "folder-rgb-resized": _folder(rgb=True, image_size=4),
    "folder-mixed-sizes-resized": _folder(rgb=False, sizes=((6, 5), (3, 7)), image_size=5),
    "folder-rgb-as-grey": _folder(rgb=True, grayscale=True),
    "folder-grey-as-rgb": _folder(rgb=False, grayscale=False),
    "folder-no-classes": _flat_folder,
}


def check_same(streamed: StreamingDataset, memory: Dataset) -> None:
    """A streamed dataset reads, labels, scales, splits, subsets and pickles as its twin in
    memory does."""
    assert isinstance(streamed, StreamingDataset) and streamed.streamed and not memory.streamed
    for attribute in ("name", "kind", "sample_shape", "scaling", "source", "label_names"):
        assert getattr(streamed, attribute) == getattr(memory, attribute), attribute
    assert len(streamed) == len(memory)
    assert streamed.nbytes_float32 == memory.x.nbytes
    assert streamed.extra == {} and streamed.feature_names is None and streamed.series is None
    if memory.labels is None:
        assert streamed.labels is None
    else:
        assert streamed.labels.dtype == np.int64
        np.testing.assert_array_equal(streamed.labels, memory.labels)
    rng = np.random.default_rng(1)
    idx = rng.permutation(len(memory))
    x = streamed.read(idx)
    assert x.dtype == np.float32 and x.shape == memory.x[idx].shape
    np.testing.assert_allclose(x, memory.x[idx], rtol=0, atol=1e-6)
    twice = rng.integers(0, len(memory), 7)  # repeated indices, any order
    np.testing.assert_allclose(streamed.read(twice), memory.x[twice], rtol=0, atol=1e-6)
    assert streamed.meta() == {**memory.meta(), "streamed": True}
    json.dumps(streamed.meta())
    for part, twin in zip(streamed.split(0.25, seed=3), memory.split(0.25, seed=3)):
        np.testing.assert_allclose(part.read(slice(None)), twin.x, rtol=0, atol=1e-6)
        assert (part.labels is None) == (twin.labels is None)
        if twin.labels is not None:
            np.testing.assert_array_equal(part.labels, twin.labels)
    taken = streamed.take(idx[:5])
    assert isinstance(taken, Dataset) and taken.scaling == memory.scaling
    np.testing.assert_allclose(taken.x, memory.x[idx[:5]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(streamed.head(3).x, memory.x[:3], rtol=0, atol=1e-6)
    batch = streamed.arrays_for(idx[:4])
    assert set(batch) == ({"x"} if memory.labels is None else {"x", "y"})
    if memory.labels is not None:
        np.testing.assert_array_equal(batch["y"], memory.labels[idx[:4]])
        wanted = int(memory.labels[0])
        kept, kept_memory = keep_labels(streamed, [wanted]), keep_labels(memory, [wanted])
        assert kept.kept_labels == kept_memory.kept_labels == [wanted]
        assert kept.meta() == {**kept_memory.meta(), "streamed": True}
        np.testing.assert_allclose(kept.read(slice(None)), kept_memory.x, rtol=0, atol=1e-6)
    back = pickle.loads(pickle.dumps(streamed))  # the size: see the test with larger data
    np.testing.assert_allclose(back.read(idx), memory.x[idx], rtol=0, atol=1e-6)
    np.testing.assert_allclose(streamed.read(idx[:3]), memory.x[idx[:3]], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_reads_equal_the_in_memory_load(case, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 96)  # several chunks: statistics merge
    path, options = CASES[case](tmp_path)
    memory = load_data(path, **options)
    streamed = load_data(path, stream=True, **options)
    check_same(streamed, memory)


def test_views_take_masks_slices_and_single_indices(tmp_path):
    path, _ = _idx_labelled(tmp_path)
    memory, streamed = load_data(path), load_data(path, stream=True)
    mask = memory.labels == 1
    for idx in (mask, slice(3, 20, 4), [5, -1, 0], 7, np.array([], dtype=np.int64)):
        view, twin = streamed.subset(idx), memory.subset(idx)
        assert len(view) == len(twin)
        np.testing.assert_array_equal(view.read(slice(None)), twin.x)
        np.testing.assert_array_equal(view.labels, twin.labels)
    nested = streamed.subset(slice(10, None)).subset([4, 0])
    np.testing.assert_array_equal(nested.read([1, 0]), memory.x[[10, 14]])
    with pytest.raises(IndexError):
        streamed.read([len(streamed)])


def test_split_refuses_what_dataset_split_refuses(tmp_path):
    path, _ = CASES["npy-bool-flat"](tmp_path)
    memory, streamed = load_data(path), load_data(path, stream=True)
    for fraction in (0.0, 1.5, 0.001):
        with pytest.raises(DataError) as want:
            memory.split(fraction)
        with pytest.raises(DataError) as got:
            streamed.split(fraction)
        assert str(got.value) == str(want.value)
    with pytest.raises(DataError) as want:
        keep_labels(memory, [0])
    with pytest.raises(DataError) as got:
        keep_labels(streamed, [0])
    assert str(got.value) == str(want.value)


def test_pickles_far_smaller_than_its_data_and_reads_in_a_spawned_worker(tmp_path):
    rng = np.random.default_rng(7)
    write_idx(tmp_path / "big-labels-idx1-ubyte", rng.integers(0, 10, 500))
    path = write_idx(tmp_path / "big-images-idx3-ubyte", rng.integers(0, 256, (500, 16, 16)))
    memory, streamed = load_data(path), load_data(path, stream=True)
    train, _ = streamed.split(0.2, seed=0)
    train.read([0, 1])  # the file is mapped now; the mapping must not travel
    assert len(pickle.dumps(train)) < memory.x.nbytes / 50
    idx = np.array([399, 3, 250, 3])
    spawn = multiprocessing.get_context("spawn")  # a fresh process, as DataLoader workers may be
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        got = pool.submit(operator.methodcaller("arrays_for", idx), train).result()
    want = memory.split(0.2, seed=0)[0]
    np.testing.assert_array_equal(got["x"], want.x[idx])
    np.testing.assert_array_equal(got["y"], want.labels[idx])


AUTO_CASES = {
    "npy": CASES["npy-uint8-grey"],
    "idx": CASES["idx-uint8-labelled"],
    # images big enough that their files take less room than their float32 pixels
    "folder": _folder(rgb=False, sizes=((16, 16),)),
}


@pytest.mark.parametrize("case", sorted(AUTO_CASES))
def test_auto_streams_only_data_over_the_memory_limit(case, tmp_path, monkeypatch):
    path, options = AUTO_CASES[case](tmp_path)
    nbytes = load_data(path, **options).x.nbytes
    monkeypatch.setenv("AELAB_MAX_DATA_MB", str(nbytes * 1.5 / 2**20))
    assert type(load_data(path, stream="auto", **options)) is Dataset
    assert type(load_data(path, **options)) is Dataset  # the default is unchanged
    monkeypatch.setenv("AELAB_MAX_DATA_MB", str(nbytes * 0.5 / 2**20))
    assert isinstance(load_data(path, stream="auto", **options), StreamingDataset)


def test_a_file_over_the_limit_streams_though_memory_refuses_it(tmp_path, monkeypatch):
    path = tmp_path / "data.npy"
    np.save(path, np.random.default_rng(8).normal(size=(100, 20)))
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "0.001")
    with pytest.raises(DataError) as exc_info:
        load_data(path)
    one_sentence(exc_info, "over the", "AELAB_MAX_DATA_MB")
    for stream in (True, "auto"):
        assert len(load_data(path, stream=stream).read([0, 99])) == 2


def test_what_cannot_stream_says_so(tmp_path, monkeypatch):
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n3,4\n5,6\n")
    with pytest.raises(DataError) as exc_info:
        load_data(csv, stream=True)
    one_sentence(exc_info, str(csv), "cannot be streamed", ".npy", "IDX", "images")
    assert type(load_data(csv, stream="auto")) is Dataset
    with pytest.raises(DataError) as exc_info:
        load_data("digits", stream=True)
    one_sentence(exc_info, "digits", "cannot be streamed")
    assert type(load_data("digits", stream="auto")) is Dataset
    with pytest.raises(DataError) as exc_info:
        load_data(csv, stream=True, series=True)
    one_sentence(exc_info, str(csv), "cannot be streamed")
    with pytest.raises(DataError) as exc_info:
        load_data(csv, stream="yes")
    one_sentence(exc_info, "'auto'")
    gz = write_idx(tmp_path / "t-images-idx3-ubyte.gz", np.zeros((40, 8, 8)))
    with pytest.raises(DataError) as exc_info:
        load_data(gz, stream=True)
    one_sentence(exc_info, str(gz), "gunzip")
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "0.0001")  # auto reads it into memory, if it may
    with pytest.raises(DataError) as exc_info:
        load_data(gz, stream="auto")
    one_sentence(exc_info, str(gz), "over the")
    readers = get_readers()
    assert {name for name, r in readers.items() if r.stream} >= {"npy", "idx", "images"}
    assert readers["csv"].stream is None and readers["npz"].stream is None
    assert readers["npy"].to_json()["stream"] is True


def test_a_bad_image_in_a_folder_is_named_when_read(tmp_path):
    folder = image_folder(tmp_path / "pics", rgb=False)
    (folder / "b" / "2.png").write_bytes(b"not an image at all")
    write_png(folder / "c" / "3.png", np.zeros((9, 9)))
    streamed = load_data(folder, stream=True)  # only the first image is probed
    files = sorted(p for p in folder.rglob("*.png"))
    bad, other = files.index(folder / "b" / "2.png"), files.index(folder / "c" / "3.png")
    with pytest.raises(DataError) as exc_info:
        streamed.read([0, bad])
    one_sentence(exc_info, str(folder / "b" / "2.png"), "cannot be read as an image")
    with pytest.raises(DataError) as exc_info:
        streamed.read([other])
    one_sentence(exc_info, str(folder / "c" / "3.png"), "9x9", "5x6", "image size")
    assert streamed.read([0, 1]).shape == (2, 1, 6, 5)
    assert load_data(folder, stream=True, image_size=4).read([other]).shape == (1, 1, 4, 4)


def test_a_colour_image_in_a_folder_opened_as_grey_is_refused(tmp_path):
    folder = image_folder(tmp_path / "pics", rgb=False)
    colour = write_png(folder / "c" / "9.png", np.full((6, 5, 3), 90))
    streamed = load_data(folder, stream=True)
    with pytest.raises(DataError) as exc_info:
        streamed.read(slice(None))
    one_sentence(exc_info, str(colour), "grayscale")
    check_same(load_data(folder, stream=True, grayscale=False), load_data(folder))


@pytest.mark.parametrize(
    "arr",
    [
        np.where(np.arange(200).reshape(40, 5) % 37 == 3, np.nan, 1.5),
        np.where(np.arange(200).reshape(40, 5) == 117, -np.inf, 0.5).astype(np.float32),
        np.where(np.arange(384).reshape(8, 4, 4, 3) == 200, 1e308, -1e308),  # (N, H, W, C)
        np.where(np.arange(384).reshape(8, 4, 4, 3) == 301, 3e38, -3e38),
        np.stack([np.zeros(20), np.where(np.arange(20) == 13, 1e39, 0.0)], axis=1),
    ],
    ids=["nan-flat", "inf-float32", "beyond-float32-nhwc", "range-overflow-nhwc", "column-beyond"],
)
def test_values_that_cannot_be_scaled_are_refused_at_open_as_in_memory(arr, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 64)  # the first bad value lies in a later chunk
    path = tmp_path / "bad.npy"
    np.save(path, arr)
    with pytest.raises(DataError) as want:
        load_data(path)
    with pytest.raises(DataError) as got:
        load_data(path, stream=True)
    assert str(got.value) == str(want.value)
    one_sentence(got, str(path))


def test_reading_a_large_file_in_batches_keeps_memory_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1 << 20)
    path = tmp_path / "large.npy"
    rows, cols = 4096, 2048  # 32 MB of float32 needing min-max scaling
    rng = np.random.default_rng(9)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for start in range(0, rows, 512):
        out[start : start + 512] = rng.random((512, cols), dtype=np.float32) * 8 - 3
    out.flush()
    del out
    tracemalloc.start()
    try:
        streamed = load_data(path, stream=True)  # the scaling pass, in 1 MB chunks
        for batch in np.array_split(rng.permutation(rows), 64):
            x = streamed.read(batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.shape == (64, cols) and 0.0 <= x.min() and x.max() <= 1.0
    assert peak < path.stat().st_size / 8, f"peak {peak} bytes"

"""Tests for aelab.data, aelab.loaders and the built-in datasets, on real files in tmp_path."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from filekit import write_idx, write_png
from PIL import Image

from aelab import builtin_datasets, plugins
from aelab.data import (
    DEFAULT_DATASET,
    FORMATS,
    Dataset,
    apply_scaling,
    describe_formats,
    load_data,
)
from aelab.errors import DataError
from aelab.hookspecs import hookimpl

# -- helpers ---------------------------------------------------------------------------------


def assert_error(exc_info: pytest.ExceptionInfo, *fragments: str) -> str:
    """The DataError's message is one sentence that contains every fragment."""
    message = str(exc_info.value)
    assert "\n" not in message
    assert message.endswith(".")
    assert not re.search(r"[.;:]\s+[A-Z][a-z]", message), f"more than one sentence: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def load_error(path: Path | str, *fragments: str, **kwargs) -> str:
    """load_data fails with a one-sentence DataError naming the file and these fragments."""
    with pytest.raises(DataError) as exc_info:
        load_data(path, **kwargs)
    name = Path(path).name
    return assert_error(exc_info, name, *fragments)


RNG = np.random.default_rng(0)


# -- built-in datasets -----------------------------------------------------------------------

BUILTIN_SHAPES = {
    "digits": ((1797, 1, 8, 8), "image", 10),
    "shapes": ((2000, 1, 16, 16), "image", 4),
    "swissroll": ((2000, 3), "flat", 6),
}


def test_builtins_are_registered_with_one_sentence_descriptions():
    datasets = plugins.get_datasets()
    assert set(BUILTIN_SHAPES) <= set(datasets)
    assert DEFAULT_DATASET == "digits"
    for name in BUILTIN_SHAPES:
        description = datasets[name].description
        assert description.endswith(".") and description.count(". ") == 0, description
        assert datasets[name].plugin == "aelab.builtin_datasets"


@pytest.mark.parametrize("name", sorted(BUILTIN_SHAPES))
def test_builtin_loads_with_shape_range_and_labels(name):
    shape, kind, n_classes = BUILTIN_SHAPES[name]
    ds = load_data(name)
    assert ds.x.shape == shape and ds.kind == kind and ds.x.dtype == np.float32
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (shape[0],)
    assert sorted(set(ds.labels.tolist())) == list(range(n_classes))
    assert len(ds.label_names) == n_classes
    assert ds.source == f"builtin:{name}"
    assert ds.sample_shape == shape[1:] and len(ds) == shape[0]
    json.dumps(ds.meta())


@pytest.mark.parametrize("name", sorted(BUILTIN_SHAPES))
def test_builtin_loads_are_fresh_copies(name):
    first = load_data(name)
    first.x[:] = 0.5
    first.labels[:] = 0
    second = load_data(name)
    assert second.x.max() == 1.0 and second.labels.max() > 0
    assert second.x.flags.writeable


def test_digits_match_sklearn_divided_by_16():
    from sklearn.datasets import load_digits

    ds = load_data("digits")
    bunch = load_digits()
    np.testing.assert_allclose(ds.x[:, 0], bunch.images / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, bunch.target)
    assert ds.scaling == {"method": "divide", "scale": 16.0}


def test_shapes_are_seeded_balanced_and_distinct():
    x1, y1 = builtin_datasets.make_shapes(n=40, seed=3)
    x2, y2 = builtin_datasets.make_shapes(n=40, seed=3)
    x3, _ = builtin_datasets.make_shapes(n=40, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert np.bincount(y1).tolist() == [10, 10, 10, 10]
    ds = load_data("shapes")
    assert ds.label_names == ["circle", "square", "triangle", "cross"]
    # every image shows a shape, and the class means differ (the classes are learnable)
    assert (ds.x.reshape(len(ds), -1).max(axis=1) > 0.5).all()
    means = [ds.x[ds.labels == k].mean(axis=0) for k in range(4)]
    assert min(np.abs(a - b).sum() for i, a in enumerate(means) for b in means[i + 1 :]) > 1.0


def test_swissroll_scaling_round_trips_from_raw_points():
    ds = load_data("swissroll")
    raw = builtin_datasets.swissroll_raw()
    assert ds.scaling["method"] == "minmax" and len(ds.scaling["min"]) == 3
    np.testing.assert_allclose(apply_scaling(raw, ds.scaling), ds.x, atol=1e-6)
    np.testing.assert_allclose(ds.x.min(axis=0), 0.0)
    np.testing.assert_allclose(ds.x.max(axis=0), 1.0)
    assert ds.label_names[0].endswith("(inner)")


def test_image_size_and_grayscale_apply_to_builtin_images():
    ds = load_data("digits", image_size=16, grayscale=False)
    assert ds.x.shape == (1797, 3, 16, 16)
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    np.testing.assert_array_equal(ds.x[:, 0], ds.x[:, 2])
    flat = load_data("swissroll", image_size=16)
    assert flat.x.shape == (2000, 3)


# -- Dataset methods -------------------------------------------------------------------------


def small_dataset(n: int = 50) -> Dataset:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2) / (n * 2)
    return Dataset("small", x, "flat", labels=np.arange(n) % 3, scaling={"method": "none"})


def test_split_is_deterministic_disjoint_and_covers_the_data():
    ds = small_dataset(50)
    train, val = ds.split(0.2, seed=1)
    again_train, again_val = ds.split(0.2, seed=1)
    other_train, _ = ds.split(0.2, seed=2)
    ids_train, ids_val = set(train.x[:, 0].tolist()), set(val.x[:, 0].tolist())
    assert len(val) == 10 and len(train) == 40
    assert ids_train.isdisjoint(ids_val)
    assert ids_train | ids_val == set(ds.x[:, 0].tolist())
    np.testing.assert_array_equal(train.x, again_train.x)
    np.testing.assert_array_equal(val.x, again_val.x)
    assert not np.array_equal(train.x, other_train.x)
    for part in (train, val):
        assert part.scaling == ds.scaling and part.kind == "flat"
        # labels travel with their samples
        expected = (np.rint(part.x[:, 0] * 100) / 2).astype(int) % 3
        np.testing.assert_array_equal(part.labels, expected)


def test_split_refuses_empty_parts_and_bad_fractions():
    with pytest.raises(DataError) as exc_info:
        small_dataset(2).split(0.1)
    assert_error(exc_info, "small", "validation part empty")
    with pytest.raises(DataError) as exc_info:
        small_dataset(3).split(0.9)
    assert_error(exc_info, "training part empty")
    with pytest.raises(DataError) as exc_info:
        small_dataset().split(1.0)
    assert_error(exc_info, "between 0 and 1")


def test_subset_len_and_meta_are_json_able():
    ds = small_dataset(10)
    one = ds.subset(3)
    assert one.x.shape == (1, 2) and one.labels.tolist() == [0]
    part = ds.subset(np.array([0, 5, 9]))
    assert len(part) == 3 and part.labels.tolist() == [0, 2, 0]
    meta = json.loads(json.dumps(part.meta()))
    assert meta == {
        "name": "small",
        "kind": "flat",
        "sample_shape": [2],
        "n": 3,
        "scaling": {"method": "none"},
        "source": "",
        "has_labels": True,
        "label_names": None,
    }


def test_dataset_validates_its_arrays():
    with pytest.raises(DataError) as exc_info:
        Dataset("bad", np.zeros((4, 2, 2)), "flat")
    assert_error(exc_info, "bad", "(N, D)")
    with pytest.raises(DataError) as exc_info:
        Dataset("bad", np.zeros((4, 2)), "flat", labels=np.zeros(3))
    assert_error(exc_info, "one label per sample")
    with pytest.raises(DataError) as exc_info:
        Dataset("bad", np.zeros((4, 2)), "flat", labels=np.arange(4), label_names=["a", "b"])
    assert_error(exc_info, "label names")


# -- apply_scaling --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, scaling",
    [
        (RNG.integers(0, 256, (5, 4)).astype(np.uint8), {"method": "divide", "scale": 255.0}),
        (RNG.uniform(0, 1, (5, 4)), {"method": "none"}),
        (RNG.uniform(-3, 7, (5, 4)), {"method": "minmax", "min": -3.0, "max": 7.0}),
        (
            np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]]),
            {"method": "minmax", "min": [1.0, 10.0, 5.0], "max": [3.0, 30.0, 5.0]},
        ),
    ],
)
def test_apply_scaling_maps_into_unit_range(raw, scaling):
    out = apply_scaling(raw, scaling)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    if scaling["method"] == "minmax" and isinstance(scaling["min"], list):
        np.testing.assert_allclose(out, [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])


def test_apply_scaling_clips_and_rejects_unknown_methods():
    out = apply_scaling(np.array([[-5.0, 20.0]]), {"method": "minmax", "min": 0.0, "max": 10.0})
    np.testing.assert_array_equal(out, [[0.0, 1.0]])
    with pytest.raises(DataError) as exc_info:
        apply_scaling(np.zeros((2, 2)), {"method": "log"})
    assert_error(exc_info, "'log'")
    with pytest.raises(DataError) as exc_info:
        apply_scaling(np.zeros((2, 2)), {"method": "minmax", "min": [0, 0, 0], "max": [1, 1, 1]})
    assert_error(exc_info, "records 3")


# -- .npy -----------------------------------------------------------------------------------


def test_npy_flat_in_unit_range_is_kept(tmp_path):
    raw = RNG.uniform(0, 1, (20, 5)).astype(np.float32)
    np.save(tmp_path / "flat.npy", raw)
    ds = load_data(tmp_path / "flat.npy")
    assert ds.kind == "flat" and ds.scaling == {"method": "none"}
    np.testing.assert_array_equal(ds.x, raw)
    assert ds.name == "flat.npy" and ds.source == str((tmp_path / "flat.npy").resolve())
    assert ds.labels is None and ds.meta()["has_labels"] is False


def test_npy_uint8_images_are_divided_by_255(tmp_path):
    raw = RNG.integers(0, 256, (6, 9, 7)).astype(np.uint8)
    np.save(tmp_path / "gray.npy", raw)
    ds = load_data(str(tmp_path / "gray.npy"))
    assert ds.kind == "image" and ds.x.shape == (6, 1, 9, 7)
    assert ds.scaling == {"method": "divide", "scale": 255.0}
    np.testing.assert_allclose(ds.x[:, 0], raw / 255.0, rtol=1e-6)
    np.testing.assert_allclose(apply_scaling(raw, ds.scaling), ds.x[:, 0])


def test_npy_channels_last_becomes_nchw(tmp_path):
    raw = RNG.integers(0, 256, (4, 5, 6, 3)).astype(np.uint8)
    np.save(tmp_path / "rgb.npy", raw)
    ds = load_data(tmp_path / "rgb.npy")
    assert ds.x.shape == (4, 3, 5, 6)
    np.testing.assert_allclose(ds.x, raw.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    np.save(tmp_path / "nchw.npy", raw.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(load_data(tmp_path / "nchw.npy").x, ds.x)


def test_npy_other_ranges_are_min_max_scaled(tmp_path):
    flat = np.stack([RNG.uniform(-5, 5, 30), RNG.uniform(100, 200, 30)], axis=1)
    np.save(tmp_path / "wide.npy", flat)
    ds = load_data(tmp_path / "wide.npy")
    assert ds.scaling["method"] == "minmax" and len(ds.scaling["min"]) == 2
    np.testing.assert_allclose(ds.x.min(axis=0), 0.0)
    np.testing.assert_allclose(ds.x.max(axis=0), 1.0)
    np.testing.assert_allclose(apply_scaling(flat, ds.scaling), ds.x)
    images = RNG.uniform(-1, 3, (5, 1, 4, 4))
    np.save(tmp_path / "img.npy", images)
    img = load_data(tmp_path / "img.npy")
    assert isinstance(img.scaling["min"], float)  # one range for all pixels
    np.testing.assert_allclose(img.x, (images - images.min()) / np.ptp(images), atol=1e-6)
    json.dumps(img.meta())


def test_npy_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(tmp_path / "objects.npy", np.array([Trap(), Trap()], dtype=object), allow_pickle=True)
    load_error(tmp_path / "objects.npy", "object array", "unpickling")
    assert not marker.exists()


@pytest.mark.parametrize(
    "arr, fragments",
    [
        (np.zeros(10), ["shape (10,)"]),
        (np.zeros((3, 2, 2, 5)), ["1 or 3 channels"]),
        (np.array([[0.1, np.nan], [np.inf, 0.2], [0.3, 0.4]]), ["2 values are NaN", "[0, 1]"]),
        (np.zeros((1, 4)), ["1 sample", "at least 2"]),
        (np.array(["a", "b"]), ["not numeric"]),
    ],
)
def test_npy_bad_arrays(tmp_path, arr, fragments):
    np.save(tmp_path / "bad.npy", arr)
    load_error(tmp_path / "bad.npy", *fragments)


def test_npy_truncated_and_garbage(tmp_path):
    np.save(tmp_path / "cut.npy", np.zeros((100, 10)))
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-80])
    load_error(tmp_path / "cut.npy", "truncated", "8000 bytes")
    (tmp_path / "junk.npy").write_bytes(b"this is not numpy")
    load_error(tmp_path / "junk.npy", "not a valid .npy")


# -- .npz -----------------------------------------------------------------------------------


def test_npz_x_and_y(tmp_path):
    x = RNG.integers(0, 256, (8, 4, 4)).astype(np.uint8)
    y = np.arange(8) % 2
    np.savez(tmp_path / "xy.npz", x=x, y=y, label_names=np.array(["even", "odd"]))
    ds = load_data(tmp_path / "xy.npz")
    assert ds.x.shape == (8, 1, 4, 4) and ds.labels.tolist() == y.tolist()
    assert ds.label_names == ["even", "odd"]


def test_npz_data_key_only_array_and_string_labels(tmp_path):
    np.savez_compressed(tmp_path / "d.npz", labels=np.array(["b", "a", "b"]), data=np.eye(3))
    ds = load_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.x, np.eye(3))
    assert ds.labels.tolist() == [1, 0, 1] and ds.label_names == ["a", "b"]
    np.savez(tmp_path / "only.npz", np.ones((4, 2)) * 3)
    only = load_data(tmp_path / "only.npz")
    assert only.x.shape == (4, 2) and only.labels is None
    np.savez(tmp_path / "positional.npz", np.ones((4, 2)), np.arange(4))  # savez(f, X, y)
    assert load_data(tmp_path / "positional.npz").x.shape == (4, 2)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "nox.npz", y=np.arange(3))
    load_error(tmp_path / "nox.npz", "no data array")
    np.savez(tmp_path / "which.npz", a=np.zeros((4, 2)), b=np.zeros((4, 3)))
    load_error(tmp_path / "which.npz", "'a', 'b' and none is named 'x'")
    np.savez(tmp_path / "count.npz", x=np.zeros((4, 2)), y=np.arange(3))
    load_error(tmp_path / "count.npz", "one label per sample")
    np.savez(tmp_path / "half.npz", x=np.zeros((3, 2)), y=np.array([0, 0.5, 1]))
    load_error(tmp_path / "half.npz", "whole numbers")
    np.savez(tmp_path / "obj.npz", x=np.array([{}, {}], dtype=object))
    load_error(tmp_path / "obj.npz", "object array")
    np.savez(tmp_path / "cut.npz", x=np.zeros((50, 50)))
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    load_error(tmp_path / "cut.npz", "truncated")


# -- CSV ------------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_header_and_automatic_label_column(tmp_path):
    path = write_text(
        tmp_path / "iris.csv", "a,b,class\n1,10,setosa\n2,20,virginica\n3,30,setosa\n"
    )
    ds = load_data(path)
    assert ds.kind == "flat" and ds.x.shape == (3, 2)
    np.testing.assert_allclose(ds.x, [[0, 0], [0.5, 0.5], [1, 1]])
    assert ds.labels.tolist() == [0, 1, 0] and ds.label_names == ["setosa", "virginica"]
    np.testing.assert_allclose(apply_scaling(np.array([[2.0, 20.0]]), ds.scaling), [[0.5, 0.5]])


def test_csv_without_header_and_with_named_label_column(tmp_path):
    plain = load_data(write_text(tmp_path / "plain.csv", "0.1,0.2\n0.3,0.4\n\n0.5,0.6\n"))
    assert plain.x.shape == (3, 2) and plain.scaling == {"method": "none"} and plain.labels is None
    path = write_text(tmp_path / "named.csv", "kind,v1,v2\n2,0.5,0.5\n7,0.25,1\n")
    ds = load_data(path, label_column="kind")
    assert ds.labels.tolist() == [2, 7] and ds.label_names is None
    np.testing.assert_allclose(ds.x, [[0.5, 0.5], [0.25, 1.0]])
    semi = load_data(write_text(tmp_path / "semi.csv", "p;q\n0.1;0.2\n0.3;0.4\n"))
    assert semi.x.shape == (2, 2)


@pytest.mark.parametrize(
    "text, kwargs, fragments",
    [
        ("a,b\n1,2\n3,4,5\n", {}, ["row 3 has 3 values but row 1 has 2"]),
        ("a,b\n1,2\n3,oops\n", {}, ["row 3, column 'b'", "'oops'"]),
        ("1,2\n3,\n", {}, ["row 2, column 2 is empty"]),
        ("a,b\n1,nan\n3,4\n5,inf\n", {}, ["2 values are NaN", "row 2, column 'b'"]),
        ("a,b\n", {}, ["no data rows"]),
        ("\n\n", {}, ["no rows"]),
        ("a,b\n1,2\n3,4\n", {"label_column": "kind"}, ["no column named 'kind'", "a, b"]),
        ("1,2\n3,4\n", {"label_column": "kind"}, ["no header row"]),
        ("a,b\n1,2\n", {}, ["1 sample"]),
    ],
)
def test_csv_errors(tmp_path, text, kwargs, fragments):
    load_error(write_text(tmp_path / "bad.csv", text), *fragments, **kwargs)


def test_csv_that_is_not_text(tmp_path):
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81\x82")
    load_error(tmp_path / "binary.csv", "UTF-8")


# -- image folders ---------------------------------------------------------------------------


def test_folder_of_grayscale_pngs(tmp_path):
    pixels = [RNG.integers(0, 256, (6, 5)).astype(np.uint8) for _ in range(3)]
    for i, p in enumerate(pixels):
        write_png(tmp_path / "imgs" / f"{i}.png", p)
    (tmp_path / "imgs" / "notes.txt").write_text("ignored")
    ds = load_data(tmp_path / "imgs")
    assert ds.kind == "image" and ds.x.shape == (3, 1, 6, 5) and ds.labels is None
    np.testing.assert_allclose(ds.x[:, 0], np.stack(pixels) / 255.0, rtol=1e-6)
    assert ds.scaling == {"method": "divide", "scale": 255.0} and ds.name == "imgs"


def test_folder_with_class_subfolders_and_mixed_modes(tmp_path):
    write_png(tmp_path / "pets" / "dog" / "a.png", np.full((4, 4), 200))
    write_png(tmp_path / "pets" / "cat" / "b.jpg", np.full((4, 4, 3), [250, 0, 0]))
    write_png(tmp_path / "pets" / "cat" / "c.jpeg", np.full((4, 4), 10), mode="RGB")
    ds = load_data(tmp_path / "pets")
    assert ds.label_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1]
    assert ds.x.shape == (3, 3, 4, 4)  # one RGB image makes the whole set RGB
    assert ds.x[0, 0].mean() > 0.9 and ds.x[0, 1].mean() < 0.1  # the red JPEG stays red
    np.testing.assert_allclose(ds.x[2], 200 / 255.0, rtol=1e-6)  # gray repeated to 3 channels
    gray = load_data(tmp_path / "pets", grayscale=True)
    assert gray.x.shape == (3, 1, 4, 4)


def test_folder_resizes_mixed_sizes_when_asked(tmp_path):
    write_png(tmp_path / "mixed" / "big.png", np.full((32, 32), 255))
    write_png(tmp_path / "mixed" / "small.png", np.full((8, 12), 0))
    load_error(tmp_path / "mixed", "big.png is 32x32", "small.png is 12x8", "image size")
    ds = load_data(tmp_path / "mixed", image_size=10)
    assert ds.x.shape == (2, 1, 10, 10)
    np.testing.assert_allclose(ds.x[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(ds.x[1], 0.0, atol=1e-5)


def test_folder_of_16_bit_pngs_uses_the_8_bit_scale(tmp_path):
    folder = tmp_path / "deep"
    folder.mkdir()
    for i, value in enumerate([0, 65535]):
        Image.fromarray(np.full((3, 3), value, dtype=np.uint16)).save(folder / f"{i}.png")
    ds = load_data(folder)
    np.testing.assert_allclose(ds.x[:, 0, 0, 0], [0.0, 1.0], atol=1e-6)


def test_folder_errors(tmp_path):
    write_png(tmp_path / "broken" / "ok1.png", np.zeros((4, 4)))
    write_png(tmp_path / "broken" / "ok2.png", np.zeros((4, 4)))
    (tmp_path / "broken" / "bad.png").write_bytes(b"\x89PNG not really")
    load_error(tmp_path / "broken", "bad.png", "cannot be read as an image")
    (tmp_path / "empty").mkdir()
    load_error(tmp_path / "empty", "no .png, .jpg or .jpeg images")
    write_png(tmp_path / "both" / "top.png", np.zeros((4, 4)))
    write_png(tmp_path / "both" / "cls" / "inner.png", np.zeros((4, 4)))
    load_error(tmp_path / "both", "'cls'")
    write_png(tmp_path / "single.png", np.zeros((4, 4)))
    load_error(tmp_path / "single.png", "single image")


def test_truncated_image_names_the_file(tmp_path):
    write_png(tmp_path / "cut" / "a.png", RNG.integers(0, 256, (40, 40)))
    path = write_png(tmp_path / "cut" / "b.png", RNG.integers(0, 256, (40, 40)))
    path.write_bytes(path.read_bytes()[:200])
    message = load_error(tmp_path / "cut", "cannot be read as an image")
    assert "b.png" in message and "a.png" not in message


# -- MNIST IDX ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, labels",
    [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        ("images.idx3", "labels.idx1.gz"),
    ],
)
def test_idx_images_with_matching_labels(tmp_path, images, labels):
    x = RNG.integers(0, 256, (7, 5, 4)).astype(np.uint8)
    y = np.arange(7) % 3
    write_idx(tmp_path / images, x)
    write_idx(tmp_path / labels, y)
    ds = load_data(tmp_path / images)
    assert ds.kind == "image" and ds.x.shape == (7, 1, 5, 4)
    np.testing.assert_allclose(ds.x[:, 0], x / 255.0, rtol=1e-6)
    assert ds.labels.tolist() == y.tolist()
    assert ds.scaling == {"method": "divide", "scale": 255.0}


def test_idx_without_labels_and_other_types(tmp_path):
    write_idx(tmp_path / "data.idx", np.arange(12).reshape(6, 2), type_code=0x0B)
    ds = load_data(tmp_path / "data.idx")
    assert ds.kind == "flat" and ds.labels is None and ds.scaling["method"] == "minmax"
    write_idx(tmp_path / "f.idx", np.linspace(0, 1, 8).reshape(2, 2, 2), type_code=0x0D)
    np.testing.assert_allclose(load_data(tmp_path / "f.idx").x.ravel(), np.linspace(0, 1, 8))


def test_idx_errors(tmp_path):
    x = np.zeros((10, 4, 4), dtype=np.uint8)
    write_idx(tmp_path / "cut-images-idx3-ubyte.gz", x, truncate=30)
    load_error(tmp_path / "cut-images-idx3-ubyte.gz", "truncated", "(10, 4, 4)")
    write_idx(tmp_path / "long-images-idx3-ubyte", np.zeros((10, 4, 4), dtype=np.uint8))
    with open(tmp_path / "long-images-idx3-ubyte", "ab") as f:
        f.write(b"extra")
    load_error(tmp_path / "long-images-idx3-ubyte", "5 bytes beyond")
    (tmp_path / "magic-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(64))
    load_error(tmp_path / "magic-images-idx3-ubyte", "IDX magic number")
    (tmp_path / "broken.idx.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x02" + bytes(40))[:-12])
    load_error(tmp_path / "broken.idx.gz", "gzip")
    write_idx(tmp_path / "n-images-idx3-ubyte", x)
    write_idx(tmp_path / "n-labels-idx1-ubyte", np.arange(9))
    load_error(tmp_path / "n-images-idx3-ubyte", "n-labels-idx1-ubyte", "one label per sample")
    write_idx(tmp_path / "only-labels-idx1-ubyte", np.arange(9))
    load_error(tmp_path / "only-labels-idx1-ubyte", "1-D IDX")


# -- names, paths and limits -----------------------------------------------------------------


def test_unknown_name_lists_builtins_and_formats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as exc_info:
        load_data("mnist")
    assert_error(exc_info, "'mnist'", "digits, sensors, shapes, swissroll, wine", *FORMATS)
    load_error(tmp_path / "missing.csv", "no such file", "digits", ".npz")


def test_empty_unsupported_and_oversized_files(tmp_path, monkeypatch):
    (tmp_path / "empty.npy").write_bytes(b"")
    load_error(tmp_path / "empty.npy", "empty")
    (tmp_path / "table.xlsx").write_bytes(b"PK")
    load_error(tmp_path / "table.xlsx", "unsupported file type '.xlsx'", *FORMATS)
    np.save(tmp_path / "big.npy", np.zeros((100, 100)))
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "0.01")
    load_error(tmp_path / "big.npy", "over the 0.0 MB limit", "AELAB_MAX_DATA_MB")
    write_idx(tmp_path / "bomb-images-idx3-ubyte.gz", np.zeros((100, 20, 20), dtype=np.uint8))
    assert (tmp_path / "bomb-images-idx3-ubyte.gz").stat().st_size < 1024
    load_error(tmp_path / "bomb-images-idx3-ubyte.gz", "decompressed file")
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "lots")
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "big.npy")
    assert_error(exc_info, "AELAB_MAX_DATA_MB", "'lots'")


def test_bad_image_size_is_refused():
    with pytest.raises(DataError) as exc_info:
        load_data("digits", image_size=0)
    assert_error(exc_info, "positive whole number")


def test_describe_formats_mentions_every_format():
    text = describe_formats()
    assert all(fmt in text for fmt in FORMATS)
    assert len(text.splitlines()) == len(FORMATS) + 1


# -- datasets from plugins -------------------------------------------------------------------


class _FakePlugin:
    """A plugin registering one good and two broken datasets."""

    @hookimpl
    def register_datasets(self, register):
        register("tiny", lambda: small_dataset(4), "Four points.")
        register("crashes", lambda: 1 / 0, "Always fails.")
        register("wrongtype", lambda: np.zeros((3, 2)), "Returns an array.")


@pytest.fixture
def fake_plugin():
    plugin = _FakePlugin()
    plugins.load_plugins()
    plugins.pm.register(plugin, name="fake_data_plugin")
    plugins.invalidate()
    yield plugin
    if plugins.pm.is_registered(plugin):
        plugins.pm.unregister(plugin)
    plugins.invalidate()


def test_plugin_datasets_load_through_the_registry(fake_plugin):
    assert len(load_data("tiny")) == 4
    with pytest.raises(DataError) as exc_info:
        load_data("crashes")
    assert_error(exc_info, "'crashes'", "fake_data_plugin", "ZeroDivisionError")
    with pytest.raises(DataError) as exc_info:
        load_data("wrongtype")
    assert_error(exc_info, "'wrongtype'", "ndarray")


# -- tables with named features --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "first", "classes"),
    [
        ("wine", (178, 13), "alcohol", ["class_0", "class_1", "class_2"]),
        ("breast_cancer", (569, 30), "mean radius", ["malignant", "benign"]),
    ],
)
def test_builtin_tables_keep_their_feature_names(name, shape, first, classes):
    data = load_data(name)
    assert data.x.shape == shape and data.kind == "flat" and data.source == f"builtin:{name}"
    assert len(data.feature_names) == shape[1] and data.feature_names[0] == first
    assert data.label_names == classes and data.series is None
    assert data.x.min(axis=0).max() == 0.0 and data.x.max(axis=0).min() == 1.0  # per column
    raw = np.asarray(data.scaling["max"]) - np.asarray(data.scaling["min"])
    assert raw.shape == (shape[1],) and (raw > 0).all()
    part = data.subset([0, 5])
    assert part.feature_names == data.feature_names and part.feature_names is not data.feature_names
    assert data.meta()["feature_names"] == data.feature_names


def test_feature_names_must_name_every_column():
    with pytest.raises(DataError) as exc_info:
        Dataset("t", np.zeros((3, 2)), "flat", feature_names=["a"])
    assert_error(exc_info, "'t'", "1 feature names", "(3, 2)", "one name per column")
    with pytest.raises(DataError) as exc_info:
        Dataset("i", np.zeros((3, 1, 2, 2)), "image", feature_names=["a"])
    assert_error(exc_info, "'i'", "image data")
    assert "feature_names" not in load_data("digits").meta()


def test_formats_follow_the_registered_readers():
    from aelab.readers import get_readers

    assert list(FORMATS) == [r.label for r in get_readers().values()]
    assert FORMATS[0] == ".npy" and len(FORMATS) >= 5 and ".csv" in FORMATS

"""Data other than small images in the lab: a series along its time axis, a table by feature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from labapi import client
from PIL import Image


def _image(path) -> np.ndarray:
    while isinstance(path, dict):
        path = path.get("value") or path.get("path")
    return np.asarray(Image.open(Path(path)).convert("RGB"))


def test_a_series_is_shown_along_its_time_axis_and_scored_there(lab):
    c = client(lab)
    params = {"code_size": 8}
    status, _plot, grid, result, _run = c.predict(
        "conv1d", "sensors", None, params, {"epochs": 2, "seed": 0}, api_name="/train"
    )
    assert result["status"] == "completed"
    picture = _image(grid)
    # One wide chart of the whole series (3 channels and the error), not a grid of windows.
    assert picture.shape[1] == 1100 and picture.shape[0] > 500
    hist, _roc, grid, caption, result = c.predict(
        "auto", "contamination", 0.1, "0", "held-out part", api_name="/anomaly"
    )
    assert "AUROC" in caption and result["auroc"] is not None
    chart = _image(grid)
    assert chart.shape[1] == 1100
    # The threshold is drawn (red) and the known anomalies shaded (pale orange).
    assert np.all(chart == (200, 30, 30), axis=-1).sum() > 500
    assert np.all(chart == (255, 236, 190), axis=-1).sum() > 500


def test_a_table_is_compared_feature_by_feature(lab):
    c = client(lab)
    _status, _plot, grid, result, _run = c.predict(
        "autoencoder", "wine", None, {"code_size": 3}, {"epochs": 2, "seed": 0}, api_name="/train"
    )
    assert result["status"] == "completed"
    picture = _image(grid)
    # Panels of lines (the original dark, the reconstruction orange) and error bars below.
    assert picture.shape[0] > 300 and np.all(picture == (230, 97, 1), axis=-1).sum() > 500

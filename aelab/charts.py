"""Charts for flat data (tables, signals), drawn with Pillow: what a strip of 1-pixel tiles cannot
show. A flat sample reads as a line over its features or time steps; original and reconstruction
(or any other rows) are lines of different colours in the same panel, one panel per sample, and a
table gets the error per feature as bars underneath."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# First series dark (the original), then colours that stay apart for colour-blind readers.
PALETTE = [
    (34, 34, 34),
    (230, 97, 1),
    (44, 123, 182),
    (77, 175, 74),
    (152, 78, 163),
    (166, 86, 40),
    (247, 129, 191),
]
GRID = (228, 228, 228)
TEXT = (40, 40, 40)
MARKERS_UP_TO = 32  # features; above this a sample is drawn as a plain line (a signal)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100000 or abs(v) < 0.01:
        return f"{v:.0e}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.2g}"


def _label_room(names: Sequence[str] | None) -> int:
    """Pixels under a plot for its x labels: names are written upwards, so their length."""
    if names is None:
        return 20
    from PIL import Image, ImageDraw

    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return 10 + max(int(probe.textlength(str(n)[:14], font=_font(11))) for n in names)


def _x_labels(n: int, names: Sequence[str] | None, room: int) -> list[tuple[int, str]]:
    """Which positions get a label: every feature by name when they fit, else a few indices."""
    if names is not None and n <= room:
        return [(i, str(names[i])) for i in range(n)]
    ticks = sorted({0, n // 2, n - 1}) if n > 1 else [0]
    return [(i, str(names[i]) if names is not None else str(i)) for i in ticks]


def colours(n: int) -> list[tuple[int, int, int]]:
    """The palette for up to 7 series; a blue-to-orange ramp for more (steps of a path)."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    a, b = np.array(PALETTE[2], float), np.array(PALETTE[1], float)
    return [tuple(int(v) for v in a + (b - a) * t) for t in np.linspace(0, 1, n)]


def _panel(
    draw,
    canvas,
    box: tuple[int, int, int, int],
    lines: list[np.ndarray],
    title: str,
    names: Sequence[str] | None,
    lo: float,
    hi: float,
    palette: list[tuple[int, int, int]],
    label_room: int,
) -> None:
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = box
    font, small = _font(13), _font(11)
    draw.text((x0 + 44, y0), title, fill=TEXT, font=font)
    left, top, right = x0 + 44, y0 + 20, x1 - 8
    bottom = y1 - label_room
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.06 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((x0 + 2, y - 7), _fmt(lo + frac * (hi - lo)), fill=TEXT, font=small)
    n = max(len(line) for line in lines)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i / max(n - 1, 1)) * (right - left)
        return x, bottom - (float(v) - lo) / (hi - lo) * (bottom - top)

    for k, line in enumerate(lines):
        colour = palette[k]
        pts = [xy(i, v) for i, v in enumerate(line)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2, joint="curve")
        if n <= MARKERS_UP_TO:
            for px, py in pts:
                draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
    draw.line([(left, bottom), (right, bottom)], fill=(150, 150, 150))
    room = max(1, (right - left) // 14)
    for i, text in _x_labels(n, names, room):
        x, _ = xy(i, lo)
        if names is not None and n <= room:  # names written upwards, so long ones fit
            w = int(draw.textlength(text[:14], font=small)) + 2
            label = Image.new("RGB", (w, 14), (255, 255, 255))
            ImageDraw.Draw(label).text((1, 0), text[:14], fill=TEXT, font=small)
            label = label.rotate(90, expand=True)
            canvas.paste(label, (int(x - 7), int(bottom + 3)))
        else:
            w = draw.textlength(text, font=small)
            draw.text((x - w / 2, bottom + 2), text, fill=TEXT, font=small)


def compare(
    rows: Sequence[np.ndarray],
    labels: Sequence[str],
    names: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    errors: np.ndarray | None = None,
    columns: int = 3,
    max_panels: int = 6,
) -> np.ndarray:
    """One panel per sample, one coloured line per row (``rows[r][j]`` is row r's version of
    sample j: original, reconstruction, ...), a legend naming the rows, and optionally the mean
    squared error per feature as bars below. Returns an (H, W, 3) uint8 image."""
    from PIL import Image, ImageDraw

    batches = [np.asarray(r, np.float32).reshape(len(r), -1) for r in rows]
    n = min(min(len(b) for b in batches), max_panels) if batches else 0
    cols = max(1, min(columns, n))
    panel_w = 300 if names is None or batches[0].shape[1] <= 20 else 420
    label_room = _label_room(names)
    panel_h = 150 + label_room
    legend_h, width = 26, cols * panel_w + 10
    grid_rows = (n + cols - 1) // cols
    bars_h = 0 if errors is None else 150 + label_room
    height = legend_h + grid_rows * panel_h + bars_h + 6
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 8
    palette = colours(len(batches))
    for k, label in enumerate(labels):  # the legend
        colour = palette[k]
        draw.line([(x, 13), (x + 22, 13)], fill=colour, width=3)
        draw.text((x + 27, 5), label, fill=TEXT, font=_font(13))
        x += 40 + int(draw.textlength(label, font=_font(13)))
    for j in range(n):
        lines = [b[j] for b in batches]
        lo = float(min(line.min() for line in lines))
        hi = float(max(line.max() for line in lines))
        r, c = divmod(j, cols)
        box = (
            5 + c * panel_w,
            legend_h + r * panel_h,
            5 + (c + 1) * panel_w,
            legend_h + (r + 1) * panel_h,
        )
        title = titles[j] if titles is not None else f"sample {j + 1}"
        _panel(draw, canvas, box, lines, title, names, lo, hi, palette, label_room)
    if errors is not None:
        box = (5, height - bars_h, width - 5, height - 4)
        _bars(draw, canvas, box, errors, names, label_room)
    return np.asarray(canvas)


def _bars(
    draw, canvas, box, errors: np.ndarray, names: Sequence[str] | None, label_room: int
) -> None:
    """Mean squared error per feature as bars, the largest labelled."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = box
    font, small = _font(13), _font(11)
    errors = np.asarray(errors, np.float64).reshape(-1)
    draw.text((x0 + 44, y0 + 2), "reconstruction error per feature (MSE)", fill=TEXT, font=font)
    left, top, right = x0 + 44, y0 + 22, x1 - 8
    bottom = y1 - label_room
    top_v = float(errors.max()) if errors.size and errors.max() > 0 else 1.0
    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((x0 + 2, y - 7), _fmt(frac * top_v), fill=TEXT, font=small)
    n = len(errors)
    step = (right - left) / max(n, 1)
    for i, e in enumerate(errors):
        h = (float(e) / top_v) * (bottom - top)
        bx = left + i * step
        draw.rectangle([bx + step * 0.15, bottom - h, bx + step * 0.85, bottom], fill=PALETTE[1])
    room = max(1, int((right - left) // 14))
    for i, text in _x_labels(n, names, room):
        cx = left + (i + 0.5) * step
        if names is not None and n <= room:
            w = int(draw.textlength(text[:14], font=small)) + 2
            label = Image.new("RGB", (w, 14), (255, 255, 255))
            ImageDraw.Draw(label).text((1, 0), text[:14], fill=TEXT, font=small)
            canvas.paste(label.rotate(90, expand=True), (int(cx - 7), int(bottom + 3)))
        else:
            w = draw.textlength(text, font=small)
            draw.text((cx - w / 2, bottom + 2), text, fill=TEXT, font=small)


def gallery(
    batch: np.ndarray,
    names: Sequence[str] | None = None,
    columns: int = 4,
    max_panels: int = 12,
    titles: Sequence[str] | None = None,
) -> np.ndarray:
    """Separate flat samples (drawn from a prior, say), one panel and one line each."""
    batch = np.asarray(batch, np.float32).reshape(len(batch), -1)[:max_panels]
    return compare(
        [batch],
        ["sample"],
        names=names,
        titles=list(titles)
        if titles is not None
        else [f"sample {j + 1}" for j in range(len(batch))],
        columns=columns,
        max_panels=max_panels,
    )


def _time_ticks(n: int, labels: Sequence[str] | None, count: int = 6) -> list[tuple[int, str]]:
    idx = sorted({int(round(v)) for v in np.linspace(0, n - 1, count)}) if n > 1 else [0]
    return [(i, str(labels[i]) if labels is not None else str(i)) for i in idx]


def series(
    values: np.ndarray,
    reconstruction: np.ndarray | None,
    channels: Sequence[str],
    error: np.ndarray | None = None,
    time_labels: Sequence[str] | None = None,
    threshold: float | None = None,
    error_title: str = "reconstruction error per time step",
    marks: np.ndarray | None = None,
    width: int = 1100,
) -> np.ndarray:
    """A long series as people read it: one panel per channel with the original (dark) and the
    reconstruction (orange) along the time axis, then the error per step, with a threshold line
    when given and ``marks`` (a boolean per step, e.g. known anomalies) shaded."""
    from PIL import Image, ImageDraw

    values = np.asarray(values, np.float64)
    n, c = values.shape
    panel_h, err_h, legend_h = 130, 150 if error is not None else 0, 26
    height = legend_h + c * panel_h + err_h + 28
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(13), _font(11)
    left, right = 70, width - 12
    x = 8
    legend = [("original", PALETTE[0])]
    if reconstruction is not None:
        legend.append(("reconstruction", PALETTE[1]))
    if threshold is not None:
        legend.append(("threshold", (200, 30, 30)))
    if marks is not None and np.any(marks):
        legend.append(("known anomalies", (255, 220, 140)))
    for label, colour in legend:
        draw.line([(x, 13), (x + 22, 13)], fill=colour, width=3)
        draw.text((x + 27, 5), label, fill=TEXT, font=font)
        x += 40 + int(draw.textlength(label, font=font))

    def px(i: float) -> float:
        return left + (i / max(n - 1, 1)) * (right - left)

    def shade(top: float, bottom: float) -> None:
        if marks is None:
            return
        m = np.asarray(marks, bool)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            draw.rectangle([px(a), top, max(px(b - 1), px(a) + 2), bottom], fill=(255, 236, 190))

    def plot(top: float, bottom: float, lines, lo: float, hi: float, title: str) -> None:
        shade(top, bottom)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        for frac in (0.0, 0.5, 1.0):
            y = bottom - frac * (bottom - top)
            draw.line([(left, y), (right, y)], fill=GRID)
            draw.text((4, y - 7), _fmt(lo + frac * (hi - lo)), fill=TEXT, font=small)
        draw.text((left + 4, top - 16), title, fill=TEXT, font=font)
        # Long series: one vertex per pixel column (min and max kept), so spikes stay visible.
        cols = int(right - left)
        for line, colour, width_ in lines:
            y = np.asarray(line, np.float64)
            ok = np.isfinite(y)
            if not ok.any():
                continue
            if n > 2 * cols:
                bins = np.minimum((np.arange(n) * cols) // n, cols - 1)
                pts = []
                for b in range(cols):
                    seg = y[(bins == b) & ok]
                    if seg.size:
                        for v in (seg.min(), seg.max()):
                            pts.append((left + b, bottom - (v - lo) / (hi - lo) * (bottom - top)))
            else:
                pts = [
                    (px(i), bottom - (v - lo) / (hi - lo) * (bottom - top))
                    for i, v in enumerate(y)
                    if np.isfinite(v)
                ]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=width_)

    for k in range(c):
        top = legend_h + k * panel_h + 18
        bottom = legend_h + (k + 1) * panel_h - 6
        lines = [(values[:, k], PALETTE[0], 1)]
        if reconstruction is not None:
            lines.append((np.asarray(reconstruction)[:, k], PALETTE[1], 1))
        both = np.concatenate([line for line, _, _ in lines])
        both = both[np.isfinite(both)]
        plot(top, bottom, lines, float(both.min()), float(both.max()), str(channels[k]))
    if error is not None:
        err = np.asarray(error, np.float64)
        top = legend_h + c * panel_h + 18
        bottom = top + err_h - 24
        finite = err[np.isfinite(err)]
        hi = float(max(finite.max() if finite.size else 1.0, threshold or 0.0)) * 1.05
        plot(top, bottom, [(err, PALETTE[2], 1)], 0.0, hi or 1.0, error_title)
        if threshold is not None:
            y = bottom - threshold / (hi or 1.0) * (bottom - top)
            draw.line([(left, y), (right, y)], fill=(200, 30, 30), width=2)
    axis_y = height - 24
    for i, text in _time_ticks(
        n, [str(t) for t in time_labels] if time_labels is not None else None
    ):
        w = draw.textlength(text, font=small)
        xpos = min(max(px(i) - w / 2, left - 30), width - w - 2)
        draw.text((xpos, axis_y), text, fill=TEXT, font=small)
    return np.asarray(canvas)

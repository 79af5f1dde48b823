"""The lab panel of similarity search: a query and its nearest neighbours in code space, and
precision@k of code, raw-input and PCA search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, _upload_path, guarded

TILE = 80  # pixels a side for a picture in the grid
PER_ROW = 10  # neighbours per row, beside the query
FEATURES_SHOWN = 8  # flat data: feature columns in the hits table


def _tile(sample: np.ndarray) -> np.ndarray:
    """An image sample (C, H, W) in [0, 1] as an (h, w, 3) uint8 picture, enlarged by whole
    pixels so small images stay sharp."""
    img = np.clip(np.asarray(sample, np.float32), 0.0, 1.0)
    img = np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img[:3]
    img = img.transpose(1, 2, 0)
    scale = max(1, TILE // max(img.shape[:2]))
    img = np.kron(img, np.ones((scale, scale, 1), np.float32)) if scale > 1 else img
    return (img * 255).round().astype(np.uint8)


def captioned_grid(tiles: list[np.ndarray], captions: list[tuple[str, str]]) -> np.ndarray:
    """The query (framed in orange) in a column of its own, then its neighbours in rows of at
    most ``PER_ROW``, each picture with two lines of caption below. Returns an (H, W, 3) uint8
    image."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    pad, text_h, gap = 6, 34, 12
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(probe.textlength(line, font=font) for pair in captions for line in pair)
    cell_w, cell_h = int(max(tw, 84, text_w)) + 2 * pad, th + text_h + 2 * pad
    cols = min(PER_ROW, max(1, len(tiles) - 1))
    rows = max(1, -(-(len(tiles) - 1) // cols))
    size = ((1 + cols) * cell_w + gap, rows * cell_h + pad)
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for n, (tile, (line1, line2)) in enumerate(zip(tiles, captions)):
        col, row = (0, 0) if n == 0 else (1 + (n - 1) % cols, (n - 1) // cols)
        x0 = col * cell_w + (gap if n else 0)
        y0 = row * cell_h + pad
        x = x0 + (cell_w - tile.shape[1]) // 2
        if n == 0:
            frame = [x - 4, y0 - 4, x + tile.shape[1] + 3, y0 + th + 3]
            draw.rectangle(frame, fill=(249, 115, 22))
        canvas.paste(Image.fromarray(tile), (x, y0))
        for j, line in enumerate((line1, line2)):
            w = draw.textlength(line, font=font)
            xy = (x0 + (cell_w - w) / 2, y0 + th + 4 + 15 * j)
            draw.text(xy, line, fill=(30, 30, 30), font=font)
    return np.asarray(canvas)


def _label(value: Any, names: list[str] | None) -> str:
    if value is None:
        return "-"
    value = int(value)
    return names[value] if names and 0 <= value < len(names) else str(value)


def _query(session: LabSession, model: Any, number: Any, upload: Any) -> dict[str, Any]:
    """The query: the uploaded file's first sample when there is one, else a sample number."""
    from ...applications import ApplicationError
    from ...apps.search import check_query, read_query, sample_index

    data = session.require_data()
    path = _upload_path(upload)
    if path:
        x = check_query(model, read_query(Path(path), model, data.scaling), "The uploaded query")
        name = Path(path).name
        extra = f" (the first of its {len(x)} samples)" if len(x) > 1 else ""
        return {"samples": x[:1], "names": [name], "where": f"the uploaded {name}{extra}"}
    if number is None or str(number).strip() == "":
        raise ApplicationError("Give a sample number, or upload a query image or .npy file.")
    i = sample_index(int(float(number)), len(data), data.name)
    return {"numbers": [i], "where": f"sample #{i} of {data.name}"}


def search_neighbours(
    session: LabSession,
    number: float | None,
    upload: Any,
    k: float,
    metric: str,
    progress: gr.Progress = gr.Progress(),
) -> tuple[np.ndarray | None, pd.DataFrame, str]:
    """The query and its k nearest neighbours in code space (the /search endpoint)."""
    from ...apps.search import search
    from ...plugins import get_application

    spec = get_application("search")
    model = serving(session, spec)
    data = session.require_data()
    params = spec.validate_params({"k": int(k or 10), "metric": metric or "euclidean"})
    query = _query(session, model, number, upload)
    progress(0.1, desc=f"encoding {len(data)} samples")
    result = search(
        model,
        data,
        params,
        numbers=query.get("numbers"),
        samples=query.get("samples"),
        names=query.get("names"),
    )
    hits = result.hits[0]
    names = data.label_names
    x_query = data.x[hits.self_index] if "numbers" in query else query["samples"][0]
    rows = []
    for rank, (i, d) in enumerate(zip(hits.indices.tolist(), hits.distances.tolist()), 1):
        row: dict[str, Any] = {"rank": rank, "sample": f"#{i}", "distance": round(float(d), 4)}
        if hits.labels is not None:
            row["label"] = _label(hits.labels[rank - 1], names)
        if data.kind == "flat":
            for j, v in enumerate(data.x[i][:FEATURES_SHOWN].tolist()):
                row[f"x{j}"] = round(float(v), 4)
        rows.append(row)
    table = pd.DataFrame(rows)
    grid = None
    if data.kind == "image":
        qlabel = "" if hits.query_label is None else f"label {_label(hits.query_label, names)}"
        short = hits.query if len(hits.query) <= 14 else hits.query[:12] + ".."
        tiles, captions = [_tile(x_query)], [(f"query {short}", qlabel)]
        for row, i in zip(rows, hits.indices.tolist()):
            tiles.append(_tile(data.x[i]))
            lab = f" ({row['label']})" if "label" in row else ""
            captions.append((f"{row['rank']}. #{i}{lab}", f"d {row['distance']:.3g}"))
        grid = captioned_grid(tiles, captions)
    caption = f"**The {params.k} samples nearest to {query['where']}** in {result.units} code units"
    caption += f" ({params.metric} distance, closest first), among the {result.n} samples of "
    caption += f"{data.name}"
    if hits.self_index is not None:
        copy = "" if "numbers" in query else f" (it is a copy of sample #{hits.self_index})"
        caption += f"; the query itself{copy} is left out"
    caption += ". "
    if data.kind == "image":
        caption += (
            "The framed picture is the query; under each neighbour: its rank, sample number "
            "(label) and distance d. "
        )
    if hits.precision is not None:
        caption += (
            f"**{hits.precision:.0%}** of them share its label {_label(hits.query_label, names)}. "
        )
    if data.kind == "flat":
        caption += f"The query is {np.round(x_query[:FEATURES_SHOWN], 4).tolist()}. "
    caption += (
        "Distances are in code units: compare them within one search. "
        f"`aelab search RUN {hits.query if 'numbers' in query else 'QUERY.png'} -k {params.k}"
        f"{' --metric cosine' if params.metric == 'cosine' else ''}` lists the same from the CLI."
    )
    progress(1.0, desc="done")
    return grid, table, caption


def evaluate_search(
    session: LabSession, k: float, metric: str, progress: gr.Progress = gr.Progress()
) -> tuple[pd.DataFrame, str]:
    """precision@1 and precision@k of search in code space, raw inputs and PCA (the
    /search_evaluate endpoint)."""
    from ...apps.search import SPACE_NAMES, evaluate
    from ...plugins import get_application

    spec = get_application("search")
    model = serving(session, spec)
    data = session.require_data()
    params = spec.validate_params({"k": int(k or 10), "metric": metric or "euclidean"})
    held = session.test_set()
    if held is data:  # nothing held out: leave-one-out over the data
        result = evaluate(model, data, params, progress=lambda f, t: progress(f, desc=t))
    else:
        result = evaluate(
            model,
            session.train_set(),
            params,
            queries=held,
            progress=lambda f, t: progress(f, desc=t),
        )
    kk = params.k
    rows = [
        {
            "search in": SPACE_NAMES[r["space"]],
            "units": r["units"],
            "precision@1": round(r["precision_at_1"], 4),
            f"precision@{kk}": round(r["precision_at_k"], 4),
        }
        for r in result.rows
    ]
    rows.append(
        {
            "search in": "chance",
            "units": None,
            "precision@1": round(result.chance, 4),
            f"precision@{kk}": round(result.chance, 4),
        }
    )
    code, raw, pca = (result.row(s) for s in ("code", "raw", "pca"))
    verdict = "beats" if code["precision_at_k"] > pca["precision_at_k"] else "does not beat"
    caption = (
        f"**precision@{kk}: code {code['precision_at_k']:.3f}, raw inputs "
        f"{raw['precision_at_k']:.3f}, PCA {pca['precision_at_k']:.3f}** (chance "
        f"{result.chance:.3f}). Protocol: {result.protocol}; {params.metric} distance. Each "
        f"figure is the share of a query's {kk} nearest neighbours that have its label, "
        f"averaged over the queries. The {code['units']}-unit code {verdict} PCA with as many "
        f"components (fitted on the searched samples) and is {raw['units'] / code['units']:.3g}× "
        "smaller than the raw inputs. `aelab search RUN --evaluate` prints the same table."
    )
    return pd.DataFrame(rows), caption


def _shown(session: LabSession) -> Any:
    """The pictures for image data; flat data has only the table."""
    return gr.Image(visible=session.data is None or session.data.kind == "image")


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: a query (sample number or upload), k and the distance; Search and Evaluate
    buttons; the neighbours as captioned pictures and a table; precision@k as a table."""
    with gr.Row():
        number = gr.Number(
            0,
            label="Query: sample number",
            precision=0,
            minimum=0,
            info="A sample of the tab's data, counted from 0.",
            elem_id="search-number",
        )
        upload = gr.File(
            label="…or upload a query (PNG/JPEG image, or .npy scaled like the data)",
            file_types=[".png", ".jpg", ".jpeg", ".npy"],
            height=150,
            elem_id="search-upload",
        )
        with gr.Column():
            k = gr.Slider(1, 50, value=10, step=1, label="Neighbours k", elem_id="search-k")
            metric = gr.Radio(
                ["euclidean", "cosine"],
                value="euclidean",
                label="Distance",
                elem_id="search-metric",
            )
    with gr.Row():
        button = gr.Button("Search", variant="primary", elem_id="search")
        evaluate = gr.Button("Evaluate precision@k", elem_id="search-evaluate")
    note = gr.Markdown()
    caption = gr.Markdown(elem_id="search-caption")
    grid = gr.Image(
        label="The query and its neighbours",
        show_label=False,
        format="png",
        interactive=False,
        elem_id="search-grid",
    )
    with gr.Row():
        hits = gr.Dataframe(label="Neighbours", interactive=False, elem_id="search-hits")
        with gr.Column():
            eval_caption = gr.Markdown(elem_id="search-eval-caption")
            eval_table = gr.Dataframe(
                label="precision@k: code vs raw inputs vs PCA",
                interactive=False,
                elem_id="search-eval",
            )
    event = button.click(
        guarded(search_neighbours),
        [session, number, upload, k, metric],
        [grid, hits, caption],
        api_name=spec.id,
    )
    event.then(_shown, [session], [grid], api_visibility="private")
    evaluate.click(
        guarded(evaluate_search),
        [session, k, metric],
        [eval_table, eval_caption],
        api_name=f"{spec.id}_evaluate",
    )
    return PanelParts([button, evaluate], note)

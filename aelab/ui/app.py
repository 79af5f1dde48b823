"""The lab's page: layout first, event wiring at the bottom (gradio's demo/ style)."""

from __future__ import annotations

import functools
import itertools
import os
import threading
from typing import Any

import gradio as gr

from ..params import TrainConfig
from ..plugins import get_model, get_models, load_warnings
from ..series import DEFAULT_WINDOW
from ..tracking import get_trackers
from . import apps, exporting, training, views, widgets
from .session import (
    UPLOAD,
    DataUpload,
    LabSession,
    close_session,
    dataset_choices,
    dataset_summary,
    guarded,
    load_dataset,
    new_session,
    sentence,
    series_options,
)
from .texts import GRID_CAPTION, INTRO, LATENT_HELP, LOSS_CAPTION, PRIMER, grid_title

# Trainings of different tabs run side by side; gradio's default of one at a time would queue them.
TRAIN_CONCURRENCY = 8
# Any other event runs up to this many at once (gradio's default is one at a time).
DEFAULT_CONCURRENCY = 4
# The summaries answer in the order they were asked: the first one after a page load waits
# for torch to import, and a later one (a value just typed) must not be overwritten by it.
ONE_AT_A_TIME = {"concurrency_limit": 1, "concurrency_id": "architecture"}
# Choosing a model and editing its controls, in the order they happened: the dropdown reports a
# pick twice (on select and on blur), and the second report, answered after a value was typed
# into the new controls, would otherwise reset the settings to the model's defaults.
IN_ORDER = {"concurrency_limit": 1, "concurrency_id": "model-settings"}
# What gradio's queue reads for its default concurrency when none is passed (see Blocks.queue).
CONCURRENCY_VARIABLE = "GRADIO_DEFAULT_CONCURRENCY_LIMIT"

_warming: threading.Thread | None = None
_warming_lock = threading.Lock()


def warm_up() -> None:
    """Import torch and the trainer in a background thread, once per process.

    The lab's page is built and served without torch (about 2 s of imports), so the server
    answers as soon as gradio is up. The first page load calls this: the import then runs while
    the user reads the page, instead of delaying the first Train click (or the architecture
    summary, which builds a model)."""
    global _warming
    with _warming_lock:
        if _warming is None:
            _warming = threading.Thread(target=_import_torch, name="aelab-warm-up", daemon=True)
            _warming.start()


def _import_torch() -> None:
    try:
        from .. import inspect, train  # noqa: F401 - the imports are the point
    except Exception:  # noqa: BLE001 - a failure shows where the module is really used
        pass


def build_app() -> gr.Blocks:
    """Build the lab's Blocks app (not launched)."""
    models = get_models()
    first = "autoencoder" if "autoencoder" in models else next(iter(models))
    spec0 = models[first]
    cfg_schema = TrainConfig.model_json_schema()
    datasets = dataset_choices()

    with _blocks(title="aelab", analytics_enabled=False) as demo:
        session = gr.State(new_session(), delete_callback=close_session)
        gr.Markdown(INTRO)
        # A plugin refused at load (a taken id, an incomplete schema) is said here, not hidden.
        plugin_notes = load_warnings()
        gr.Markdown(
            "\n".join(f"> ⚠ {line}" for line in plugin_notes),
            visible=bool(plugin_notes),
            elem_id="plugin-warnings",
        )
        with gr.Accordion("New to autoencoders? Read this first", open=False):
            gr.Markdown(PRIMER)
        with gr.Row(equal_height=False):
            # -- 1. build ---------------------------------------------------------------------
            with gr.Column(scale=2, min_width=340):
                gr.Markdown("## 1 · Build")
                model_dd = gr.Dropdown(
                    [(s.name, s.id) for s in models.values()],
                    value=first,
                    label="Model",
                    elem_id="model",
                    info="Every model a plugin registered.",
                )
                model_desc = gr.Markdown(spec0.description)
                with gr.Accordion("How this model works", open=False):
                    model_help = gr.Markdown(spec0.help or spec0.description)
                dataset_dd = gr.Dropdown(
                    datasets,
                    value="digits" if "digits" in datasets else datasets[0],
                    label="Dataset",
                    elem_id="dataset",
                    info=f"A built-in dataset, or '{UPLOAD}' to use the file below.",
                )
                upload = DataUpload(
                    label="Upload data: one .npy, .npz, .csv or MNIST IDX file, several images, "
                    "or a .zip of images (class sub-folders become labels); values are scaled "
                    "to [0, 1]",
                    height=160,
                    elem_id="upload",
                )
                with gr.Row(equal_height=True):
                    series_cb = gr.Checkbox(
                        False,
                        label="Time series",
                        info="Rows of the CSV (or .npy) are time steps, cut into windows.",
                        elem_id="series",
                        scale=2,
                    )
                    window_nb = gr.Number(
                        DEFAULT_WINDOW,
                        label="Window (steps)",
                        precision=0,
                        minimum=2,
                        elem_id="series-window",
                        visible=False,
                        scale=1,
                    )
                    stride_nb = gr.Number(
                        None,
                        label="Stride (empty: window ÷ 8)",
                        precision=0,
                        minimum=1,
                        elem_id="series-stride",
                        visible=False,
                        scale=1,
                    )
                data_md = gr.Markdown(elem_id="data-summary")
                gr.Markdown("### Hyperparameters")

                # Generated from the chosen model's schema, drawn again whenever ``shown``
                # changes: a model chosen (defaults) or a run opened (its values).
                shown = gr.State(_shown(first, widgets.defaults(spec0.schema())))

                @gr.render(
                    inputs=[shown],
                    triggers=[demo.load, shown.change],
                    concurrency_limit=None,
                    show_progress="hidden",
                )
                def _model_controls(chosen: dict[str, Any]) -> None:
                    try:
                        spec = get_model(chosen["model"])
                    except Exception as exc:  # noqa: BLE001 - a model gone since: say so
                        gr.Markdown(f"⚠️ {sentence(exc)}")
                        return
                    for name, comp in widgets.model_controls(spec, chosen["values"]).items():
                        comp.change(
                            _setter(name),
                            [comp, params_json],
                            [params_json],
                            api_visibility="private",
                            show_progress="hidden",
                            **IN_ORDER,
                        )

                with gr.Accordion("Training settings", open=False):
                    cfg_controls = {
                        name: widgets.control(name, prop, elem_id=f"train-{name}")
                        for name, prop in cfg_schema["properties"].items()
                    }
                    log_cb = gr.CheckboxGroup(
                        [(t.label, t.name) for t in get_trackers().values()],
                        value=[],
                        label="Log to",
                        info="Experiment trackers that record this training: TensorBoard writes "
                        "into the run's tensorboard/ folder, MLflow to MLFLOW_TRACKING_URI or "
                        "./mlruns. Each needs its extra, e.g. pip install 'aelab[tensorboard]'.",
                        elem_id="train-log",
                    )
                with gr.Accordion("Architecture", open=True):
                    arch_md = gr.Markdown(elem_id="architecture")
                with gr.Accordion(
                    "Settings as JSON (what the /train endpoint receives)", open=False
                ):
                    params_json = gr.JSON(widgets.defaults(spec0.schema()), label="params")
                    config_json = gr.JSON(widgets.defaults(cfg_schema), label="config")
            # -- 2. train ---------------------------------------------------------------------
            with gr.Column(scale=3, min_width=420):
                gr.Markdown("## 2 · Train")
                with gr.Row():
                    train_btn = gr.Button("Train", variant="primary", elem_id="train")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                    continue_btn = gr.Button("Continue training", elem_id="continue")
                # The training stream alone writes #status; Stop acknowledges in its own note, or
                # its reply could arrive after the final "Stopped" update and overwrite it.
                stop_note = gr.Markdown("", elem_id="stop-note")
                status = gr.Markdown("Press **Train** to start.", elem_id="status")
                loss_plot = gr.LinePlot(
                    None,
                    x="epoch",
                    y="loss",
                    color="series",
                    label="Loss curves",
                    x_title="epoch",
                    y_title="loss",
                    color_title="loss term",
                    elem_id="loss-plot",
                )
                loss_small = gr.LinePlot(
                    None,
                    x="epoch",
                    y="loss",
                    color="series",
                    label="Smaller loss terms, on their own scale",
                    x_title="epoch",
                    y_title="loss",
                    color_title="loss term",
                    elem_id="loss-plot-small",
                    visible=False,
                )
                gr.Markdown(LOSS_CAPTION)
                metrics_plot = gr.LinePlot(
                    None,
                    x="epoch",
                    y="value",
                    color="series",
                    label="Metrics (not losses: never added to the loss)",
                    x_title="epoch",
                    y_title="value",
                    color_title="metric",
                    elem_id="metrics-plot",
                    visible=False,
                )
                grid = gr.Image(
                    label=grid_title(set(spec0.capabilities), False)[0],
                    format="png",
                    interactive=False,
                    elem_id="grid",
                    elem_classes=["pixels"],
                    height=260,
                )
                grid_caption = gr.Markdown(GRID_CAPTION, elem_id="grid-caption")
                run_box = gr.Textbox(
                    label="Current run",
                    elem_id="run-id",
                    info="Export and Continue training act on this run; paste a saved run's id "
                    "to use that one.",
                )
                with gr.Accordion("Last result as JSON (what /train returns last)", open=False):
                    result_json = gr.JSON(label="result")

                with gr.Tabs():
                    # -- 3. latent space --------------------------------------------------------------
                    with gr.Tab("3 · Latent space", elem_id="tab-latent"):
                        gr.Markdown(LATENT_HELP)
                        latent_note = gr.Markdown(elem_id="latent-note")
                        with gr.Row():
                            method = gr.Radio(
                                [("PCA (direct for 2 units)", "auto"), ("t-SNE", "tsne")],
                                value="auto",
                                label="Projection",
                            )
                            map_btn = gr.Button("Map the codes", elem_id="map")
                        latent_plot = gr.ScatterPlot(
                            x="x",
                            y="y",
                            color="label",
                            label="Codes of held-out data",
                            x_title="code axis 1 (see below)",
                            y_title="code axis 2",
                            color_title="label",
                            elem_id="latent",
                        )
                        latent_caption = gr.Markdown()
                        gr.Markdown("### Interpolation")
                        with gr.Row():
                            in_a = gr.Number(0, label="Input A (held-out index)", precision=0)
                            in_b = gr.Number(1, label="Input B (held-out index)", precision=0)
                            steps = gr.Slider(2, 16, value=8, step=1, label="Steps between them")
                            interp_btn = gr.Button("Interpolate", elem_id="interpolate")
                        interp_img = gr.Image(
                            label="A → B through the code space",
                            format="png",
                            interactive=False,
                            elem_classes=["pixels"],
                            height=120,
                        )
                        interp_caption = gr.Markdown()
                        gr.Markdown("### Samples from the prior (models that sample)")
                        with gr.Row():
                            n_samples = gr.Slider(8, 64, value=16, step=8, label="Samples")
                            sample_seed = gr.Number(0, label="Seed", precision=0)
                            sample_btn = gr.Button("Draw samples", elem_id="samples")
                        sample_img = gr.Image(
                            label="Samples",
                            format="png",
                            interactive=False,
                            elem_classes=["pixels"],
                        )
                        sample_caption = gr.Markdown()
                        gr.Markdown("### Against PCA with the same code size")
                        pca_btn = gr.Button("Compare with PCA", elem_id="pca")
                        pca_caption = gr.Markdown()
                        pca_img = gr.Image(
                            label="Original · model · PCA",
                            format="png",
                            interactive=False,
                            elem_classes=["pixels"],
                        )
                    # -- 4. export --------------------------------------------------------------------
                    with gr.Tab("4 · Export", elem_id="tab-export"):
                        gr.Markdown(
                            "Writes the current run as ONNX graphs (autoencoder, encoder, decoder or "
                            "generator), each validated against the torch model with onnxruntime, plus a "
                            "manifest. The files run anywhere with `aelab.runtime` (numpy + onnxruntime)."
                        )
                        export_replace = exporting.replace_checkbox()
                        export_btn = gr.Button("Export ONNX", variant="primary", elem_id="export")
                        export_note = gr.Markdown(elem_id="export-note")
                        export_md = gr.Markdown(elem_id="export-report")
                        export_files = gr.File(
                            label="Exported files (zip of everything, then each file)",
                            file_count="multiple",
                            interactive=False,
                            elem_id="export-files",
                        )
                        gr.Markdown("### Quick check: run one input through the exported model")
                        with gr.Row():
                            check_upload = gr.File(
                                label="An image, .npy or .csv input", elem_id="check-upload"
                            )
                            check_btn = gr.Button("Run with onnxruntime", elem_id="check")
                        check_md = gr.Markdown()
                        check_img = gr.Image(
                            label="Input · ONNX output", format="png", interactive=False
                        )
                    # -- 5. runs ----------------------------------------------------------------------
                    with gr.Tab("5 · Runs", elem_id="tab-runs"):
                        with gr.Row():
                            # Custom values let a script open a run saved after the page was built.
                            run_dd = gr.Dropdown(
                                [],
                                label="Saved run",
                                scale=3,
                                elem_id="run-choice",
                                allow_custom_value=True,
                            )
                            refresh_btn = gr.Button("Refresh", scale=1)
                            open_btn = gr.Button(
                                "Open run", variant="primary", scale=1, elem_id="open-run"
                            )
                        runs_df = gr.Dataframe(label="Saved runs, newest first", interactive=False)
                        from . import comparing

                        gr.Markdown(comparing.INTRO)
                        with gr.Row():
                            # Custom values let a script compare runs saved after the page was
                            # built (a CheckboxGroup would refuse them).
                            compare_dd = gr.Dropdown(
                                [],
                                value=[],
                                multiselect=True,
                                allow_custom_value=True,
                                label="Runs to compare",
                                info="Tick the saved runs to put side by side (the list "
                                "follows the table).",
                                scale=3,
                                elem_id="compare-runs",
                            )
                            compare_data = gr.Dropdown(
                                [comparing.OWN, *(d for d in datasets if d != UPLOAD)],
                                value=comparing.OWN,
                                # "" from a script means the runs' own data; a name that is not
                                # a built-in is refused with the list of them.
                                allow_custom_value=True,
                                label="Score on",
                                info="A built-in dataset must have the runs' sample shape.",
                                scale=2,
                                elem_id="compare-data",
                            )
                        with gr.Row():
                            compare_nll = gr.Number(
                                0,
                                label="NLL samples (VAEs; 0: no NLL)",
                                precision=0,
                                minimum=0,
                                elem_id="compare-nll",
                            )
                            compare_fd = gr.Number(
                                1000,
                                label="Fréchet distance samples (models that sample; 0: none)",
                                precision=0,
                                minimum=0,
                                elem_id="compare-fd",
                            )
                            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare")
                        compare_df = gr.Dataframe(
                            label=comparing.TABLE_LABEL,
                            interactive=False,
                            elem_id="compare-table",
                        )
                        compare_note = gr.Markdown(elem_id="compare-note")
                        compare_plot = gr.LinePlot(
                            None,
                            x="epoch",
                            y="loss",
                            color="series",
                            label=comparing.PLOT_LABEL,
                            x_title="epoch",
                            y_title="loss",
                            color_title="run",
                            elem_id="compare-plot",
                        )
                        compare_small = gr.LinePlot(
                            None,
                            x="epoch",
                            y="loss",
                            color="series",
                            label="Runs with smaller losses, on their own scale",
                            x_title="epoch",
                            y_title="loss",
                            color_title="run",
                            elem_id="compare-plot-small",
                            visible=False,
                        )
                        gr.Markdown(comparing.PLOT_CAPTION)

        # -- 6. applications: one tab each, built from the registry, across the whole page -------
        gr.Markdown(apps.SECTION_INTRO, elem_id="use-intro")
        n_fns = len(demo.fns)
        with gr.Tabs(elem_id="apps"):
            panels = apps.build_tabs(session)
        panel_fns = list(demo.fns.values())[n_fns:]

        # -- event wiring ---------------------------------------------------------------------
        model_dd.input(
            guarded(_choose_model),
            [model_dd, shown],
            [params_json, model_desc, model_help, shown],
            api_visibility="private",
            **IN_ORDER,
        )
        for name, comp in cfg_controls.items():
            comp.change(
                _setter(name),
                [comp, config_json],
                [config_json],
                concurrency_limit=None,
                api_visibility="private",
                show_progress="hidden",
            )

        # The data summary (or the data's error, naming the user's file) follows every change
        # of the data controls at once, not only Train.
        series_inputs = [series_cb, window_nb, stride_nb]
        arch_inputs = [session, model_dd, dataset_dd, upload, params_json, config_json]
        for trigger in (
            params_json.change,
            config_json.change,
            dataset_dd.change,
            series_cb.change,
            window_nb.change,
            stride_nb.change,
            demo.load,
        ):
            trigger(
                _architecture,
                arch_inputs + series_inputs,
                [data_md, arch_md],
                api_visibility="private",
                show_progress="hidden",
                **ONE_AT_A_TIME,
            )
        # A new upload is the data even before the dropdown has switched to it.
        upload.change(
            _architecture_on_upload,
            arch_inputs + series_inputs,
            [data_md, arch_md],
            api_visibility="private",
            show_progress="hidden",
            **ONE_AT_A_TIME,
        )
        upload.upload(
            lambda f: UPLOAD if f else gr.skip(), [upload], [dataset_dd], api_visibility="private"
        )
        series_cb.change(
            lambda on: [gr.update(visible=bool(on))] * 2,
            [series_cb],
            [window_nb, stride_nb],
            api_visibility="private",
            queue=False,
        )

        train_outputs = [status, loss_plot, grid, result_json, run_box]
        train_event = train_btn.click(
            guarded(training.start_training),
            # Series settings and trackers last, so callers that pass the first six inputs keep
            # working.
            [
                session,
                model_dd,
                dataset_dd,
                upload,
                params_json,
                config_json,
                *series_inputs,
                log_cb,
            ],
            train_outputs,
            api_name="train",
            concurrency_limit=TRAIN_CONCURRENCY,
            concurrency_id="train",
            show_progress="minimal",
        )
        continue_event = continue_btn.click(
            guarded(training.continue_training),
            [session, run_box, dataset_dd, upload, config_json, *series_inputs, log_cb],
            train_outputs,
            api_name="continue",
            concurrency_limit=TRAIN_CONCURRENCY,
            concurrency_id="train",
            show_progress="minimal",
        )
        # Stop is cooperative: the trainer finishes its step, saves the run and reports.
        stop_btn.click(
            guarded(training.stop_training),
            [session],
            [stop_note],
            api_name="stop",
            concurrency_limit=None,
        )
        for button in (train_btn, continue_btn):
            button.click(lambda: "", None, [stop_note], api_visibility="private", queue=False)
        # The live picture's title and caption say what it shows for this model and data.
        for trigger in (model_dd.change, dataset_dd.change):
            trigger(
                _grid_title,
                [model_dd, dataset_dd],
                [grid, grid_caption],
                api_visibility="private",
                show_progress="hidden",
            )
        # The second loss panel follows the first (it reads the rows the session holds).
        loss_plot.change(
            training.small_terms,
            [session],
            [loss_small],
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,
        )
        # Application buttons follow the tab's model: enabled when it can serve them.
        view_groups = [
            (
                [
                    ("Map the codes", map_btn),
                    ("Interpolate", interp_btn),
                    ("Draw samples", sample_btn),
                    ("Compare with PCA", pca_btn),
                ],
                latent_note,
            ),
            ([("Export ONNX", export_btn), ("Run with onnxruntime", check_btn)], export_note),
        ]
        app_outputs = apps.outputs(panels) + [
            c for buttons, note in view_groups for c in [*(b for _, b in buttons), note]
        ]

        def app_availability(state: LabSession) -> list[Any]:
            return apps.availability(state, panels) + apps.view_availability(state, view_groups)

        for event in (train_event, continue_event):
            event.then(_runs_lists, None, [run_dd, runs_df], api_visibility="private")
            event.then(training.metrics_view, [session], [metrics_plot], api_visibility="private")
            event.then(app_availability, [session], app_outputs, api_visibility="private")
        demo.load(app_availability, [session], app_outputs, api_visibility="private")

        map_btn.click(
            guarded(views.latent_map),
            [session, method],
            [latent_plot, latent_caption],
            api_name="latent",
        )
        interp_btn.click(
            guarded(views.interpolation),
            [session, in_a, in_b, steps],
            [interp_img, interp_caption],
            api_name="interpolate",
        )
        sample_btn.click(
            guarded(views.sample_grid),
            [session, n_samples, sample_seed],
            [sample_img, sample_caption],
            api_name="samples",
        )
        pca_btn.click(
            guarded(views.pca_comparison), [session], [pca_img, pca_caption], api_name="compare_pca"
        )
        export_btn.click(
            guarded(exporting.export),
            [session, run_box, export_replace],
            [export_md, export_files],
            api_name="export",
        ).then(app_availability, [session], app_outputs, api_visibility="private")
        check_btn.click(
            guarded(exporting.quick_check),
            [session, check_upload],
            [check_img, check_md],
            api_name="check",
        )

        # Outputs that belong to one run (views, exports, application results): cleared when
        # the tab moves to another run or model, so no two runs' results share the page.
        views_api = {"latent", "interpolate", "samples", "compare_pca", "export", "check"}
        stale = _unique(
            c
            for fn in [*panel_fns, *(f for f in demo.fns.values() if f.api_name in views_api)]
            for c in fn.outputs
        )

        def clear_stale() -> list[None]:
            return [None] * len(stale)

        for button in (train_btn, continue_btn):
            button.click(clear_stale, None, stale, api_visibility="private", queue=False)
        model_dd.input(
            _forget_run(len(stale)),
            [session],
            [status, loss_plot, metrics_plot, grid, result_json, run_box, *stale],
            api_visibility="private",
        ).then(app_availability, [session], app_outputs, api_visibility="private")

        refresh_btn.click(guarded(_runs_lists), None, [run_dd, runs_df], api_name="runs")
        demo.load(_runs_lists, None, [run_dd, runs_df], api_visibility="private")
        # The page is built and served without torch; the first visit starts importing it.
        demo.load(warm_up, None, None, api_visibility="private", show_progress="hidden")
        # The comparison's list follows the table of saved runs, however it was refreshed.
        runs_df.change(
            comparing.tick_choices,
            [compare_dd],
            [compare_dd],
            api_visibility="private",
            show_progress="hidden",
        )
        compare_btn.click(
            guarded(comparing.compare),
            [compare_dd, compare_data, compare_nll, compare_fd],
            [compare_df, compare_note, compare_plot, compare_small],
            api_name="compare",
        )
        open_outputs = [
            model_dd,
            params_json,
            config_json,
            *cfg_controls.values(),
            shown,
            dataset_dd,
            loss_plot,
            grid,
            status,
            run_box,
            model_desc,
            model_help,
            upload,  # the run's data, restored; then its series settings
            *series_inputs,
        ]
        open_btn.click(
            guarded(_open_run(list(cfg_controls))),
            [session, run_dd],
            open_outputs,
            api_name="open_run",
        ).then(training.metrics_view, [session], [metrics_plot], api_visibility="private").then(
            app_availability, [session], app_outputs, api_visibility="private"
        )
        open_btn.click(clear_stale, None, stale, api_visibility="private", queue=False)
    return demo


def _blocks(**kwargs: Any) -> gr.Blocks:
    """``gr.Blocks(**kwargs)`` whose queue runs DEFAULT_CONCURRENCY of an event at once, unless
    the user's GRADIO_DEFAULT_CONCURRENCY_LIMIT says otherwise (as in any Gradio app).

    A Blocks makes its queue when it is created, reading that variable; it is set for that
    moment when the user has not set it (and removed again), which gives the queue that
    ``demo.queue(default_concurrency_limit=4)`` would, without gradio building its server app
    once more for the whole page (it already does when the Blocks is created and closed, and
    again in launch).
    """
    if os.environ.get(CONCURRENCY_VARIABLE):
        return gr.Blocks(**kwargs)
    os.environ[CONCURRENCY_VARIABLE] = str(DEFAULT_CONCURRENCY)
    try:
        return gr.Blocks(**kwargs)
    finally:
        os.environ.pop(CONCURRENCY_VARIABLE, None)


def _grid_title(model_id: str, dataset: str) -> tuple[Any, Any]:
    """Label and caption of the live picture for this model and dataset."""
    from ..plugins import get_datasets

    try:
        caps = set(get_model(model_id).capabilities)
    except Exception:  # an unknown id: the dropdown shows the error elsewhere
        return gr.skip(), gr.skip()
    kind = _builtin_kind(dataset) if dataset in get_datasets() else "image"
    label, caption = grid_title(caps, kind == "series")
    # Charts of flat data and series are taller than a strip of tiles: give them room to read.
    return gr.Image(label=label, height=260 if kind == "image" else 560), caption


@functools.lru_cache(maxsize=32)
def _builtin_kind(name: str) -> str:
    """ "image", "flat" or "series" for a built-in dataset (they are small: bundled or made)."""
    from ..data import load_data
    from ..series import is_series

    try:
        data = load_data(name)
    except Exception:  # a broken dataset plugin: training reports it with a sentence
        return "image"
    return "series" if is_series(data) else data.kind


def _unique(components: Any) -> list[Any]:
    """Components in order of first appearance, each once."""
    seen: dict[int, Any] = {}
    for c in components:
        seen.setdefault(c._id, c)
    return list(seen.values())


def _forget_run(n_stale: int) -> Any:
    def forget_run(session: LabSession) -> list[Any]:
        """Another model was chosen: the tab lets go of its run and clears that run's results
        (unless it is training: the training stream owns those outputs until it ends)."""
        if session.training:
            return [gr.skip()] * (6 + n_stale)
        session.model, session.run_id, session.run_dir = None, None, None
        session.history, session.metric_rows, session.export_folder = [], [], None
        session.loss_rows = []
        status = "Press **Train** to start, or open a saved run in the Runs tab."
        hidden = gr.LinePlot(value=None, visible=False)
        return [status, None, hidden, None, None, "", *[None] * n_stale]

    return forget_run


def _setter(name: str) -> Any:
    """An event function writing one control's value into a settings dict."""

    def set_value(value: Any, current: dict | None) -> dict:
        return {**(current or {}), name: value}

    return set_value


def _architecture(
    session: LabSession,
    model_id: str,
    dataset: str,
    upload: Any,
    params: dict,
    config: dict,
    *series: Any,
) -> tuple[str, str]:
    """Data and architecture summaries; a bad value or file is shown here at once instead of
    interrupting typing (training then refuses with the same sentence)."""
    try:
        data = load_dataset(session, dataset, upload, series_options(*series))
    except Exception as exc:
        return (
            f"⚠️ **Cannot use this data:** {sentence(exc)}",
            "*The architecture is shown once the data can be read.*",
        )
    summary = dataset_summary(data)
    try:
        return summary, views.architecture(model_id, data, None, params, config)[1]
    except Exception as exc:
        return summary, f"⚠️ **Cannot build this model with this data:** {sentence(exc)}"


def _architecture_on_upload(
    session: LabSession, model_id: str, dataset: str, upload: Any, *rest: Any
) -> tuple[str, str]:
    """After the upload box changed: its files when it holds some (the dropdown is being set to
    them), else the dropdown's choice."""
    return _architecture(session, model_id, UPLOAD if upload else dataset, upload, *rest)


def _runs_lists() -> tuple:
    choices = training.run_choices()
    return gr.update(
        choices=choices, value=choices[0][1] if choices else None
    ), training.runs_table()


_openings = itertools.count()


def _shown(model_id: str, values: dict[str, Any], opening: int | None = None) -> dict[str, Any]:
    """What the model controls show: this model's, set to ``values``.

    The controls are drawn again when this state changes. A run opened gets a number of its own
    (``opening``), so that opening a run again draws them again even for the same model and
    values (after its controls were edited); a model chosen has none, so that choosing it twice
    (the dropdown also reports its value when it loses focus) draws them once.
    """
    return {"model": model_id, "values": values, "opening": opening}


def _choose_model(model_id: str, shown: dict[str, Any]) -> tuple:
    """Switch the page to a model: its description, help and default hyperparameters; nothing
    when it is the model shown already (its edited settings are kept)."""
    if shown and shown.get("model") == model_id:
        return (gr.skip(),) * 4
    spec = get_model(model_id)
    values = widgets.defaults(spec.schema())
    return values, spec.description, spec.help or spec.description, _shown(model_id, values)


def _open_run(cfg_names: list[str]) -> Any:
    def open_run(session: LabSession, run_id: str) -> Any:
        """Reopen a saved run: its model, settings, curves and data (the /open_run endpoint)."""
        out = training.open_run(session, run_id)
        model_id = out["model_id"]
        spec = get_model(model_id)
        n_skip = 3 + len(cfg_names) + 2  # ... the model controls, the dataset
        # Clear the plot first so it takes the run's series from the frame that follows.
        yield (*[gr.skip()] * n_skip, None, *[gr.skip()] * 9)
        yield (
            model_id,
            out["values"],
            out["config"],
            *[out["config"][n] for n in cfg_names],
            _shown(model_id, out["values"], next(_openings)),
            out["dataset"] or gr.skip(),
            out["loss"],
            out["grid"],
            out["status"],
            run_id,
            spec.description,
            spec.help or spec.description,
            out["upload"],
            *out["series"],
        )

    return open_run

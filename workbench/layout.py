"""The workbench page: one `gr.Blocks` with a tab per screen, wired to the handler modules.

The layout nests like the page. Events are wired next to their components and
call the plain handlers of `launch`, `runs`, `compare`, `whatif` and `learn`
with the shared engine bound in. Per-user form values live in the components of
each browser session; shared data lives only in the engine's store.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from msplora.engine import Engine
from msplora.presets import PRESETS

from . import about, compare, launch, learn, runs, whatif
from .architecture import DEFAULT_MODEL, bundled_models

__all__ = ["build_app", "REFRESH_SECONDS"]

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
PLOT_OUTPUTS = 7  # loss, eval metrics, learning rate, budget, spectra, spectra evolution, redundancy


def build_app(
    engine: Engine,
    downloads_dir: Path,
    notebooks_dir: Path = learn.NOTEBOOKS_DIR,
    jupyterlab: learn.JupyterLab | None = None,
) -> gr.Blocks:
    """Build the workbench page over `engine`; files for download are written under `downloads_dir`.

    The Learn tab starts `jupyterlab` on request (a new one over `notebooks_dir` when None);
    the caller stops it when the app exits.
    """
    jupyterlab = jupyterlab or learn.JupyterLab(notebooks_dir)

    with gr.Blocks(title="MSPLoRA Workbench", analytics_enabled=False) as app:
        gr.Markdown(
            "# MSPLoRA Workbench\n"
            "Multi-Scale Pyramid LoRA: adapters shared by all blocks (global), by groups of blocks (mid) "
            "and per block (layer). Launch fine-tunes, watch them train, compare them, and size budgets."
        )
        with gr.Tabs():
            with gr.Tab("Launch", id="launch"):
                _launch_tab(engine, app)
            with gr.Tab("Runs", id="runs"):
                _runs_tab(engine, downloads_dir)
            with gr.Tab("Compare", id="compare") as compare_tab:
                _compare_tab(engine, compare_tab)
            with gr.Tab("What-if budgets", id="whatif"):
                _whatif_tab(downloads_dir)
            with gr.Tab("Learn", id="learn"):
                _learn_tab(notebooks_dir, jupyterlab)
        with gr.Accordion("About the data and models", open=False):
            _about_panel()
    return app


def _launch_tab(engine: Engine, app: gr.Blocks) -> None:
    model_choices, default_targets, _ = launch.target_choices(DEFAULT_MODEL)
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### Model and data")
            model = gr.Dropdown(bundled_models(), value=DEFAULT_MODEL, allow_custom_value=True, label="Model",
                                info="A bundled model, a local folder saved with save_pretrained, or a hub id.",
                                elem_id="model")
            model_message = gr.Markdown("", elem_id="model_message")  # why the model cannot be read
            dataset = gr.Dropdown(launch.bundled_datasets(), value="movie-sentences", allow_custom_value=True,
                                  label="Dataset", info="A bundled dataset, or a local CSV/JSONL/Parquet path.",
                                  elem_id="dataset")
            upload = gr.File(label="Or upload a CSV, JSONL or Parquet file", file_types=list(launch.UPLOAD_SUFFIXES),
                             height=120, elem_id="upload")
            upload_message = gr.Markdown("", elem_id="upload_message")
            with gr.Row():
                text_column = gr.Dropdown([], label="Text column", allow_custom_value=True, elem_id="text_column")
                text_pair_column = gr.Dropdown([], label="Text pair column (optional)", allow_custom_value=True)
                label_column = gr.Dropdown([], label="Label column", allow_custom_value=True, elem_id="label_column")
            task = gr.Radio(["classification", "regression", "causal-lm"], value="classification", label="Task")

            gr.Markdown("### Adapters")
            method = gr.Radio([("MSPLoRA", "msplora"), ("LoRA baseline (PEFT)", "lora")], value="msplora",
                              label="Method")
            target_modules = gr.CheckboxGroup(model_choices, value=default_targets, label="Target modules",
                                              info="Linear maps inside the model's blocks.", elem_id="targets")
            with gr.Row():
                rank = gr.Number(8, precision=0, label="Rank (global level)", elem_id="rank")
                rank_decay = gr.Number(2.0, label="Rank decay", info="8 → 4 → 2 for decay 2")
                mid_groups = gr.Number(3, precision=0, label="Mid groups", elem_id="mid_groups")
            group_boundaries = gr.Textbox("", label="Explicit group boundaries (optional)",
                                          placeholder="e.g. 2, 4: groups start at blocks 0, 2 and 4")
            levels = gr.CheckboxGroup(["global", "mid", "layer"], value=["global", "mid", "layer"],
                                      label="Levels on")
            with gr.Row():
                alpha = gr.Number(16.0, label="Alpha", info="Each level is scaled by alpha / rank.")
                dropout = gr.Number(0.0, label="Dropout")
                staged = gr.Checkbox(False, label="Staged training (global → mid → layer)")
            control_error = gr.Markdown("", elem_id="control_error")  # the preview's error, next to the controls

            with gr.Accordion("Training settings", open=False):
                with gr.Row():
                    max_steps = gr.Number(200, precision=0, label="Steps", elem_id="max_steps")
                    batch_size = gr.Number(16, precision=0, label="Batch size")
                    learning_rate = gr.Number(5e-4, label="Learning rate")
                with gr.Row():
                    eval_steps = gr.Number(50, precision=0, label="Evaluate every (steps)",
                                           elem_id="eval_steps")
                    spectra_steps = gr.Number(50, precision=0, label="Spectra every (steps)",
                                              elem_id="spectra_steps")
                    seed = gr.Number(0, precision=0, label="Seed")
                    max_length = gr.Number(128, precision=0, label="Max length (tokens)")
            run_name = gr.Textbox("", label="Run name (optional)", elem_id="run_name")

        with gr.Column(scale=3):
            gr.Markdown("### Preview")
            error = gr.Markdown("", elem_id="launch_error")
            pyramid = gr.Plot(label="Pyramid over the blocks")
            budget = gr.Plot(label="Parameter budget")
            estimate = gr.Markdown("")
            with gr.Row():
                show_spec = gr.Button("Show spec and CLI command")
                launch_button = gr.Button("Launch", variant="primary", elem_id="launch_button")
            launch_message = gr.Markdown("", elem_id="launch_message")
            spec_yaml = gr.Code(language="yaml", label="spec.yaml", visible=True)
            cli = gr.Textbox(label="Command line", interactive=False)

    # The Number controls carry no Gradio minimum: launch.build_spec checks the values and names the
    # control, where Gradio's own check only shows a toast without the field.
    # Controls in LaunchForm field order.
    controls = [
        model, dataset, task, method, target_modules, rank, rank_decay, mid_groups, group_boundaries, levels,
        alpha, dropout, staged, max_steps, batch_size, learning_rate, eval_steps, spectra_steps, seed,
        max_length, text_column, text_pair_column, label_column, run_name,
    ]
    assert len(controls) == len(launch.FORM_FIELDS)

    def update_preview(*values):
        result = launch.preview(launch.LaunchForm.from_values(*values))
        message = f"**Cannot launch:** {result.error}" if result.error else ""
        return (result.pyramid, result.budget, result.estimate, message, message,
                gr.update(interactive=result.can_launch))

    preview_outputs = [pyramid, budget, estimate, error, control_error, launch_button]
    gr.on([app.load, *(control.change for control in controls)], update_preview, inputs=controls,
          outputs=preview_outputs, show_progress="hidden", trigger_mode="always_last")

    def update_targets(model_name):
        choices, defaults, message = launch.target_choices(model_name)
        return gr.update(choices=choices, value=defaults), (f"**Cannot launch:** {message}" if message else "")

    model.change(update_targets, inputs=model, outputs=[target_modules, model_message])

    def use_upload(path):
        if not path:
            return gr.update(), *(gr.update() for _ in range(3)), ""
        received = launch.receive_upload(path)
        if not received.accepted:
            # Clear the dataset, so Launch stays disabled instead of training on the previous dataset.
            return (gr.update(value=None), *(gr.update(choices=[], value=None) for _ in range(3)),
                    f"**Upload rejected:** {received.message}")
        return (gr.update(value=str(received.path)),
                *(gr.update(choices=received.columns, value=None) for _ in range(3)),
                f"Stored the upload as `{received.path}`. Pick its text and label columns.")

    upload.upload(use_upload, inputs=upload,
                  outputs=[dataset, text_column, text_pair_column, label_column, upload_message])

    def show_method_controls(chosen):
        return tuple(gr.update(interactive=launch.msplora_only(chosen)) for _ in launch.MSPLORA_ONLY_FIELDS)

    method.change(show_method_controls, inputs=method,
                  outputs=[rank_decay, mid_groups, group_boundaries, levels, staged])

    def dataset_columns(path):
        if not path or not Path(path).is_file():
            return (gr.update(),) * 3
        try:
            columns = launch.file_columns(path)
        except (ValueError, OSError) as error_:
            logger.info("Could not read the columns of %s: %s", path, error_)
            return (gr.update(),) * 3
        return tuple(gr.update(choices=columns) for _ in range(3))

    dataset.change(dataset_columns, inputs=dataset, outputs=[text_column, text_pair_column, label_column])

    show_spec.click(lambda *values: launch.spec_text(launch.LaunchForm.from_values(*values)),
                    inputs=controls, outputs=[spec_yaml, cli])
    launch_button.click(lambda *values: launch.submit(engine, launch.LaunchForm.from_values(*values))[0],
                        inputs=controls, outputs=launch_message)


def _runs_tab(engine: Engine, downloads_dir: Path) -> None:
    timer = gr.Timer(REFRESH_SECONDS)
    shown_table = gr.State("")  # JSON of the table this session shows
    shown_view = gr.State("")  # signature of the run view this session shows
    table = gr.Dataframe(runs.runs_table(engine), label="Runs of the shared engine (click a row to open it)",
                         interactive=False, elem_id="runs_table")
    with gr.Row():
        run_id = gr.Dropdown([run.id for run in engine.runs()], value=None, label="Run", allow_custom_value=True,
                             elem_id="run_id", scale=2)
        smoothing = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label="Loss smoothing (EMA weight)")
        log_y = gr.Checkbox(False, label="Log-scale loss")
    with gr.Row():
        stop = gr.Button("Stop run", variant="stop", elem_id="stop_button")
        resume = gr.Button("Resume run", elem_id="resume_button")
        prepare = gr.Button("Prepare downloads")
    action_message = gr.Markdown("", elem_id="run_message")
    downloads = gr.File(label="Artifacts (folders zipped)", file_count="multiple", interactive=False,
                        elem_id="downloads")

    summary = gr.Markdown("Select a run in the table.", elem_id="run_summary")
    with gr.Row():
        loss = gr.Plot(label="Loss", elem_id="loss_plot")
        eval_metrics = gr.Plot(label="Evaluation metrics")
    with gr.Row():
        learning_rate = gr.Plot(label="Learning rate")
        budget = gr.Plot(label="Budget per level")
    spectra = gr.Plot(label="Singular values per level", elem_id="spectra_plot")
    with gr.Row():
        evolution = gr.Plot(label="Spectra over steps")
        redundancy = gr.Plot(label="Redundancy between blocks")
    log = gr.Textbox(label="Log (last 200 lines)", lines=8, max_lines=20, interactive=False)

    view_outputs = [summary, loss, eval_metrics, learning_rate, budget, spectra, evolution, redundancy, log]

    def show_run(selected, weight, log_scale):
        # Take the signature before reading the view: a run that changes in between is redrawn next tick.
        signature = runs.view_signature(engine, selected) + f"|{weight}|{log_scale}"
        view = runs.run_view(engine, selected, smoothing=weight, log_y=log_scale)
        return (view.summary, view.loss, view.eval_metrics, view.learning_rate, view.budget, view.spectra,
                view.spectra_evolution, view.redundancy, view.log, signature)

    def refresh_run(selected, weight, log_scale, shown):
        # Redraw only when the run has new rows, so a finished run keeps its zoom and does not flicker.
        if runs.view_signature(engine, selected) + f"|{weight}|{log_scale}" == shown:
            return (*(gr.update() for _ in view_outputs), shown)
        return show_run(selected, weight, log_scale)

    def refresh_table(shown):
        # Skip unchanged tables, so an idle page does not re-render (and lose a click) every tick.
        frame = runs.runs_table(engine)
        signature = frame.to_json()
        if signature == shown:
            return gr.update(), gr.update(), shown
        return frame, gr.update(choices=list(frame["id"])), signature

    def pick_row(event: gr.SelectData):
        return event.row_value[0]

    table.select(pick_row, outputs=run_id)
    gr.on([run_id.change, smoothing.change, log_y.change], show_run, inputs=[run_id, smoothing, log_y],
          outputs=[*view_outputs, shown_view], show_progress="hidden")
    timer.tick(refresh_table, inputs=shown_table, outputs=[table, run_id, shown_table],
               show_progress="hidden")
    timer.tick(refresh_run, inputs=[run_id, smoothing, log_y, shown_view], outputs=[*view_outputs, shown_view],
               show_progress="hidden")

    stop.click(functools.partial(runs.stop_run, engine), inputs=run_id, outputs=action_message)
    resume.click(functools.partial(runs.resume_run, engine), inputs=run_id, outputs=action_message)
    prepare.click(lambda selected: runs.artifact_files(engine, selected, downloads_dir), inputs=run_id,
                  outputs=downloads)


def _compare_tab(engine: Engine, tab: gr.Tab) -> None:
    with gr.Row():
        picked = gr.Dropdown(compare.run_choices(engine), multiselect=True, label="Runs to compare", scale=3,
                             elem_id="compare_runs")
        refresh = gr.Button("Refresh run list", scale=1)
    with gr.Row():
        metric = gr.Dropdown(["train loss"], value="train loss", label="Metric", allow_custom_value=True)
        smoothing = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label="Smoothing (EMA weight)")
        log_y = gr.Checkbox(False, label="Log scale")
    curves = gr.Plot(label="Curves", elem_id="compare_curves")
    configs = gr.Dataframe(label="Configs side by side (differences highlighted)", interactive=False, wrap=True)
    differing = gr.Markdown("")
    pareto = gr.Plot(label="Trainable parameters against final metric")

    def refresh_runs(selected):
        choices = compare.run_choices(engine)
        known = {run_id for _, run_id in choices}
        return gr.update(choices=choices, value=[run_id for run_id in selected or [] if run_id in known])

    def show(selected, metric_name, weight, log_scale):
        result = compare.compare_runs(engine, selected, metric_name, smoothing=weight, log_y=log_scale)
        metrics = compare.metric_choices(engine, selected) or ["train loss"]
        note = ("Differences: " + ", ".join(result.differing)) if result.differing else ""
        return (result.curves, result.configs, note, result.pareto,
                gr.update(choices=metrics, value=metric_name if metric_name in metrics else metrics[0]))

    refresh.click(refresh_runs, inputs=picked, outputs=picked)
    tab.select(refresh_runs, inputs=picked, outputs=picked)
    gr.on([picked.change, metric.change, smoothing.change, log_y.change], show,
          inputs=[picked, metric, smoothing, log_y], outputs=[curves, configs, differing, pareto, metric])


def _whatif_tab(downloads_dir: Path) -> None:
    gr.Markdown("Exact adapter budgets from the architecture alone: no weights are loaded.")
    with gr.Row():
        with gr.Column(scale=1):
            architecture = gr.Dropdown([*PRESETS, whatif.CUSTOM], value="llama-2-7b", label="Architecture")
            config_json = gr.Code(language="json", label="config.json (for a custom architecture)", lines=8)
            targets = gr.Textbox(whatif.default_targets("llama-2-7b"), label="Target modules (comma-separated)")
            ranks = gr.CheckboxGroup([2, 4, 8, 16, 32, 64, 128], value=[8, 16, 32, 64], label="Top ranks")
            decays = gr.CheckboxGroup([1.0, 2.0, 4.0], value=[2.0], label="Rank decays")
            groups = gr.CheckboxGroup([1, 2, 3, 4, 6, 8], value=[3], label="Mid groups")
            compute = gr.Button("Compute budgets", variant="primary")
        with gr.Column(scale=2):
            notes = gr.Markdown("")
            figure = gr.Plot(label="Budgets")
            table = gr.Dataframe(pd.DataFrame(columns=whatif.TABLE_COLUMNS), label="Budgets", interactive=False)
            csv = gr.File(label="Table as CSV", interactive=False)

    def run(*values):
        result = whatif.whatif(*values, export_dir=downloads_dir / "whatif")
        return result.figure, whatif.display_table(result.table), result.csv_path, result.notes

    architecture.change(whatif.default_targets, inputs=architecture, outputs=targets)
    compute.click(run, inputs=[architecture, config_json, targets, ranks, decays, groups],
                  outputs=[figure, table, csv, notes])


def _learn_tab(notebooks_dir: Path, jupyterlab: learn.JupyterLab) -> None:
    notebooks = learn.list_notebooks(notebooks_dir)
    gr.Markdown("Teaching notebooks: read them here, or open them in JupyterLab to run and edit.")
    listing = gr.Dataframe(notebooks, interactive=False, label="Notebooks", elem_id="notebooks")
    with gr.Row():
        chosen = gr.Dropdown(list(notebooks["file"]), label="Notebook", scale=2)
        render = gr.Button("Read here")
        open_lab = gr.Button("Open JupyterLab")
    link = gr.Markdown("")
    page = gr.HTML("", elem_id="notebook_page")

    def pick_notebook(event: gr.SelectData):
        return event.row_value[0]

    def start_lab():
        try:
            url = jupyterlab.start()
        except (RuntimeError, TimeoutError, OSError) as error:
            logger.warning("JupyterLab did not start: %s", error)
            return f"**JupyterLab did not start:** {error}"
        return f"JupyterLab runs at [{url}]({url}) (127.0.0.1 only)."

    listing.select(pick_notebook, outputs=chosen)
    render.click(lambda name: learn.render_notebook(name, notebooks_dir), inputs=chosen, outputs=page)
    open_lab.click(start_lab, outputs=link)


def _about_panel() -> None:
    try:
        frame, citations = about.assets_frame(), about.assets_markdown()
    except ImportError as error:
        gr.Markdown(f"The asset registry is not available: {error}")
        return
    gr.Dataframe(frame, interactive=False, label="Bundled assets", wrap=True)
    gr.Markdown(citations)

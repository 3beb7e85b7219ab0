"""Tests for workbench.compare: overlaid curves, config differences and the Pareto scatter."""

from workbench import compare


def test_compare_two_runs(engine, record_run, tiny_spec):
    small = record_run(engine, tiny_spec(name="small", rank=4), accuracy=0.70)
    large = record_run(engine, tiny_spec(name="large", rank=8), accuracy=0.80)
    result = compare.compare_runs(engine, [small, large], "eval accuracy")

    assert len(result.curves.data) == 2
    assert "rank" in result.differing
    assert "name" in result.differing
    assert "model" not in result.differing
    # Pareto: the rank-4 run has fewer parameters and lower accuracy, so both are on the front.
    front = next(trace for trace in result.pareto.data if trace.name == "Pareto front")
    assert list(front.y) == [0.70, 0.80]


def test_compare_highlights_differences(engine, record_run, tiny_spec):
    first = record_run(engine, tiny_spec(name="a", learning_rate=1e-3))
    second = record_run(engine, tiny_spec(name="b", learning_rate=5e-4))
    styled = compare.compare_runs(engine, [first, second]).configs
    style_block = styled.to_html().split("</style>")[0]
    assert "#fff3b0" in style_block
    highlighted = style_block.split("{")[0]  # the selectors that get the difference style
    fields = list(styled.data["field"])
    assert f"_row{fields.index('learning_rate')}_col1" in highlighted
    assert f"_row{fields.index('name')}_col2" in highlighted
    assert f"_row{fields.index('model')}_col1" not in highlighted


def test_metric_choices_from_store(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec())
    assert compare.metric_choices(engine, [run_id]) == [
        "train loss", "eval accuracy", "eval loss", "train learning_rate"]


def test_final_points_budget_and_metric(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec(name="p"), accuracy=0.66)
    points = compare.final_points(engine, [run_id], "accuracy")
    assert points.loc[0, "metric"] == 0.66
    # Total of MSPLoRA 8/4/2 on MiniLM query and value: 12288 + 18432 + 18432 (formula r * (in + out)).
    assert points.loc[0, "trainable"] == 49152


def test_compare_nothing_selected(engine):
    result = compare.compare_runs(engine, [])
    assert result.differing == []
    assert result.curves.layout.annotations[0].text == compare.NOTHING_SELECTED


def test_run_choices_labels(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec(name="labelled"))
    assert compare.run_choices(engine) == [(f"labelled [{run_id}] completed", run_id)]


def test_gradio_table_keeps_highlight(engine, record_run, tiny_spec):
    import gradio as gr

    first = record_run(engine, tiny_spec(name="a", rank=4))
    second = record_run(engine, tiny_spec(name="b", rank=8))
    styled = compare.compare_runs(engine, [first, second]).configs
    shown = gr.Dataframe(interactive=False).postprocess(styled)
    fields = [row[0] for row in shown.data]
    styling = shown.metadata["styling"]
    assert styling[fields.index("rank")][1] == compare.DIFFERENCE_STYLE
    assert styling[fields.index("model")][1] == ""


def test_config_table_lora_not_applicable(engine, record_run, tiny_spec):
    msplora_run = record_run(engine, tiny_spec(name="pyramid"))
    lora_run = record_run(engine, tiny_spec(name="plain", method="lora"))
    table = compare.config_table(engine, [msplora_run, lora_run])
    lora_column = table[f"plain [{lora_run}]"]
    msplora_column = table[f"pyramid [{msplora_run}]"]
    for field in ("rank_decay", "mid_groups", "group_boundaries", "levels", "staged"):
        assert lora_column[field] == compare.NOT_APPLICABLE, field
    assert msplora_column["rank_decay"] == "2.0"
    assert lora_column["rank"] == "8"

"""Tests for workbench.learn and workbench.about: notebook listing, rendering, JupyterLab, assets."""

import urllib.request

import nbformat
import pytest

from workbench import about, learn


def write_notebook(folder, name, markdown):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(markdown), nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(notebook, folder / name)


def test_list_notebooks_titles(tmp_path):
    write_notebook(tmp_path, "01_pyramid.ipynb", "# 1. The pyramid\nWhy share adapters across blocks.")
    write_notebook(tmp_path, "02_budget.ipynb", "No heading here, only text.")
    frame = learn.list_notebooks(tmp_path)
    assert list(frame["file"]) == ["01_pyramid.ipynb", "02_budget.ipynb"]
    assert list(frame["title"]) == ["1. The pyramid", "02_budget"]
    assert frame.loc[0, "description"] == "Why share adapters across blocks."


def test_list_notebooks_empty_folder(tmp_path):
    assert learn.list_notebooks(tmp_path).empty


def test_render_notebook_html(tmp_path):
    write_notebook(tmp_path, "lesson.ipynb", "# Lesson\nText.")
    html = learn.render_notebook("lesson.ipynb", tmp_path)
    assert html.startswith("<iframe srcdoc=")
    assert "Lesson" in html


def test_render_notebook_outside_folder(tmp_path):
    outside = tmp_path / "other"
    outside.mkdir()
    write_notebook(outside, "secret.ipynb", "# Secret")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    assert "not found" in learn.render_notebook("../other/secret.ipynb", notebooks)


@pytest.mark.slow
def test_jupyterlab_starts_on_localhost(tmp_path):
    lab = learn.JupyterLab(tmp_path, startup_timeout_s=120)
    try:
        url = lab.start()
        assert url.startswith("http://127.0.0.1:")
        assert lab.start() == url  # a second request reuses the running server
        with urllib.request.urlopen(url.replace("/lab?", "/api/status?"), timeout=10) as response:
            assert response.status == 200
    finally:
        lab.stop()
    assert lab.process is None


def test_assets_panel_lists_sources():
    frame = about.assets_frame()
    assert "minilm-l6" in set(frame["name"])
    assert "movie-sentences" in set(frame["name"])
    assert frame["license"].str.len().min() > 0
    citations = about.assets_markdown()
    assert "Hutto" in citations

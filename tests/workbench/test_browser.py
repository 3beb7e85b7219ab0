"""End-to-end test of the workbench in a real headless Chromium, driven by Playwright.

The app runs in a subprocess on a free 127.0.0.1 port over a temporary store,
with its real engine worker. The test launches a short run on a tiny BERT saved
from a config (a local model folder) and a tiny CSV, watches loss points and
spectra appear, stops a long run, and opens the finished run's charts.
Screenshots of every screen go to test-artifacts/ for a person to look at.
"""

import os
import random
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from workbench import learn

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "film", "plot", "the", "was", "very"]


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory):
    """A tiny BERT classifier folder (from a config, with a word-level vocab) and a 200-row CSV."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    root = tmp_path_factory.mktemp("assets")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    model_dir = root / "tiny-bert"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(model_dir)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(model_dir)

    rng = random.Random(0)
    rows = []
    for index in range(200):
        label = index % 2
        pool = WORDS[:3] if label else WORDS[3:6]
        rows.append({"sentence": f"the movie was {rng.choice(pool)} very {rng.choice(pool)}", "label": label})
    csv = root / "tiny.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return model_dir, csv


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """Start `python -m workbench` on a free port over a temporary store; stop it and its worker after."""
    from msplora.engine import Engine
    from workbench.learn import free_port

    root = tmp_path_factory.mktemp("app")
    runs_dir = root / "runs"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MSPLORA_CACHE": str(root / "cache"),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(root / "app.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--port", str(port), "--runs-dir", str(runs_dir), "--quiet",
         "--notebooks-dir", str(Path(__file__).resolve().parents[2] / "notebooks")],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, process, timeout_s=120)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        Engine(runs_dir).stop_workers(timeout=30)


@pytest.fixture(scope="module")
def page(app_url):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(app_url)
        page.wait_for_selector("#launch_button", timeout=60_000)
        yield page
        page.screenshot(path=str(ARTIFACTS / "last-state.png"), full_page=True)  # shows where a failure stopped
        browser.close()


def test_launch_watch_stop_and_open(page, tiny_assets):
    from playwright.sync_api import expect

    model_dir, csv = tiny_assets

    # Launch: the preview draws the default pyramid before anything is touched.
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "01-launch.png"), full_page=True)

    _set_dropdown(page, "#model", str(model_dir))
    expect(page.locator("#launch_error")).to_have_text("", timeout=30_000)
    expect(page.locator("#targets")).to_contain_text("query", timeout=30_000)
    # Upload the CSV: the app copies it into the msplora cache and offers its columns.
    page.locator("#upload input[type=file]").set_input_files(str(csv))
    expect(page.locator("#dataset input").first).to_have_value(re.compile(r"uploads/.*tiny\.csv$"), timeout=30_000)
    _set_dropdown(page, "#text_column", "sentence")
    _set_dropdown(page, "#label_column", "label")

    # An invalid choice is explained and blocks the launch.
    _set_number(page, "#mid_groups", "9")
    expect(page.locator("#launch_error")).to_contain_text("only 4 adapted blocks", timeout=30_000)
    expect(page.locator("#control_error")).to_contain_text("only 4 adapted blocks", timeout=30_000)
    expect(page.locator("#launch_button")).to_be_disabled(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "02-launch-invalid.png"), full_page=True)
    _set_number(page, "#mid_groups", "2")
    expect(page.locator("#launch_button")).to_be_enabled(timeout=30_000)

    page.get_by_text("Training settings").click()
    _set_number(page, "#max_steps", "40")
    _set_number(page, "#eval_steps", "10")
    _set_number(page, "#spectra_steps", "10")
    page.locator("#run_name textarea, #run_name input").first.fill("e2e-short")
    page.wait_for_timeout(1000)
    page.locator("#launch_button").click()
    expect(page.locator("#launch_message")).to_contain_text("Queued run", timeout=30_000)

    # A second, long run to stop while it trains.
    _set_number(page, "#max_steps", "20000")
    page.locator("#run_name textarea, #run_name input").first.fill("e2e-long")
    page.wait_for_timeout(1000)
    page.locator("#launch_button").click()
    expect(page.locator("#launch_message")).to_contain_text("e2e-long", timeout=30_000)

    # Runs: open the short run and watch loss points and spectra appear.
    page.get_by_role("tab", name="Runs").click()
    table = page.locator("#runs_table")
    expect(table).to_contain_text("e2e-short", timeout=30_000)
    table.get_by_text("e2e-short").filter(visible=True).first.click()
    summary = page.locator("#run_summary")
    expect(summary).to_contain_text("e2e-short", timeout=30_000)
    expect(page.locator("#loss_plot .scatterlayer .trace").first).to_be_attached(timeout=180_000)
    expect(page.locator("#spectra_plot .scatterlayer .trace").first).to_be_attached(timeout=180_000)
    expect(summary).to_contain_text("completed", timeout=240_000)
    expect(summary).to_contain_text("accuracy", timeout=30_000)
    page.wait_for_timeout(2 * 1000)
    page.screenshot(path=str(ARTIFACTS / "03-runs-finished.png"), full_page=True)

    # Stop the long run once it trains.
    table.get_by_text("e2e-long").filter(visible=True).first.click()
    expect(summary).to_contain_text("e2e-long", timeout=30_000)
    expect(summary).to_contain_text("running", timeout=180_000)
    page.locator("#stop_button").click()
    expect(page.locator("#run_message")).to_contain_text("Asked run", timeout=30_000)
    expect(summary).to_contain_text("cancelled", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "04-runs-cancelled.png"), full_page=True)

    # Open the finished run's charts again.
    table.get_by_text("e2e-short").filter(visible=True).first.click()
    expect(summary).to_contain_text("e2e-short", timeout=30_000)
    expect(page.locator("#loss_plot .scatterlayer .trace").first).to_be_attached(timeout=30_000)

    # Its artifacts download as files, the adapter folder zipped.
    page.get_by_role("button", name="Prepare downloads").click()
    expect(page.locator("#downloads")).to_contain_text(re.compile(r"adapter\s*\.zip"), timeout=60_000)

    # Another browser session sees the same runs.
    other = page.context.browser.new_context().new_page()
    other.goto(page.url)
    other.get_by_role("tab", name="Runs").click()
    expect(other.locator("#runs_table")).to_contain_text("e2e-short", timeout=60_000)
    expect(other.locator("#runs_table")).to_contain_text("cancelled", timeout=30_000)
    other.context.close()


def test_other_screens_render(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    picker = page.locator("#compare_runs input").first
    for name in ("e2e-short", "e2e-long"):
        picker.click()
        page.get_by_role("option").filter(has_text=name).first.click()
        page.wait_for_timeout(500)
    expect(page.get_by_text("Differences:")).to_contain_text("max_steps", timeout=30_000)
    expect(page.locator("#compare_curves .scatterlayer .trace").first).to_be_attached(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "05-compare.png"), full_page=True)

    page.get_by_role("tab", name="What-if budgets").click()
    page.get_by_role("button", name="Compute budgets").click()
    expect(page.get_by_text("budgets of llama-2-7b")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "06-whatif.png"), full_page=True)

    page.get_by_role("tab", name="Learn").click()
    notebooks = learn.list_notebooks()
    if not notebooks.empty:
        title = notebooks.loc[0, "file"]
        page.locator("#notebooks").get_by_text(title).filter(visible=True).first.click()
        page.get_by_role("button", name="Read here").click()
        expect(page.locator("#notebook_page iframe")).to_be_attached(timeout=60_000)
    page.wait_for_timeout(1000)
    page.get_by_text("About the data and models").click()
    expect(page.get_by_text("Hutto").first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "07-learn-about.png"), full_page=True)


def test_rejected_upload_blocks_launch(page, tmp_path):
    from playwright.sync_api import expect

    # A fresh page, so the upload field is empty and the dataset starts on the bundled default.
    fresh = page.context.browser.new_context().new_page()
    fresh.goto(page.url)
    fresh.wait_for_selector("#launch_button", timeout=60_000)
    expect(fresh.locator("#dataset input").first).to_have_value("movie-sentences", timeout=30_000)

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("café,label\nbon,1\n".encode("latin-1"))
    fresh.locator("#upload input[type=file]").set_input_files(str(latin1))
    expect(fresh.locator("#upload_message")).to_contain_text("is not valid UTF-8 (byte 0xe9 at position 3)",
                                                             timeout=30_000)
    expect(fresh.locator("#dataset input").first).to_have_value("", timeout=30_000)
    expect(fresh.locator("#launch_button")).to_be_disabled(timeout=30_000)
    expect(fresh.locator("#launch_error")).to_contain_text("Dataset is empty", timeout=30_000)
    fresh.screenshot(path=str(ARTIFACTS / "08-upload-rejected.png"), full_page=True)
    fresh.context.close()


def _set_dropdown(page, selector, value):
    """Type a custom value into a Gradio dropdown and confirm it with Enter."""
    field = page.locator(selector).locator("input").first
    field.click()
    field.fill(value)
    field.press("Enter")
    page.wait_for_timeout(500)


def _set_number(page, selector, value):
    field = page.locator(f"{selector} input").first
    field.fill(value)
    field.press("Tab")
    page.wait_for_timeout(500)


def _wait_for_http(url, process, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The app exited with code {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"The app did not serve {url} within {timeout_s} s")

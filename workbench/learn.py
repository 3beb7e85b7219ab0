"""Handlers of the Learn screen: the teaching notebooks, rendered read-only or opened in JupyterLab."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pandas as pd
from nbconvert import HTMLExporter

__all__ = ["NOTEBOOKS_DIR", "list_notebooks", "render_notebook", "JupyterLab", "free_port"]

logger = logging.getLogger(__name__)

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
DESCRIPTION_CHARS = 240


def list_notebooks(folder: Path = NOTEBOOKS_DIR) -> pd.DataFrame:
    """Return one row per `.ipynb` file: file name, title and a short description.

    The title is the first heading of the first markdown cell, and the
    description the text after it, cut to about 240 characters.
    """
    rows = []
    for path in sorted(folder.glob("*.ipynb")):
        title, description = path.stem, ""
        try:
            notebook = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as error:
            logger.warning("Could not read notebook %s: %s", path, error)
            rows.append({"file": path.name, "title": title, "description": f"(unreadable: {error})"})
            continue
        markdown = next((cell.source for cell in notebook.cells if cell.cell_type == "markdown"), "")
        title, description = _title_and_description(markdown, default=path.stem)
        rows.append({"file": path.name, "title": title, "description": description})
    return pd.DataFrame(rows, columns=["file", "title", "description"])


def render_notebook(file_name: str | None, folder: Path = NOTEBOOKS_DIR) -> str:
    """Render a notebook of `folder` to read-only HTML with nbconvert (stored outputs, no execution).

    The HTML goes into an iframe's `srcdoc` so its styles stay apart from the app's.

    NOTE: nbconvert's template loads MathJax from a CDN, so with no network the
    LaTeX in markdown cells shows as source text.
    """
    if not file_name:
        return "<p>Choose a notebook.</p>"
    path = (folder / file_name).resolve()
    if path.parent != folder.resolve() or path.suffix != ".ipynb" or not path.is_file():
        return f"<p>Notebook {file_name!r} not found in {folder}.</p>"

    body, _ = HTMLExporter(template_name="lab").from_filename(str(path))
    escaped = body.replace("&", "&amp;").replace('"', "&quot;")
    return f'<iframe srcdoc="{escaped}" style="width:100%;height:80vh;border:1px solid #ddd"></iframe>'


class JupyterLab:
    """One JupyterLab server on 127.0.0.1 with a random token, shared by every session of the app.

    It is started on the first request and stopped when the app exits.
    """

    def __init__(self, folder: Path = NOTEBOOKS_DIR, startup_timeout_s: float = 60.0):
        self.folder = folder
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.log = None  # the server's output file, kept for error messages

    def start(self) -> str:
        """Start the server unless it runs already; return its URL with the login token."""
        if self.process is not None and self.process.poll() is None and self.url:
            return self.url

        port = free_port()
        token = secrets.token_hex(16)
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={self.folder}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers often run as root, which JupyterLab rejects by default
        self.log = tempfile.NamedTemporaryFile("w+", prefix="msplora-jupyterlab-", suffix=".log", delete=False)
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        logger.info("Started JupyterLab (pid %d) on 127.0.0.1:%d", self.process.pid, port)

        base = f"http://127.0.0.1:{port}"
        self._wait_until_up(f"{base}/api/status?token={token}")
        self.url = f"{base}/lab?token={token}"
        return self.url

    def stop(self) -> None:
        """Stop the server if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            logger.info("Stopped JupyterLab (pid %d)", self.process.pid)
        self.process, self.url = None, None

    def _wait_until_up(self, status_url: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = Path(self.log.name).read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode} while starting: "
                    f"{' '.join(tail)} (full log: {self.log.name})"
                )
            try:
                with urllib.request.urlopen(status_url, timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"JupyterLab did not start within {self.startup_timeout_s:.0f} s; check {self.log.name}.")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _title_and_description(markdown: str, default: str) -> tuple[str, str]:
    lines = [line.strip() for line in markdown.splitlines() if line.strip()]
    title = default
    if lines and lines[0].startswith("#"):
        title = lines.pop(0).lstrip("#").strip()
    description = " ".join(lines)
    if len(description) > DESCRIPTION_CHARS:
        description = description[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + " …"
    return title, description

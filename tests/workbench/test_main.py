"""Tests for `python -m workbench`: options, --auth parsing, and the built app behind a login."""

import json
import urllib.error
import urllib.request

import gradio as gr
import pytest

from workbench.__main__ import _parser, _read_auth
from workbench.layout import build_app
from workbench.learn import free_port


def test_defaults_bind_localhost():
    args = _parser().parse_args([])
    assert args.host == "127.0.0.1"
    assert args.port == 7860
    assert args.max_upload_mb == 200
    assert args.auth is None
    assert args.root_path is None


def test_options_parsed():
    args = _parser().parse_args(["--host", "0.0.0.0", "--port", "9000", "--root-path", "/wb",
                                 "--runs-dir", "/tmp/r", "--max-upload-mb", "5"])
    assert (args.host, args.port, args.root_path, args.runs_dir, args.max_upload_mb) == (
        "0.0.0.0", 9000, "/wb", "/tmp/r", 5)


def test_auth_pair_and_file(tmp_path):
    assert _read_auth("ada:secret") == [("ada", "secret")]
    assert _read_auth("ada:pa:ss") == [("ada", "pa:ss")]
    users = tmp_path / "users.txt"
    users.write_text("# workshop accounts\nada:one\n\nbob:two\n")
    assert _read_auth(str(users)) == [("ada", "one"), ("bob", "two")]
    assert _read_auth(None) is None


@pytest.mark.parametrize("value", ["no-colon", ":password", "user:"])
def test_auth_rejects_bad_entry(value):
    with pytest.raises(SystemExit, match="Invalid --auth entry"):
        _read_auth(value)


def test_auth_file_without_entries(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n")
    with pytest.raises(SystemExit, match="contains no USER:PASSWORD"):
        _read_auth(str(empty))


def test_app_requires_login(engine, tmp_path):
    app = build_app(engine, downloads_dir=tmp_path / "downloads", notebooks_dir=tmp_path)
    assert isinstance(app, gr.Blocks)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, auth=[("ada", "secret")], prevent_thread_lock=True,
               quiet=True, max_file_size="1mb")
    try:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10)
        assert denied.value.code == 401

        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/login", data=b"username=ada&password=secret", method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(login, timeout=10) as response:
            assert json.loads(response.read()) == {"success": True}
    finally:
        app.close()


def test_upload_over_limit_rejected(engine, tmp_path):
    app = build_app(engine, downloads_dir=tmp_path / "downloads", notebooks_dir=tmp_path)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size="1kb")
    try:
        for size, expected in [(512, 200), (4096, 413)]:
            boundary = "msploraboundary"
            body = (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"data.csv\"\r\n"
                f"Content-Type: text/csv\r\n\r\n"
            ).encode() + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/gradio_api/upload", data=body, method="POST",
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == expected, f"upload of {size} bytes"
    finally:
        app.close()


# Runs `python -m workbench` with a stand-in JupyterLab process (a sleeping Python child), as if the Learn
# tab had started one, and prints the child's pid before the server starts.
_APP_SCRIPT = """
import subprocess, sys
import gradio as gr
from workbench import learn
from workbench.__main__ import main

labs = []
original_init = learn.JupyterLab.__init__
def record(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    labs.append(self)
learn.JupyterLab.__init__ = record

original_launch = gr.Blocks.launch
def launch(self, **kwargs):
    labs[0].process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("child", labs[0].process.pid, flush=True)
    return original_launch(self, **kwargs)
gr.Blocks.launch = launch

main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigterm_stops_jupyterlab(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "-c", _APP_SCRIPT, "--no-worker", "--quiet", "--port", str(port),
         "--runs-dir", str(tmp_path / "runs"), "--notebooks-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        child = int(app.stdout.readline().split()[1])
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the app did not answer within 60 s"
                time.sleep(0.5)
        assert psutil.pid_exists(child)

        app.send_signal(signal.SIGTERM)
        _, stderr = app.communicate(timeout=30)
    finally:
        if app.poll() is None:
            app.kill()
    assert not psutil.pid_exists(child)
    assert "Workbench started" in stderr
    assert "Received SIGTERM" in stderr
    assert "Workbench stopped" in stderr

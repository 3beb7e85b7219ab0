"""Start the MSPLoRA Workbench: `python -m workbench [--host H] [--port P] [--auth USER:PASSWORD] ...`.

The app serves the shared engine's store (`--runs-dir`, default ./runs or
$MSPLORA_RUNS_DIR) and starts a worker for it unless one runs, so runs queued
before the app started begin at once; later submits start a worker as needed.
It binds to 127.0.0.1 unless --host sets another address.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

# Gradio sends usage analytics to its servers unless disabled, and the workbench runs offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

logger = logging.getLogger("workbench")


def main(argv: list[str] | None = None) -> None:
    """Parse the options, build the app over the engine and serve it until interrupted."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from msplora.assets import cache_dir
    from msplora.engine import Engine

    from .layout import build_app
    from .learn import NOTEBOOKS_DIR, JupyterLab

    engine = Engine(args.runs_dir)
    if not args.no_worker:
        engine.executor.ensure_worker()
    downloads_dir = cache_dir() / "downloads"
    downloads_dir.mkdir(parents=True, exist_ok=True)

    notebooks_dir = args.notebooks_dir or NOTEBOOKS_DIR
    jupyterlab = JupyterLab(notebooks_dir)
    app = build_app(engine, downloads_dir=downloads_dir, notebooks_dir=notebooks_dir, jupyterlab=jupyterlab)
    _stop_on_signals()
    logger.info("Workbench started (pid %d): serving runs from %s on http://%s:%d%s", os.getpid(),
                engine.store_dir, args.host, args.port, args.root_path or "")
    try:
        app.queue(default_concurrency_limit=8).launch(
            server_name=args.host,
            server_port=args.port,
            auth=_read_auth(args.auth),
            root_path=args.root_path,
            max_file_size=f"{args.max_upload_mb}mb",
            allowed_paths=[str(downloads_dir)],
            show_error=True,
            quiet=args.quiet,
        )
    finally:
        # A JupyterLab started from the Learn tab would otherwise outlive the app, adopted by pid 1.
        jupyterlab.stop()
        logger.info("Workbench stopped (pid %d)", os.getpid())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default: 7860)")
    parser.add_argument("--auth", default=None,
                        help="USER:PASSWORD, or a file with one USER:PASSWORD per line, required to log in")
    parser.add_argument("--root-path", default=None,
                        help="URL prefix when served behind a reverse proxy, e.g. /workbench")
    parser.add_argument("--runs-dir", default=None,
                        help="the engine's store folder (default: $MSPLORA_RUNS_DIR or ./runs)")
    parser.add_argument("--max-upload-mb", type=int, default=200,
                        help="max size of a dataset upload, in MB (default: 200)")
    parser.add_argument("--notebooks-dir", type=Path, default=None,
                        help="folder of teaching notebooks (default: the repository's notebooks/)")
    parser.add_argument("--no-worker", action="store_true",
                        help="do not start a worker at startup (one starts on the first submit)")
    parser.add_argument("--quiet", action="store_true", help="do not print Gradio's startup banner")
    return parser


def _stop_on_signals() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so Gradio closes its server and main's cleanup runs.

    Python's default SIGTERM action ends the process without running `finally` blocks or atexit handlers.
    """

    def interrupt(signum: int, frame: object) -> None:
        logger.info("Received %s: stopping the workbench", signal.Signals(signum).name)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _read_auth(value: str | None) -> list[tuple[str, str]] | None:
    """Parse --auth: USER:PASSWORD, or the path of a file with one USER:PASSWORD per line."""
    if not value:
        return None
    lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else [value]
    pairs = []
    for line in (line.strip() for line in lines):
        if not line or line.startswith("#"):
            continue
        user, separator, password = line.partition(":")
        if not separator or not user or not password:
            raise SystemExit("Invalid --auth entry: use USER:PASSWORD (or a file of such lines).")
        pairs.append((user, password))
    if not pairs:
        raise SystemExit(f"The --auth file {value!r} contains no USER:PASSWORD line.")
    return pairs


if __name__ == "__main__":
    main()

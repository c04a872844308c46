"""``python -m convenet deploy``: the staged Space tree, and the upload against a stand-in Hub.

The stand-in is a small HTTP server on 127.0.0.1 that answers the routes huggingface_hub 2.4
calls to deploy (whoami, create repo, repo info, preupload, LFS batch and transfer, commit, Space
variables) and keeps what it was sent, so a test reads back the Space it made. Like the Hub, it
refuses a commit that carries a binary file inline. The Hub's Xet storage is not emulated:
the tests set ``HF_HUB_DISABLE_XET`` so huggingface_hub takes its LFS route for the binaries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from huggingface_hub import constants

from convenet.cli import main
from convenet.data.space import card_entries, space_files
from convenet.data.store import feature_path, record_in_manifest, write_feature_file
from convenet.paths import REPO_DIR

TOKEN = "hf_standin_write_token"
READ_TOKEN = "hf_standin_read_token"
ME = "me"
REPO_PATH = re.compile(r"^/api/(models|datasets|spaces)/([\w.-]+/[\w.-]+)(?:/(.*))?$")
# huggingface_hub 2.4's LFS transfer hands httpx2 a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")
LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([\w.-]+/[\w.-]+)\.git/info/lfs/objects/batch$")


class StandInHub(ThreadingHTTPServer):
    """The Hub's deploy routes, in memory; ``writes`` lists every request that changed it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        orgs = [{"name": "my-org", "roleInOrg": "admin"}, {"name": "read-org", "roleInOrg": "read"}]
        self.users = {
            TOKEN: {
                "type": "user",
                "name": ME,
                "orgs": orgs,
                "auth": {"accessToken": {"role": "write"}},
            },
            READ_TOKEN: {
                "type": "user",
                "name": ME,
                "orgs": [],
                "auth": {"accessToken": {"role": "read"}},
            },
        }
        self.repos: dict[str, dict[str, Any]] = {"spaces/someone/taken": self._repo("gradio")}
        self.lfs: dict[str, bytes] = {}
        self.writes: list[str] = []
        self.refuse_commits = False

    @staticmethod
    def _repo(sdk: str | None) -> dict[str, Any]:
        return {"sdk": sdk, "files": {}, "variables": {}, "commits": 0}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def may_write(self, token: str | None, owner: str) -> bool:
        user = self.users.get(token or "")
        if user is None or user["auth"]["accessToken"]["role"] != "write":
            return False
        writable = {org["name"] for org in user["orgs"] if org["roleInOrg"] in ("admin", "write")}
        return owner == user["name"] or owner in writable

    def space(self, repo_id: str) -> dict[str, Any]:
        return self.repos[f"spaces/{repo_id}"]


class _Handler(BaseHTTPRequestHandler):
    server: StandInHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._answer(status, {"error": message}, {"X-Error-Code": code} if code else None)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        hub = self.server
        if self.path == "/api/whoami-v2":
            user = hub.users.get(self._token() or "")
            if user is None:
                return self._error(401, "Invalid credentials in Authorization header")
            return self._answer(200, user)
        match = REPO_PATH.match(self.path.split("?")[0])
        key = match and f"{match[1]}/{match[2]}"
        if not match or key not in hub.repos:
            return self._error(404, "Repository not found", "RepoNotFound")
        files = hub.repos[key]["files"]
        siblings = [{"rfilename": name} for name in sorted(files)]
        return self._answer(200, {"id": match[2], "sha": "0" * 40, "siblings": siblings})

    def do_PUT(self) -> None:  # noqa: N802
        data = self._body()
        oid = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/lfs-upload/") or hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "content does not match its oid")
        with self.server.lock:
            self.server.lfs[oid] = data
        return self._answer(200, {})

    def do_POST(self) -> None:  # noqa: N802
        hub, body = self.server, self._body()
        token = self._token()
        if self.path == "/lfs-verify":
            oid = json.loads(body)["oid"]
            return self._answer(200 if oid in hub.lfs else 404, {})
        if self.path == "/api/validate-yaml":
            return self._validate(json.loads(body))
        if self.path == "/api/repos/create":
            return self._create(json.loads(body), token)
        batch = LFS_BATCH.match(self.path)
        if batch:
            return self._lfs_batch(json.loads(body))
        match = REPO_PATH.match(self.path.split("?")[0])
        if not match or f"{match[1]}/{match[2]}" not in hub.repos:
            return self._error(404, "Repository not found", "RepoNotFound")
        repo = hub.repos[f"{match[1]}/{match[2]}"]
        if not hub.may_write(token, match[2].split("/")[0]):
            return self._error(403, "You don't have write access to this repository")
        action = (match[3] or "").split("/")[0]
        with hub.lock:
            hub.writes.append(self.path)
        if action == "preupload":
            return self._preupload(json.loads(body))
        if action == "commit":
            return self._commit(repo, f"{match[1]}/{match[2]}", body)
        if action == "variables" and match[1] == "spaces":
            entry = json.loads(body)
            repo["variables"][entry["key"]] = entry["value"]
            stamp = "2026-01-01T00:00:00.000Z"
            return self._answer(
                200, {k: {"value": v, "updatedAt": stamp} for k, v in repo["variables"].items()}
            )
        return self._error(404, "no such route")

    def _create(self, request: dict[str, Any], token: str | None) -> None:
        hub = self.server
        user = hub.users.get(token or "")
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        owner = request.get("organization") or user["name"]
        key = f"{request['type']}s/{owner}/{request['name']}"
        if not hub.may_write(token, owner):
            return self._error(403, f"You don't have the rights to create a repo under {owner}")
        with hub.lock:
            hub.writes.append(f"create {key}")
            if key in hub.repos:
                return self._error(409, "You already created this repo")
            hub.repos[key] = hub._repo(request.get("sdk"))
        return self._answer(200, {"url": f"{hub.url}/{key}"})

    def _validate(self, request: dict[str, Any]) -> None:
        """A Space card needs front matter that names its SDK."""
        parts = request["content"].split("---\n")
        meta = yaml.safe_load(parts[1]) if len(parts) > 2 else None
        if request["repoType"] == "space" and not (isinstance(meta, dict) and meta.get("sdk")):
            return self._answer(400, {"errors": [{"message": "sdk is required"}]})
        return self._answer(200, {"errors": [], "warnings": []})

    def _preupload(self, request: dict[str, Any]) -> None:
        files = [
            {
                "path": entry["path"],
                "uploadMode": "lfs" if b"\0" in base64.b64decode(entry["sample"]) else "regular",
                "shouldIgnore": False,
                "oid": None,
            }
            for entry in request["files"]
        ]
        return self._answer(200, {"files": files})

    def _lfs_batch(self, request: dict[str, Any]) -> None:
        hub = self.server
        objects = []
        for item in request["objects"]:
            answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in hub.lfs:
                answer["actions"] = {
                    "upload": {"href": f"{hub.url}/lfs-upload/{item['oid']}"},
                    "verify": {"href": f"{hub.url}/lfs-verify"},
                }
            objects.append(answer)
        return self._answer(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo: dict[str, Any], key: str, body: bytes) -> None:
        hub = self.server
        if hub.refuse_commits:
            return self._error(400, "This commit was refused")
        added: dict[str, bytes] = {}
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                content = base64.b64decode(value["content"])
                if b"\0" in content:
                    return self._error(
                        400, "Your push was rejected because it contains binary files"
                    )
                added[value["path"]] = content
            elif item["key"] == "lfsFile":
                if value["oid"] not in hub.lfs:
                    return self._error(400, f"{value['path']}: LFS object not uploaded")
                added[value["path"]] = hub.lfs[value["oid"]]
        with hub.lock:
            repo["files"].update(added)
            repo["commits"] += 1
        oid = hashlib.sha1(body).hexdigest()
        return self._answer(200, {"commitUrl": f"{hub.url}/{key}/commit/{oid}", "commitOid": oid})


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInHub]:
    server = StandInHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield server
    server.shutdown()
    server.server_close()


def make_source(root: Path) -> Path:
    """A small checkout: what a Space needs, plus what it must not get."""
    files = {
        "app.py": "print('app')\n",
        "requirements.txt": "gradio\n",
        ".gitattributes": "*.jpg filter=lfs diff=lfs merge=lfs -text\n",
        "convenet/__init__.py": "",
        "convenet/__pycache__/x.cpython-311.pyc": "bytecode",
        "ui/app.py": "",
        "examples/cat.jpg": "\xff\xd8\0jpeg",
        "docs/shot.jpg": "\xff\xd8\0shown by the card",
        "docs/unlinked.jpg": "\xff\xd8\0not shown",
        "tests/test_x.py": "",
        "benchmarks/bench.py": "",
        ".venv/lib/site.py": "",
        ".cache/convenet/graph.onnx": "",
    }
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(text.encode("latin-1"))
    (root / "README.md").write_text(
        "---\ntitle: Toy\nsdk: gradio\napp_file: app.py\ndatasets:\n  - someone/exists\n"
        "  - nobody/never-published\npreload_from_hub:\n  - datasets/nobody/never-published\n---\n"
        "# Toy\n\n![The search tab](docs/shot.jpg)\n"
    )
    store = root / "precomputed"
    image = store / "stamps200" / "images" / "a" / "1.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\xff\xd8\0a stamp\xff\xd9")
    features = {"top_conv": np.random.default_rng(0).random((1, 4))}
    meta = {"dataset": "stamps200", "model": "m1", "pooling": "avg", "images": ["a/1.jpg"]}
    write_feature_file(feature_path(store, "stamps200", "m1"), features, {**meta, "labels": ["a"]})
    record_in_manifest(store, feature_path(store, "stamps200", "m1"))
    return root


def front(card: str) -> dict[str, Any]:
    return yaml.safe_load(card.split("---\n")[1])


def deploy_cli(*args: str) -> int:
    return main(["deploy", *args])


# -- the staged tree -----------------------------------------------------------------------------
def test_dry_run_stages_the_allow_list_and_a_card_without_preload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "space"
    assert deploy_cli("--space", "me/playground", "--dry-run", "--out", str(out)) == 0
    staged = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert staged == space_files(REPO_DIR)
    tops = {name.split("/")[0] for name in staged}
    assert tops == {
        ".gitattributes", "README.md", "app.py", "requirements.txt",
        "convenet", "ui", "precomputed", "examples", "docs",
    }  # fmt: skip
    assert not [n for n in staged if "__pycache__" in n or n.endswith(".pyc")]
    assert "precomputed/manifest.json" in staged and "examples/cat.jpg" in staged
    size = sum((out / name).stat().st_size for name in staged)
    said = capsys.readouterr().out
    assert (
        f"staged {len(staged)} files, {size / 1e6:.1f} MB" in said
        and "nothing was uploaded" in said
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "preload_from_hub" not in front(card) and "datasets" not in front(card)
    assert front(card)["sdk"] == "gradio" and front(card)["app_file"] == "app.py"
    # Every picture the card shows is in the tree.
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", card):
        assert (out / target).is_file(), target


def test_dry_run_of_a_checkout_leaves_out_tests_caches_and_unchecked_repos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from convenet.data.space import stage

    source = make_source(tmp_path / "checkout")
    staged = stage(tmp_path / "out", source=source)
    assert "docs/shot.jpg" in staged.files and "docs/unlinked.jpg" not in staged.files
    assert not [
        f for f in staged.files if f.startswith(("tests/", "benchmarks/", ".venv", ".cache"))
    ]
    assert not [f for f in staged.files if f.endswith(".pyc")]
    card = (tmp_path / "out" / "README.md").read_text()
    assert card_entries(card) == ([], [])  # no network: nothing the Hub has not confirmed
    assert set(staged.left_out) == {
        "someone/exists", "nobody/never-published", "datasets/nobody/never-published",
    }  # fmt: skip
    with_features = stage(tmp_path / "out2", source=source, features_repo="me/features")
    assert card_entries((tmp_path / "out2" / "README.md").read_text()) == (
        ["me/features"],
        ["datasets/me/features"],
    )
    assert with_features.datasets == ("me/features",)


def test_the_repository_card_builds_as_it_stands() -> None:
    """The README names no dataset that was never published (a Space preloads what it names)."""
    datasets, preloads = card_entries((REPO_DIR / "README.md").read_text(encoding="utf-8"))
    assert "convenet/convnet-playground-features" not in datasets
    assert not [p for p in preloads if "convnet-playground-features" in p]


def test_dry_run_wants_an_empty_folder_and_out_wants_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert deploy_cli("--space", "me/x", "--dry-run", "--out", str(tmp_path)) == 2
    assert deploy_cli("--space", "me/x", "--out", str(tmp_path / "new")) == 2
    assert deploy_cli("--space", "not a name", "--dry-run", "--out", str(tmp_path / "n")) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "is not empty" in errors[0] and "go together" in errors[1] and "OWNER/NAME" in errors[2]
    assert (tmp_path / "keep.txt").read_text() == "mine" and not (tmp_path / "new").exists()


# -- the upload ----------------------------------------------------------------------------------
def test_deploy_uploads_the_tree_with_binaries_through_lfs(tmp_path: Path, hub: StandInHub) -> None:
    from convenet.data.space import deploy

    hub.repos["datasets/someone/exists"] = hub._repo(None)
    source = make_source(tmp_path / "checkout")
    done = deploy("me/playground", source=source)
    space = hub.space("me/playground")
    assert space["sdk"] == "gradio" and done.url == f"{hub.url}/spaces/me/playground"
    assert sorted(space["files"]) == sorted(done.staged.files)
    assert space["files"]["examples/cat.jpg"] == (source / "examples/cat.jpg").read_bytes()
    assert hashlib.sha256(space["files"]["docs/shot.jpg"]).hexdigest() in hub.lfs  # via LFS
    card = space["files"]["README.md"].decode()
    # The existing dataset stays named; the never-published one is gone, preload with it.
    assert card_entries(card) == (["someone/exists"], [])
    assert space["variables"] == {"CONVENET_HUB_OFFLINE": "1"}
    assert not [name for name in space["files"] if name.startswith(("tests/", ".venv"))]


def test_features_repo_is_published_first_and_named_by_the_card(
    tmp_path: Path, hub: StandInHub
) -> None:
    from convenet.data.space import deploy

    source = make_source(tmp_path / "checkout")
    done = deploy("me/playground", source=source, features_repo="my-org/feats")
    assert done.features_url == f"{hub.url}/datasets/my-org/feats"
    dataset = hub.repos["datasets/my-org/feats"]["files"]
    assert "manifest.json" in dataset and "stamps200/features/m1.safetensors" in dataset
    assert "README.md" in dataset  # its dataset card
    assert not (source / "precomputed" / "README.md").exists()  # the checkout is left as it was
    space = hub.space("me/playground")
    assert card_entries(space["files"]["README.md"].decode()) == (
        ["my-org/feats"],
        ["datasets/my-org/feats"],
    )
    assert space["variables"] == {"CONVENET_HUB_REPO": "my-org/feats", "CONVENET_HUB_OFFLINE": "0"}
    creates = [w for w in hub.writes if w.startswith("create")]
    assert creates == ["create datasets/my-org/feats", "create spaces/me/playground"]


# -- what goes wrong: one sentence each, and nothing claimed ------------------------------------
def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "deployed" not in captured.out
    assert "Traceback" not in captured.err and "Error:" not in lines[0].removeprefix("error:")
    assert not re.search(r"\b(Hf\w+Error|HTTPError|ConnectError)\b", lines[0])
    return lines[0]


def test_missing_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    assert deploy_cli("--space", "me/playground") == 2
    assert one_error(capsys) == (
        "error: No Hugging Face token found: set HF_TOKEN to a token with write access, "
        "or run `hf auth login` first."
    )


@pytest.mark.parametrize(
    ("space", "token", "expected"),
    [
        (
            "me/playground",
            "hf_wrong",
            "error: Could not check your Hugging Face token: the Hub refused the token (set "
            "HF_TOKEN to a token with write access, or run `hf auth login`).",
        ),
        (
            "me/playground",
            READ_TOKEN,
            "error: Your Hugging Face token is read-only; create one with write access and set "
            "HF_TOKEN.",
        ),
        (
            "someone/taken",
            TOKEN,
            "error: someone/taken is under someone, an account your token cannot write to; "
            "choose a name under me or my-org or read-org.",
        ),
        (
            "read-org/playground",
            TOKEN,
            "error: The Space read-org/playground could not be created: the name belongs to "
            "another account, or your token may not write to it (choose a name under your own "
            "account).",
        ),
        (
            "read-org/existing",  # the Hub lets create_repo pass (it exists), then refuses
            TOKEN,
            "error: The settings of read-org/existing were not written: the name belongs to "
            "another account, or your token may not write to it (choose a name under your own "
            "account); nothing was uploaded.",
        ),
    ],
)
def test_refusals_are_one_sentence_and_change_nothing(
    hub: StandInHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    space: str,
    token: str,
    expected: str,
) -> None:
    hub.repos["spaces/read-org/existing"] = hub._repo("gradio")
    before = {key: dict(repo) for key, repo in hub.repos.items()}
    monkeypatch.setenv("HF_TOKEN", token)
    assert deploy_cli("--space", space) == 2
    assert one_error(capsys) == expected
    assert hub.writes == [] and hub.repos == before


def test_unreachable_hub(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert deploy_cli("--space", "me/playground") == 2
    assert one_error(capsys) == (
        "error: Could not check your Hugging Face token: the Hugging Face Hub could not be "
        "reached (check the network connection and try again)."
    )


def test_a_refused_upload_is_not_claimed_as_done(tmp_path: Path, hub: StandInHub) -> None:
    from convenet.data.space import DeployError, deploy

    hub.refuse_commits = True
    with pytest.raises(DeployError) as refused:
        deploy("me/playground", source=make_source(tmp_path / "checkout"))
    assert str(refused.value) == (
        "The upload to me/playground stopped before it finished: the Hub answered HTTP 400 "
        "(This commit was refused); run the same command again to complete it."
    )
    assert hub.space("me/playground")["commits"] == 0


def test_a_failed_features_push_leaves_the_space_alone(tmp_path: Path, hub: StandInHub) -> None:
    from convenet.data.space import DeployError, deploy

    hub.refuse_commits = True
    with pytest.raises(DeployError) as refused:
        deploy("me/playground", source=make_source(tmp_path / "c"), features_repo="me/feats")
    assert str(refused.value) == (
        "The features dataset me/feats was not published: the Hub answered HTTP 400 (This "
        "commit was refused); the Space was not changed."
    )
    assert "spaces/me/playground" not in hub.repos


@pytest.mark.slow  # the whole repository: about 700 files through the stand-in
def test_the_command_deploys_this_checkout(
    hub: StandInHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole repository through the command line, as a user runs it."""
    assert deploy_cli("--space", "my-org/playground") == 0
    space = hub.space("my-org/playground")
    files = space_files(REPO_DIR)
    assert sorted(space["files"]) == files
    size = sum((REPO_DIR / name).stat().st_size for name in files if name != "README.md")
    size += len(space["files"]["README.md"])
    said = capsys.readouterr().out.strip()
    assert said == (
        f"deployed {len(files)} files, {size / 1e6:.1f} MB to {hub.url}/spaces/my-org/playground"
    )
    binaries = [name for name in files if b"\0" in space["files"][name][:8000]]
    assert len(binaries) > 600  # and every one came through LFS: the stand-in refuses them inline

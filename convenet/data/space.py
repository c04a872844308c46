"""Publish the app as a Hugging Face Space: stage exactly the files a Space needs, write its card,
upload them (``python -m convenet deploy``).

The tree is an explicit allow list, so tests, benchmarks, caches and virtual environments never
travel. The card keeps the repository's README but names in ``datasets:`` / ``preload_from_hub:``
only repositories that were just published or that the Hub says exist: a Space whose card names
a missing repository fails to build. The token is whatever huggingface_hub finds (``HF_TOKEN``,
a stored login) unless one is passed, and it is never printed.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml
from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from convenet.data.hub import push
from convenet.paths import REPO_DIR
from convenet.settings import HUB_OFFLINE_ENV, HUB_REPO_ENV

CARD = "README.md"
SPACE_FILES = ("app.py", "requirements.txt", CARD, ".gitattributes")  # all four are required
SPACE_FOLDERS = ("convenet", "ui", "precomputed", "examples")
CARD_FOLDER = "docs"  # of this folder, only the files the card links to (its screenshots)
SKIPPED_SUFFIXES = (".pyc",)
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
LINK = re.compile(r"""(?:\]\(|\b(?:src|href)=["'])([^)"'\s#?]+)""")  # markdown or HTML target
PRELOAD_DATASET = "datasets/"


class DeployError(OSError):
    """One step of a deploy failed; the message is one sentence for the person deploying."""


@dataclass(frozen=True)
class Staged:
    """A staged Space tree: its folder, its files (relative paths), their total size."""

    root: Path
    files: tuple[str, ...]
    size: int
    datasets: tuple[str, ...]  # what the card names
    left_out: tuple[str, ...] = field(default=())  # card entries dropped: missing or unchecked

    def describe(self) -> str:
        return f"{len(self.files)} files, {self.size / 1e6:.1f} MB"


def check_repo_id(repo_id: str, option: str) -> str:
    if not REPO_ID.match(repo_id) or ".." in repo_id:
        raise ValueError(f"{option} {repo_id!r}: write it as OWNER/NAME (letters, digits, - _ .)")
    return repo_id


def _shipped(path: Path, folder: Path) -> bool:
    """Not a hidden file or folder, not Python's bytecode cache."""
    parts = path.relative_to(folder).parts
    return not any(p.startswith(".") or p == "__pycache__" for p in parts) and (
        path.suffix not in SKIPPED_SUFFIXES
    )


def card_links(card: str, source: Path) -> list[str]:
    """Files under docs/ that the card links to or shows, as relative paths that exist."""
    found = set()
    for target in LINK.findall(card):
        relpath = posixpath.normpath(target)
        if relpath.startswith(f"{CARD_FOLDER}/") and (source / relpath).is_file():
            found.add(relpath)
    return sorted(found)


def space_files(source: Path) -> list[str]:
    """Every file a Space needs from ``source``, as sorted relative paths."""
    missing = [name for name in SPACE_FILES if not (source / name).is_file()]
    if missing:
        raise ValueError(
            f"{source} is not a ConvNet Playground checkout: {', '.join(missing)} missing"
        )
    files = set(SPACE_FILES)
    for name in SPACE_FOLDERS:
        folder = source / name
        files.update(
            path.relative_to(source).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and _shipped(path, folder)
        )
    files.update(card_links((source / CARD).read_text(encoding="utf-8"), source))
    return sorted(files)


def card_entries(card: str) -> tuple[list[str], list[str]]:
    """(``datasets:``, ``preload_from_hub:``) as the card's front matter lists them."""
    match = FRONT_MATTER.match(card)
    data = yaml.safe_load(match[1]) if match else {}
    return list(data.get("datasets") or []), list(data.get("preload_from_hub") or [])


def space_card(card: str, datasets: list[str], preloads: list[str]) -> str:
    """The card with ``datasets:`` and ``preload_from_hub:`` naming exactly these (or absent)."""
    match = FRONT_MATTER.match(card)
    if not match:
        raise ValueError(f"{CARD} has no front matter (--- ... ---); a Space needs one")
    data: dict[str, Any] = yaml.safe_load(match[1]) or {}
    for key, value in (("datasets", datasets), ("preload_from_hub", preloads)):
        data.pop(key, None)
        if value:
            data[key] = value
    front = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{front}---\n{card[match.end() :]}"


def preload_repo(entry: str) -> tuple[str, str]:
    """(repo id, repo type) of a ``preload_from_hub`` entry: ``[datasets/]OWNER/NAME [files]``."""
    name = entry.split()[0]
    if name.startswith(PRELOAD_DATASET):
        return name[len(PRELOAD_DATASET) :], "dataset"
    return name, "model"


def stage(
    out: Path,
    *,
    source: Path = REPO_DIR,
    features_repo: str | None = None,
    exists: Callable[[str, str], bool] | None = None,
) -> Staged:
    """Copy the Space's files from ``source`` into the empty folder ``out`` and write its card.

    The card names ``features_repo`` (about to be published) and those of the source card's
    entries that ``exists(repo_id, repo_type)`` confirms; without ``exists`` (no network) the
    source card's entries are left out.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; give a new or empty folder")
    files = space_files(source)
    for relpath in files:
        target = out / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relpath, target)
    card = (source / CARD).read_text(encoding="utf-8")
    listed, preloads = card_entries(card)
    kept = [name for name in listed if exists and exists(name, "dataset")]
    kept_preloads = [entry for entry in preloads if exists and exists(*preload_repo(entry))]
    if features_repo:
        kept = [features_repo, *(name for name in kept if name != features_repo)]
        ours = f"{PRELOAD_DATASET}{features_repo}"
        kept_preloads = [ours, *(e for e in kept_preloads if preload_repo(e)[0] != features_repo)]
    left_out = [n for n in listed if n not in kept] + [
        e for e in preloads if e not in kept_preloads
    ]
    (out / CARD).write_text(space_card(card, kept, kept_preloads), encoding="utf-8")
    size = sum((out / relpath).stat().st_size for relpath in files)
    return Staged(out, tuple(files), size, tuple(kept), tuple(left_out))


def _reason(exc: BaseException) -> str:
    """What went wrong, in words: the part of a sentence after the colon."""
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code
        if status == 401:
            return (
                "the Hub refused the token (set HF_TOKEN to a token with write access, "
                "or run `hf auth login`)"
            )
        if status in (403, 409):
            return (
                "the name belongs to another account, or your token may not write to it "
                "(choose a name under your own account)"
            )
        said = (exc.server_message or "").strip().splitlines()
        return f"the Hub answered HTTP {status}" + (f" ({said[0].rstrip('.')})" if said else "")
    if isinstance(exc, ValueError):  # huggingface_hub's own checks, the card's metadata first
        return f"the Hub found a problem in the files ({str(exc).splitlines()[0].rstrip('.')})"
    return "the Hugging Face Hub could not be reached (check the network connection and try again)"


@contextmanager
def _step(failure: str, after: str = "") -> Iterator[None]:
    """Turn any Hub or network failure inside into one DeployError sentence:
    ``failure: why; after.``"""
    try:
        yield
    except DeployError:
        raise
    except (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError) as exc:
        raise DeployError(f"{failure}: {_reason(exc)}{after}.") from exc


def _writable(api: HfApi, repo_ids: list[str]) -> None:
    """Refuse, before any write, a name outside the token's own account and organizations."""
    with _step("Could not check your Hugging Face token"):
        me = api.whoami()
    mine = {me.get("name"), *(org.get("name") for org in me.get("orgs") or [])}
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise DeployError(
            "Your Hugging Face token is read-only; create one with write access and set HF_TOKEN."
        )
    for repo_id in repo_ids:
        owner = repo_id.split("/")[0]
        if owner not in mine:
            raise DeployError(
                f"{repo_id} is under {owner}, an account your token cannot write to; choose a "
                f"name under {' or '.join(sorted(n for n in mine if n))}."
            )


@dataclass(frozen=True)
class Deployed:
    """What a deploy made: the Space's URL, what was uploaded (its staging folder is gone by
    then), and the features dataset's URL when one was published."""

    url: str
    staged: Staged
    features_url: str | None


def deploy(
    space: str,
    *,
    source: Path = REPO_DIR,
    features_repo: str | None = None,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> Deployed:
    """Publish the features dataset (if named), then create or update the Space and upload.

    Every failure raises DeployError with one sentence; nothing reports success before the
    Hub has accepted the upload's last commit.
    """
    token = token or get_token()
    if not token:
        raise DeployError(
            "No Hugging Face token found: set HF_TOKEN to a token with write access, "
            "or run `hf auth login` first."
        )
    api = HfApi(endpoint=endpoint, token=token)
    _writable(api, [space, *([features_repo] if features_repo else [])])

    def exists(repo_id: str, repo_type: str) -> bool:
        with _step(f"Could not check whether {repo_id} exists on the Hub"):
            return api.repo_exists(repo_id, repo_type=repo_type)

    with tempfile.TemporaryDirectory(prefix="convenet-space-") as work:
        staged = stage(
            Path(work) / "space", source=source, features_repo=features_repo, exists=exists
        )
        features_url = None
        if features_repo:
            store = Path(work) / "features"  # a copy: push writes its card and index into it
            shutil.copytree(staged.root / "precomputed", store)
            with _step(
                f"The features dataset {features_repo} was not published",
                "; the Space was not changed",
            ):
                features_url = push(
                    store, features_repo, token=token, endpoint=endpoint, private=private
                )
        with _step(f"The Space {space} could not be created"):
            url = api.create_repo(
                space, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
            )
        with _step(f"The settings of {space} were not written", "; nothing was uploaded"):
            # The app then reads exactly the features this deploy named, or only its own copy.
            if features_repo:
                api.add_space_variable(space, HUB_REPO_ENV, features_repo)
            api.add_space_variable(space, HUB_OFFLINE_ENV, "0" if features_repo else "1")
        with _step(
            f"The upload to {space} stopped before it finished",
            "; run the same command again to complete it",
        ):
            api.upload_folder(
                repo_id=space,
                repo_type="space",
                folder_path=staged.root,
                commit_message="Deploy ConvNet Playground",
            )
    return Deployed(str(url), staged, features_url)

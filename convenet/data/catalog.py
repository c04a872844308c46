"""The one list of datasets the app offers: registered entries, served folders, session uploads.

Every view asks the catalog for a dataset by name, so what a client may reach is decided here
once. A dataset with an ``owner`` (a browser session's uploads) exists only for calls made on
that session's behalf: the UI sets ``current_owner`` for the duration of each call, and for any
other caller the name is as unknown as a misspelt one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from convenet.data.datasets import DATASETS, DatasetSpec, safe_name, scan_image_folder
from convenet.errors import UnknownNameError

# The browser session a call is made for (None: a call for no session, e.g. the command line).
current_owner: ContextVar[str | None] = ContextVar("convenet_owner", default=None)


class Catalog:
    """Datasets by name: public ones for everybody, owned ones for their session only."""

    def __init__(self, public: Iterable[DatasetSpec]) -> None:
        self._public = {spec.name: spec for spec in public}
        self._owned: dict[str, dict[str, DatasetSpec]] = {}
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, spec: DatasetSpec) -> None:
        """Register ``spec``; an owned name must not shadow a public one."""
        with self._lock:
            if spec.name in self._public or any(spec.name in o for o in self._owned.values()):
                raise ValueError(f"A dataset called {spec.name!r} exists already.")
            if spec.owner is None:
                self._public[spec.name] = spec
            else:
                self._owned.setdefault(spec.owner, {})[spec.name] = spec
                self._last_used[spec.owner] = time.monotonic()

    def names(self) -> list[str]:
        """What the current caller may choose: public datasets, then its own."""
        owner = current_owner.get()
        with self._lock:
            own = list(self._owned.get(owner, {})) if owner else []
            return [*self._public, *own]

    def owners(self) -> list[str]:
        """Sessions that hold datasets of their own."""
        with self._lock:
            return list(self._owned)

    def get(self, name: str) -> DatasetSpec:
        """The dataset ``name`` as the current caller may see it; else a clear error."""
        if not isinstance(name, str):
            raise ValueError(
                f"A dataset is named by text; choose one of: {', '.join(self.names())}"
            )
        owner = current_owner.get()
        with self._lock:
            spec = self._public.get(name)
            if spec is None and owner is not None:
                spec = self._owned.get(owner, {}).get(name)
                if spec is not None:
                    self._last_used[owner] = time.monotonic()
        if spec is None:
            raise UnknownNameError("dataset", name, self.names())
        return spec

    def touch(self, owner: str) -> None:
        """Count ``owner`` as active now (its datasets stay while it works on them)."""
        with self._lock:
            if owner in self._owned:
                self._last_used[owner] = time.monotonic()

    def drop_owner(self, owner: str) -> list[DatasetSpec]:
        """Forget every dataset of ``owner``; returns them so their files can be removed."""
        with self._lock:
            self._last_used.pop(owner, None)
            return list(self._owned.pop(owner, {}).values())

    def idle_owners(self, max_idle_s: float) -> list[str]:
        """Sessions whose datasets nobody has used for ``max_idle_s`` seconds."""
        now = time.monotonic()
        with self._lock:
            return [o for o, used in self._last_used.items() if now - used > max_idle_s]


def shipped(root: Path) -> list[DatasetSpec]:
    """The registered datasets whose images the feature source ``root`` holds, in order."""
    found = []
    for spec in DATASETS.values():
        images = Path(root) / spec.name / "images"
        if images.is_dir():
            found.append(replace(spec, root=images))
    return found


def content_hash(images_dir: Path) -> str:
    """Short sha256 over every image's relative path and bytes: a changed folder hashes anew."""
    digest = hashlib.sha256()
    for path in scan_image_folder(images_dir).paths:
        digest.update(path.relative_to(images_dir).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def folder_spec(images_dir: Path, name: str | None = None) -> DatasetSpec:
    """A folder with one sub-folder per class, served as a dataset (``app.py --images DIR``)."""
    images_dir = Path(images_dir).resolve()
    folder = scan_image_folder(images_dir)
    chosen = safe_name(name or images_dir.name)
    return DatasetSpec(
        name=chosen,
        title=f"{chosen}: your folder",
        description=(
            f"{len(folder.paths)} images in {len(folder.classes)} classes from a folder on this "
            "machine."
        ),
        root=images_dir,
        attribution="the folder's owner",
        fingerprint=content_hash(images_dir),
    )

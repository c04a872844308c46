"""One size cap over the cache's rebuildable files: ONNX graphs and computed features
(``CONVENET_CACHE_MB``, 4096 MB by default; a Space has 50 GB of disk).

They are bounded by the registry already (a graph per model and pooling, features per dataset,
model and view), but a Space that serves many folders or models should not learn its disk's
size from a full disk. Each of them is checked when read and built again when missing, so a
file evicted here costs its rebuild, never an error. A use is marked on the file's
modification time: access times are often not kept (``noatime``, ``relatime``).

Converted weights stay out: one file per offline model (three), and every graph's name is
their digest, so evicting them would export every graph again. The feature-visualization
pictures have a cap of their own (a diskcache store, see ``convenet.explain.featurevis``);
own images go with their session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from convenet.paths import cache_dir
from convenet.settings import SETTINGS

log = logging.getLogger("convenet")

CAPPED_FOLDERS = ("onnx", "features")  # under cache_dir()
PAYLOADS = (".onnx", ".safetensors")  # manifests and half-written files stay
PARTIAL = "partial-"  # the prefix of a file still being written (renamed when whole)
_TRIMMING = threading.Lock()  # two writers evicting from one listing would remove too much


def mark_used(path: Path) -> None:
    """Say that ``path`` was just read: it is the last of the cache to be evicted."""
    with contextlib.suppress(OSError):
        os.utime(path)


def _payloads(root: Path) -> list[tuple[float, int, Path]]:
    found = []
    for folder in CAPPED_FOLDERS:
        for path in (root / folder).rglob("*"):
            if path.name.endswith(PAYLOADS) and not path.name.startswith(PARTIAL):
                with contextlib.suppress(OSError):  # removed meanwhile by another writer
                    if path.is_file() and not path.is_symlink():
                        stat = path.stat()
                        found.append((stat.st_mtime, stat.st_size, path))
    return found


def make_room(written: Path, cap_mb: int | None = None) -> list[Path]:
    """After ``written`` joined the cache: remove the least recently used other files until
    all fit in the cap. Returns those removed (each is built again when next needed)."""
    cap = (cap_mb if cap_mb is not None else SETTINGS.cache_mb) << 20
    with _TRIMMING:
        files = _payloads(cache_dir())
        total = sum(size for _, size, _ in files)
        removed = []
        for _, size, path in sorted(files):
            if total <= cap:
                break
            if path == written:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # another process removed it: its bytes are gone all the same
            except OSError as exc:  # another owner's file in a shared cache: leave it
                log.warning("Cannot remove %s from the cache (%s).", path.name, exc)
                continue
            else:
                removed.append(path)
            total -= size
    if removed:
        log.info(
            "The cache passed its cap of %d MB: removed the %d least recently used files; "
            "each is built again when next needed.",
            cap >> 20,
            len(removed),
        )
    if total > cap:
        log.warning(
            "The cache holds %d MB, over its cap of %d MB, in files just made or in use; "
            "raise CONVENET_CACHE_MB.",
            total >> 20,
            cap >> 20,
        )
    return removed

"""Keras ImageNet weights from a mirror (CONVENET_WEIGHTS_MIRROR) instead of their origin.

For networks that cannot reach the origin. A mirror is a base URL or a folder that holds the
weight files under the names Keras caches them by, and ``SHA256SUMS`` (what ``sha256sum``
prints) naming each one. A file reaches Keras's cache only once its SHA-256 matches that list:
a truncated or damaged copy is refused and never cached, so the next try fetches it again.
A SHA-256 recorded in the registry (``KerasDownload.sha256``) comes first: the mirror's copy must
match it, whatever the list says. None is recorded yet (Keras publishes MD5s for some files,
none for others, and the origin cannot be reached from where this was written), so today the
mirror's list is what a file is checked against.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from convenet.errors import WeightsUnavailableError

CHECKSUMS = "SHA256SUMS"
CHUNK = 1 << 20
TIMEOUT_S = 60  # per read: a stalled mirror fails instead of holding a request for ever
MAX_LIST_BYTES = 1 << 20
URL_SCHEMES = ("http", "https", "file")


def open_file(mirror: str, name: str) -> BinaryIO:
    """``name`` in the mirror, opened for reading; OSError when it cannot be had."""
    if urllib.parse.urlsplit(mirror).scheme in URL_SCHEMES:
        url = f"{mirror.rstrip('/')}/{urllib.parse.quote(name)}"
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 - schemes checked
    return (Path(mirror) / name).open("rb")


def listed_sha256(mirror: str, name: str) -> str | None:
    """The SHA-256 that the mirror's list gives ``name`` (``<hex>  <name>`` or ``<hex> *<name>``
    lines), or None when it lists no such file."""
    with open_file(mirror, CHECKSUMS) as listing:
        text = listing.read(MAX_LIST_BYTES).decode("utf-8", "replace")
    for line in text.splitlines():
        digest, _, listed = line.strip().partition(" ")
        if listed.strip().removeprefix("*") == name and len(digest) == 64:
            return digest.lower()
    return None


def fetch_weights(
    mirror: str, name: str, folder: Path, title: str, pinned: str | None = None
) -> Path:
    """``folder/name``, copied from the mirror once its SHA-256 matches ``pinned`` (the
    registry's), or else the mirror's list.

    The copy is written beside its final name and renamed only when it checks out, so a
    reader never sees half a file and a damaged one leaves nothing behind. Raises
    WeightsUnavailableError (one sentence) for a file the list refuses, OSError when the
    mirror cannot be reached or lacks the file.
    """
    expected = pinned.lower() if pinned else listed_sha256(mirror, name)
    where = "the registry records" if pinned else f"its {CHECKSUMS} lists"
    if expected is None:
        raise WeightsUnavailableError(
            f"The weights mirror's {CHECKSUMS} does not list the weights file of {title}, "
            "so it was not used."
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, open_file(mirror, name) as source:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise WeightsUnavailableError(
                f"The weights file of {title} from the weights mirror is not the one {where} "
                "(its checksum differs), so it was not kept."
            )
        os.replace(partial, folder / name)
    finally:
        Path(partial).unlink(missing_ok=True)
    return folder / name

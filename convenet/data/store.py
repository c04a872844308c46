"""The on-disk feature store: one safetensors file per dataset x model, plus a manifest.

A model's file holds its plain features (``<model>.safetensors``, average pooling); the
retrieval recipes add variants beside it (``<model>.<variant>.safetensors``, e.g. ``gem`` or
``flip``), so stores written before variants existed read as they always did.

safetensors holds plain tensors and a string header, so loading a file downloaded from
anywhere can never run code (unlike pickle). The manifest records each file's sha256 so a
truncated or tampered file is caught before it is served.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

try:  # POSIX only; without it, concurrent processes may lose manifest updates
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
META_KEY = "convenet"
FEATURES_DIR = "features"
SUFFIX = ".safetensors"

_MANIFEST_LOCK = threading.Lock()


class CorruptFeatureFileError(ValueError):
    """A feature file exists but cannot be parsed as a convenet safetensors file."""


@dataclass
class FeatureFile:
    """Per-layer (n_images, dim) float16 arrays and the JSON metadata stored with them."""

    features: dict[str, np.ndarray]
    meta: dict


def feature_path(root: Path | str, dataset: str, model: str, variant: str | None = None) -> Path:
    """Where the features of ``dataset`` x ``model`` (or one variant of them) live in ``root``."""
    for kind, name in (("dataset", dataset), ("model", model)):
        if not name or name in {".", ".."} or "/" in name or "\\" in name:
            raise ValueError(f"Invalid {kind} name {name!r}: must be a plain folder/file name.")
    if variant is None:
        return Path(root) / dataset / FEATURES_DIR / f"{model}{SUFFIX}"
    if "." in model or not variant.replace("-", "").isalnum():
        raise ValueError(f"Invalid variant {variant!r} of model {model!r}.")
    return Path(root) / dataset / FEATURES_DIR / f"{model}.{variant}{SUFFIX}"


def _parse_relpath(relpath: str) -> tuple[str, str, str | None]:
    """(dataset, model, variant) of a manifest key; rejects anything else, e.g. ``../``."""
    parts = PurePosixPath(relpath).parts
    if len(parts) != 3 or parts[1] != FEATURES_DIR or not parts[2].endswith(SUFFIX):
        raise ValueError(
            f"Invalid feature path {relpath!r}: expected <dataset>/{FEATURES_DIR}/<model>{SUFFIX}."
        )
    dataset, stem = parts[0], parts[2].removesuffix(SUFFIX)
    model, _, variant = stem.partition(".")
    feature_path(".", dataset, model, variant or None)  # validates every name
    return dataset, model, variant or None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _checked_rows(features: Mapping[str, np.ndarray], source: str) -> int:
    """The shared row count; every layer must be a 2-D (n_images, dim) array."""
    if not features:
        raise ValueError(f"{source}: no layers given.")
    rows = set()
    for layer, values in features.items():
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"{source}: layer names must be non-empty strings, got {layer!r}.")
        if np.ndim(values) != 2:
            raise ValueError(
                f"{source}: layer {layer!r} has shape {np.shape(values)}, expected (n_images, dim)."
            )
        rows.add(np.shape(values)[0])
    if len(rows) != 1:
        shapes = {layer: np.shape(values) for layer, values in features.items()}
        raise ValueError(f"{source}: layers disagree on the number of images: {shapes}.")
    return rows.pop()


def write_feature_file(path: Path | str, features: Mapping[str, np.ndarray], meta: Mapping) -> None:
    """Store features as float16 with ``meta`` as JSON in the safetensors header, atomically."""
    path = Path(path)
    n = _checked_rows(features, str(path))
    images = meta.get("images")
    if not isinstance(images, list) or len(images) != n:
        count = len(images) if isinstance(images, list) else "no"
        raise ValueError(f"{path}: meta lists {count} images but the features have {n} rows.")
    tensors = {}
    for layer, values in features.items():
        with np.errstate(over="ignore"):  # overflow is reported just below, by name
            half = np.ascontiguousarray(values, dtype=np.float16)
        if not np.isfinite(half).all():
            raise ValueError(f"{path}: layer {layer!r} has values that are not finite in float16.")
        tensors[layer] = half
    header = {META_KEY: json.dumps(dict(meta), sort_keys=True)}
    atomic_write_bytes(path, save(tensors, metadata=header))


def _meta_from_header(header: dict[str, str] | None, path: Path) -> dict:
    try:
        meta = json.loads((header or {})[META_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CorruptFeatureFileError(
            f"{path}: missing or unreadable {META_KEY!r} metadata."
        ) from exc
    if not isinstance(meta, dict):
        raise CorruptFeatureFileError(f"{path}: {META_KEY!r} metadata is not a JSON object.")
    return meta


@contextmanager
def _open(path: Path):
    """safe_open with every parse failure turned into CorruptFeatureFileError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"Feature file not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            yield handle
    except (SafetensorError, ValueError, TypeError) as exc:
        if isinstance(exc, CorruptFeatureFileError):
            raise
        raise CorruptFeatureFileError(f"{path}: not a readable safetensors file ({exc}).") from exc


def read_feature_meta(path: Path | str) -> dict:
    """Only the metadata (reads the header, not the tensors)."""
    path = Path(path)
    with _open(path) as handle:
        return _meta_from_header(handle.metadata(), path)


def _mapped(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Every tensor of a safetensors file as a read-only memory map of the file (float16 only),
    and the metadata. The layout is simple: an 8-byte header length, the JSON header (dtype,
    shape and byte range of each tensor), then the data."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(handle.read(length))
        meta = _meta_from_header(header.pop("__metadata__", None), path)
        features = {}
        for layer, info in header.items():
            if info["dtype"] != "F16":
                raise CorruptFeatureFileError(f"{path}: layer {layer!r} is not float16.")
            shape, (begin, end) = tuple(info["shape"]), info["data_offsets"]
            if len(shape) != 2 or end - begin != 2 * shape[0] * shape[1] or 8 + length + end > size:
                raise ValueError(f"layer {layer!r} does not fit its shape {shape}")
            if begin == end:  # mmap cannot map nothing
                features[layer] = np.zeros(shape, np.float16)
            else:
                offset = 8 + length + begin
                features[layer] = np.memmap(path, np.float16, "r", offset=offset, shape=shape)
    except (struct.error, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CorruptFeatureFileError):
            raise
        raise CorruptFeatureFileError(f"{path}: not a readable safetensors file ({exc}).") from exc
    return features, meta


def read_feature_file(path: Path | str, mapped: bool = False) -> FeatureFile:
    """Load a feature file; any parse problem raises CorruptFeatureFileError naming it.

    ``mapped``: each layer is a read-only memory map of the file instead of a copy in memory,
    so a file of a million images costs the pages that are read, which the kernel can drop
    again, not its size (the app serves large datasets this way).
    """
    path = Path(path)
    if mapped:
        if not path.is_file():
            raise FileNotFoundError(f"Feature file not found: {path}")
        features, meta = _mapped(path)
    else:
        with _open(path) as handle:
            meta = _meta_from_header(handle.metadata(), path)
            features = {layer: handle.get_tensor(layer) for layer in handle.keys()}  # noqa: SIM118 (not a dict)
    try:
        n = _checked_rows(features, str(path))
    except ValueError as exc:
        raise CorruptFeatureFileError(str(exc)) from exc
    for layer, values in features.items():
        if values.dtype != np.float16:
            raise CorruptFeatureFileError(
                f"{path}: layer {layer!r} is {values.dtype}, not float16."
            )
    if len(meta.get("images", ())) != n:
        raise CorruptFeatureFileError(f"{path}: metadata image list does not match {n} rows.")
    return FeatureFile(features=features, meta=meta)


def sha256_file(path: Path | str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _empty_manifest() -> dict[str, Any]:
    return {"format": MANIFEST_FORMAT, "files": {}}


def load_manifest(root: Path | str) -> dict[str, Any]:
    """The manifest of ``root``; an empty one if there is none yet."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return _empty_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}).") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise ValueError(f"{path}: not a format-{MANIFEST_FORMAT} convenet manifest.")
    return manifest


@contextmanager
def _manifest_locked(root: Path):
    """Serialise read-modify-write of the manifest across threads and (on POSIX) processes."""
    with _MANIFEST_LOCK, open(root / f".{MANIFEST_NAME}.lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _relpath(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError as exc:
        raise ValueError(f"{path} is not inside the feature store {root}.") from exc


def record_in_manifest(root: Path | str, path: Path | str) -> dict[str, Any]:
    """Add or refresh the manifest entry of a feature file under ``root``; returns the entry."""
    root, path = Path(root), Path(path)
    relpath = _relpath(root, path)
    dataset, model, _ = _parse_relpath(relpath)
    stored = read_feature_file(path, mapped=True)  # shapes and metadata: no need to read it all
    entry = {
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "dataset": stored.meta.get("dataset", dataset),
        "model": stored.meta.get("model", model),
        "layers": {layer: int(values.shape[1]) for layer, values in stored.features.items()},
        "pooling": stored.meta.get("pooling"),
        "preprocessing": stored.meta.get("preprocessing"),
        "n_images": len(stored.meta["images"]),
        "convenet_version": stored.meta.get("convenet_version"),
    }
    with _manifest_locked(root):
        manifest = load_manifest(root)
        manifest["files"][relpath] = entry
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(root / MANIFEST_NAME, text.encode("utf-8"))
    return entry


def _entry_ok(root: Path, relpath: str, entry: Mapping[str, Any]) -> bool:
    path = feature_path(root, *_parse_relpath(relpath))
    if not path.is_file() or path.stat().st_size != entry.get("bytes"):
        return False
    if sha256_file(path) != entry.get("sha256"):
        return False
    try:
        read_feature_meta(path)
    except CorruptFeatureFileError:
        return False
    return True


def verify_file(root: Path | str, relpath: str) -> bool:
    """True if ``relpath`` is listed, present, matches its size and sha256 and parses."""
    entry = load_manifest(root)["files"].get(relpath)
    return entry is not None and _entry_ok(Path(root), relpath, entry)


def _feature_files_on_disk(root: Path) -> Iterable[str]:
    for path in root.glob(f"*/{FEATURES_DIR}/*{SUFFIX}"):
        yield path.relative_to(root).as_posix()


def verify_root(root: Path | str) -> list[str]:
    """Relpaths that fail verification, including feature files the manifest does not list."""
    root = Path(root)
    files = load_manifest(root)["files"]
    bad = [relpath for relpath, entry in files.items() if not _entry_ok(root, relpath, entry)]
    bad += [relpath for relpath in _feature_files_on_disk(root) if relpath not in files]
    return sorted(bad)


def is_valid(
    root: Path | str, dataset: str, model: str, layers: Iterable[str], variant: str | None = None
) -> bool:
    """Present, listed, checksum ok and holding every layer in ``layers`` (no recompute needed)."""
    relpath = feature_path(root, dataset, model, variant).relative_to(root).as_posix()
    entry = load_manifest(root)["files"].get(relpath)
    if entry is None or not set(layers) <= set(entry.get("layers", {})):
        return False
    return _entry_ok(Path(root), relpath, entry)

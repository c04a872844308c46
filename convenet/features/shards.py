"""Precompute that scales: a folder's images streamed into sharded feature files, resumably.

``convenet.features.precompute`` keeps a dataset's features in one file, which the app reads whole;
that suits thousands of images. Here a folder of any size is walked one directory listing at a time,
extracted a shard at a time (``features.extract_features``, or the same extractor on Ray Data:
``convenet.features.ray_engine``) and written as ``part-NNNNN.safetensors`` files in the store's
format (``store.write_feature_file``), so memory stays flat in the number of images.
``manifest.json`` lists each finished shard with its sha256. Both are written atomically, shard
first, so a run killed at any moment resumes after its last listed shard and ends with the same
files as a run that was never interrupted. An image that cannot be read is skipped and listed in
the manifest with the reason; each engine cuts the same shards (the readable images of each
``shard_size`` images in turn), so their outputs stay equal.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from convenet import __version__
from convenet.data.datasets import IMAGE_EXTENSIONS
from convenet.data.store import (
    atomic_write_bytes,
    read_feature_file,
    sha256_file,
    write_feature_file,
)
from convenet.features.engines import Engine, Image, Shard
from convenet.features.extract import (
    BATCH_SIZE,
    PLAIN,
    FeatureSet,
    Progress,
    View,
    extract_features,
)
from convenet.models.loading import get_model_spec

SHARD_SIZE = 1024
MANIFEST = "manifest.json"
FORMAT = "convenet-shards/2"


def iter_images(root: Path) -> Iterator[Image]:
    """Every image under ``root`` in a fixed order (loose files, then each sub-folder, sorted),
    holding one directory's listing at a time. Hidden names and symlinked folders are skipped."""

    def walk(folder: Path, relative: str) -> Iterator[Image]:
        files, folders = [], []
        with os.scandir(folder) as scan:
            for entry in scan:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                elif entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(entry.name)
        for name in sorted(files):
            yield f"{relative}{name}", relative.split("/", 1)[0]
        del files
        for name in sorted(folders):
            yield from walk(folder / name, f"{relative}{name}/")

    if not Path(root).is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a directory")
    return walk(Path(root), "")


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def local_engine(
    images_dir: Path, model: str, layers: list[str], view: View, batch_size: int, shard_size: int
) -> Engine:
    """The in-process extractor (ONNX Runtime, else Keras), a shard at a time."""

    def run(pending: Iterator[Image]) -> Iterator[Shard]:
        for images in chunked(pending, shard_size):
            paths = [images_dir / rel for rel, _ in images]
            found = extract_features(
                model,
                paths,
                layers,
                view.pooling,
                batch_size=batch_size,
                flip=view.flip,
                skip_broken=True,
            )
            yield images, found.features, dict(found.skipped)

    return run


def settings(images_dir: Path, model: str, layers: list[str], view: View, shard_size: int) -> dict:
    """What a run's output depends on; a resumed run must match it exactly."""
    spec = get_model_spec(model)
    described = FeatureSet({}, spec.key, view.pooling, spec.preprocess, spec.input_size)
    return {
        **described.meta(),
        "flip": view.flip,
        "layers": list(layers),
        "images_dir": str(Path(images_dir).resolve()),
        "shard_size": shard_size,
    }


def shard_name(number: int) -> str:
    return f"part-{number:05d}.safetensors"


def load_manifest(out: Path) -> dict | None:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a convenet shard manifest")
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    atomic_write_bytes(out / MANIFEST, text.encode("utf-8"))


def _resume_point(out: Path, wanted: dict, force: bool) -> dict:
    """The manifest to continue: the stored one if its settings match and its shards are
    intact (size, and the last one's sha256), else a new one."""
    manifest = None if force else load_manifest(out)
    if manifest is not None and manifest["settings"] != wanted:
        raise ValueError(
            f"{out} holds features made with other settings; choose another --out or add --force"
        )
    if manifest is not None:
        shards = manifest["shards"]
        intact = all(
            (out / s["file"]).is_file() and (out / s["file"]).stat().st_size == s["bytes"]
            for s in shards
        )
        if intact and (not shards or sha256_file(out / shards[-1]["file"]) == shards[-1]["sha256"]):
            return manifest
    return {
        "format": FORMAT,
        "settings": wanted,
        "shards": [],
        "n_images": 0,  # rows stored
        "n_scanned": 0,  # images done: stored or skipped
        "last_scanned": None,  # the last of them, checked when a run resumes
        "skipped": [],
        "complete": False,
    }


def precompute_shards(
    images_dir: Path,
    out: Path,
    model: str,
    layers: list[str] | None = None,
    view: View = PLAIN,
    shard_size: int = SHARD_SIZE,
    batch_size: int = BATCH_SIZE,
    engine: str = "local",
    force: bool = False,
    progress: Progress | None = None,
    ray_actors: int | None = None,
) -> dict:
    """Extract every image under ``images_dir`` into shards in ``out``; returns the manifest.

    Resumes a run that stopped: the images of listed shards are skipped, the rest extracted.
    """
    spec = get_model_spec(model)
    names = list(layers or spec.layer_names)
    for name in names:
        spec.layer(name)
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    images_dir, out = Path(images_dir), Path(out)
    wanted = settings(images_dir, spec.key, names, view, shard_size)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _resume_point(out, wanted, force)
    total = sum(1 for _ in iter_images(images_dir))
    if total == 0:
        raise ValueError(f"no images found under {images_dir}")
    done = manifest["n_scanned"]
    if manifest["complete"] and done == total:
        return manifest
    pending = iter_images(images_dir)
    if done:
        passed = list(itertools.islice(pending, done))
        if len(passed) < done or passed[-1][0] != manifest["last_scanned"]:
            raise ValueError(f"{images_dir} changed since {out} was started; add --force")
        del passed
    if engine == "local":
        run = local_engine(images_dir, spec.key, names, view, batch_size, shard_size)
    elif engine == "ray":
        from convenet.features.ray_engine import ray_engine

        run = ray_engine(images_dir, spec.key, names, view, batch_size, shard_size, ray_actors)
    else:
        raise ValueError(f"unknown engine {engine!r}; choose local or ray")
    base_meta = {**wanted, "convenet_version": __version__}
    for chunk, features, skipped in run(pending):
        images = [image for i, image in enumerate(chunk) if i not in skipped]
        if images:
            number = len(manifest["shards"])
            path = out / shard_name(number)
            first = manifest["n_images"]
            meta = {**base_meta, "first": first, "images": [r for r, _ in images]}
            write_feature_file(path, features, {**meta, "labels": [c for _, c in images]})
            entry = {"file": path.name, "first": first, "n_images": len(images)}
            entry |= {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            manifest["shards"].append(entry)
            manifest["n_images"] += len(images)
        done += len(chunk)
        manifest["skipped"] += [{"image": chunk[i][0], "reason": why} for i, why in skipped.items()]
        manifest["n_scanned"], manifest["last_scanned"] = done, chunk[-1][0]
        _write_manifest(out, manifest)
        if progress is not None:
            progress(done, total)
    if not manifest["shards"]:
        raise ValueError(f"none of the {total} images under {images_dir} could be read")
    manifest["complete"] = True
    manifest["layer_dims"] = _layer_dims(out, manifest)
    _write_manifest(out, manifest)
    return manifest


def _layer_dims(out: Path, manifest: dict) -> dict[str, int]:
    first = read_feature_file(out / manifest["shards"][0]["file"])
    return {layer: int(values.shape[1]) for layer, values in first.features.items()}


def layer_chunks(out: Path, layer: str) -> tuple[Callable[[], Iterator[np.ndarray]], int, int]:
    """(a pass over one layer's float16 rows, shard by shard; row count; dimension) of a
    finished run, for building its index without loading all of it."""
    out = Path(out)
    manifest = load_manifest(out)
    if manifest is None or not manifest.get("complete"):
        raise ValueError(f"{out} holds no finished precompute run (run precompute again)")
    dims = manifest["layer_dims"]
    if layer not in dims:
        raise ValueError(f"no layer {layer!r} in {out}; it has: {', '.join(dims)}")

    def chunks() -> Iterator[np.ndarray]:
        for shard in manifest["shards"]:
            yield read_feature_file(out / shard["file"]).features[layer]

    return chunks, manifest["n_images"], dims[layer]

"""Streaming, sharded, resumable precompute (``precompute --images DIR --out OUT``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convenet.data.store import read_feature_file
from convenet.features.extract import extract_features
from convenet.features.shards import iter_images, layer_chunks, load_manifest, precompute_shards
from convenet.paths import PRECOMPUTED_DIR, REPO_DIR

pytestmark = pytest.mark.quick

MODEL = "efficientnet_lite0"
LAYERS = ["stem_conv", "top_conv"]


def real_images(dest: Path, per_class: int, classes: int = 4) -> Path:
    """A labelled folder of shipped stamps200 images (the first of each class)."""
    source = PRECOMPUTED_DIR / "stamps200" / "images"
    for folder in sorted(source.iterdir())[:classes]:
        (dest / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:per_class]:
            shutil.copy(image, dest / folder.name / image.name)
    return dest


def add_broken_images(images: Path) -> dict[str, str]:
    """A truncated JPEG and a text file named .jpg among the real images; {image: reason}."""
    real = sorted(images.glob("*/*.jpg"))[1]
    truncated = images / real.parent.name / "0-truncated.jpg"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    text = sorted(images.iterdir())[-1] / "notes.jpg"
    text.write_text("not a picture, just text with an image's name")
    return {
        truncated.relative_to(images).as_posix(): "the image is broken or truncated",
        text.relative_to(images).as_posix(): "not an image file this app can read",
    }


def features_of(out: Path) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """(images, classes, per-layer rows) of a finished run, shards concatenated."""
    manifest = load_manifest(out)
    assert manifest is not None and manifest["complete"]
    stored = [read_feature_file(out / shard["file"]) for shard in manifest["shards"]]
    images = [name for s in stored for name in s.meta["images"]]
    labels = [name for s in stored for name in s.meta["labels"]]
    layers = {layer: np.concatenate([s.features[layer] for s in stored]) for layer in LAYERS}
    return images, labels, layers


def test_images_are_walked_in_a_fixed_order_with_their_class(tmp_path: Path) -> None:
    for name in ("b/2.jpg", "b/1.png", "a/x/deep.jpg", "a/0.JPG", "loose.jpg", ".hidden/h.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    (tmp_path / "link").symlink_to(tmp_path / "b")
    assert list(iter_images(tmp_path)) == [
        ("loose.jpg", ""),
        ("a/0.JPG", "a"),
        ("a/x/deep.jpg", "a"),
        ("b/1.png", "b"),
        ("b/2.jpg", "b"),
    ]


def test_shards_hold_the_in_process_features_in_order(tmp_path: Path) -> None:
    images = real_images(tmp_path / "images", per_class=3)
    out = tmp_path / "out"
    manifest = precompute_shards(images, out, MODEL, LAYERS, shard_size=5, batch_size=4)
    assert [s["n_images"] for s in manifest["shards"]] == [5, 5, 2]
    assert manifest["layer_dims"] == {"stem_conv": 32, "top_conv": 1280}
    names, labels, layers = features_of(out)
    paths = sorted(images.glob("*/*.jpg"))
    assert names == [p.relative_to(images).as_posix() for p in paths]
    assert labels == [p.parent.name for p in paths]
    reference = extract_features(MODEL, paths, LAYERS).features
    for layer in LAYERS:
        np.testing.assert_allclose(
            layers[layer].astype(np.float32),
            reference[layer].astype(np.float32),
            rtol=2e-3,
            atol=2e-3,
        )
    chunks, n, dim = layer_chunks(out, "top_conv")
    assert (n, dim) == (12, 1280) and [len(c) for c in chunks()] == [5, 5, 2]
    again = precompute_shards(images, out, MODEL, LAYERS, shard_size=5, batch_size=4)
    assert again == manifest  # finished: nothing recomputed
    with pytest.raises(ValueError, match="other settings"):
        precompute_shards(images, out, MODEL, LAYERS, shard_size=6)


def test_unreadable_images_are_skipped_and_listed(tmp_path: Path) -> None:
    images = real_images(tmp_path / "images", per_class=3)
    broken = add_broken_images(images)
    out = tmp_path / "out"
    manifest = precompute_shards(images, out, MODEL, LAYERS, shard_size=5, batch_size=2)
    assert {s["image"]: s["reason"] for s in manifest["skipped"]} == broken
    assert (manifest["n_scanned"], manifest["n_images"]) == (14, 12)
    assert [s["n_images"] for s in manifest["shards"]] == [4, 5, 3]  # 5 images each, less 2
    names, _, layers = features_of(out)
    paths = sorted(
        p for p in images.glob("*/*.jpg") if p.relative_to(images).as_posix() not in broken
    )
    assert names == [p.relative_to(images).as_posix() for p in paths]
    reference = extract_features(MODEL, paths, LAYERS).features
    np.testing.assert_allclose(
        layers["top_conv"].astype(np.float32),
        reference["top_conv"].astype(np.float32),
        rtol=2e-3,
        atol=2e-3,
    )
    assert precompute_shards(images, out, MODEL, LAYERS, shard_size=5, batch_size=2) == manifest
    (images / next(iter(broken))).unlink()  # the folder changed: its order no longer matches
    with pytest.raises(ValueError, match="no longer|changed|other settings"):
        precompute_shards(images, tmp_path / "out", MODEL, LAYERS, shard_size=5, batch_size=2)


def test_a_shard_of_nothing_but_unreadable_images_is_passed_over(tmp_path: Path) -> None:
    images = tmp_path / "images"
    (images / "a").mkdir(parents=True)
    for name in ("0.jpg", "1.jpg"):
        (images / "a" / name).write_text("text")
    real = sorted((PRECOMPUTED_DIR / "stamps200" / "images").glob("*/*.jpg"))[0]
    shutil.copy(real, images / "a" / "2.jpg")
    manifest = precompute_shards(images, tmp_path / "out", MODEL, ["top_conv"], shard_size=2)
    assert [s["n_images"] for s in manifest["shards"]] == [1]
    assert [s["image"] for s in manifest["skipped"]] == ["a/0.jpg", "a/1.jpg"]
    (images / "a" / "2.jpg").write_text("text")
    with pytest.raises(ValueError, match="none of the 3 images"):
        precompute_shards(images, tmp_path / "none", MODEL, ["top_conv"], shard_size=2)


def _precompute(images: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "convenet", "precompute", "--images", str(images)]
    command += ["--out", str(out), "--model", MODEL, "--layers", *LAYERS]
    command += ["--shard-size", "4", "--batch-size", "4"]
    env = {**os.environ, "CONVENET_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, cwd=REPO_DIR, env=env, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    images = real_images(tmp_path / "images", per_class=12)  # 48 images, 12 shards
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    first = _precompute(images, resumed)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        manifest = load_manifest(resumed) if (resumed / "manifest.json").is_file() else None
        if manifest and len(manifest["shards"]) >= 2:
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed = load_manifest(resumed)
    assert killed is not None and not killed["complete"], "the run ended before it was killed"
    kept = {s["file"]: (resumed / s["file"]).stat().st_mtime_ns for s in killed["shards"]}
    for process in (_precompute(images, resumed), _precompute(images, whole)):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    for name, mtime in kept.items():  # the shards done before the kill were not redone
        assert (resumed / name).stat().st_mtime_ns == mtime
    a, b = features_of(resumed), features_of(whole)
    assert a[0] == b[0] and a[1] == b[1] and len(a[0]) == 48
    for layer in LAYERS:
        np.testing.assert_allclose(a[2][layer], b[2][layer], rtol=1e-3, atol=1e-3)
    shards = [(s["file"], s["n_images"]) for s in load_manifest(resumed)["shards"]]
    assert shards == [(s["file"], s["n_images"]) for s in load_manifest(whole)["shards"]]

"""``python -m convenet import`` (a fake Hub, a folder, no network) and ``index``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from convenet.cli import main
from convenet.paths import PRECOMPUTED_DIR, REPO_DIR
from tests.data.test_hub import REPO, FakeHub

pytestmark = pytest.mark.quick

STAMPS = PRECOMPUTED_DIR / "stamps200" / "images"


def parquet_dataset(classes: int, per_class: int) -> bytes:
    """A Hub-style parquet split: encoded images of real photos and integer labels."""
    folders = sorted(STAMPS.iterdir())[:classes]
    images, labels = [], []
    for label, folder in enumerate(folders):
        for path in sorted(folder.iterdir())[:per_class]:
            images.append({"bytes": path.read_bytes(), "path": path.name})
            labels.append(label)
    table = pa.table({"image": images, "label": labels})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    server = FakeHub({"data/train-00000-of-00001.parquet": parquet_dataset(4, 5)})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def convenet(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command line in a child process (huggingface_hub reads HF_* when imported)."""
    command = [sys.executable, "-m", "convenet", *args]
    environment = {**os.environ, **env}
    return subprocess.run(command, cwd=REPO_DIR, env=environment, capture_output=True, text=True)


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))


def test_import_from_the_hub_samples_classes_with_a_seed(hub: FakeHub, tmp_path: Path) -> None:
    args = ["import", "--hub", REPO, "--classes", "3", "--per-class", "4", "--seed", "0"]
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    for name in ("one", "two"):
        done = convenet([*args, "--name", name, "--root", str(tmp_path)], env)
        assert done.returncode == 0, done.stderr[-2000:]
    one = listing(tmp_path / "one" / "images")
    assert len(one) == 12 and len({name.split("/")[0] for name in one}) == 3
    assert one == listing(tmp_path / "two" / "images")  # same seed, same sample
    assert any("train-00000-of-00001.parquet" in path for _, path in hub.requests)


def test_import_offline_fails_in_one_sentence(tmp_path: Path) -> None:
    args = ["import", "--hub", "zh-plus/tiny-imagenet", "--name", "tinyimagenet200"]
    done = convenet([*args, "--root", str(tmp_path)], {"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Cannot download zh-plus/tiny-imagenet")
    assert "Error" not in lines[0] and "Traceback" not in done.stderr
    assert not listing(tmp_path)


def test_import_from_a_folder_and_never_over_a_dataset(tmp_path: Path) -> None:
    args = ["import", "--folder", str(STAMPS), "--name", "mine", "--root", str(tmp_path)]
    assert main([*args, "--classes", "2", "--per-class", "3"]) == 0
    assert len(listing(tmp_path / "mine" / "images")) == 6
    assert main([*args, "--classes", "2", "--per-class", "3"]) == 2  # not empty: refused


def test_index_of_a_sharded_run_and_of_a_store_dataset(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for folder in sorted(STAMPS.iterdir())[:2]:
        (images / folder.name).mkdir(parents=True)
        for path in sorted(folder.iterdir())[:4]:
            (images / folder.name / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    args = ["--images", str(images), "--out", str(out), "--layers", "top_conv"]
    assert main(["precompute", *args, "--model", "efficientnet_lite0", "--shard-size", "3"]) == 0
    assert main(["index", "--shards", str(out), "--layer", "top_conv"]) == 0
    from convenet.search.vector_index import load_index

    index, about = load_index(out / "index" / "top_conv.cosine.faiss")
    assert (index.kind, index.n, about["layer"]) == ("exact", 8, "top_conv")
    store = tmp_path / "store"
    (store / "stamps200").mkdir(parents=True)
    for part in ("images", "features"):
        (store / "stamps200" / part).symlink_to(PRECOMPUTED_DIR / "stamps200" / part)
    (store / "manifest.json").symlink_to(PRECOMPUTED_DIR / "manifest.json")
    args = ["index", "--dataset", "stamps200", "--root", str(store), "--metric", "euclidean"]
    assert main([*args, "--exact-max", "0"]) == 0
    index, _ = load_index(store / "stamps200/index/efficientnet_lite0.top_conv.euclidean.faiss")
    assert (index.kind, index.n) == ("ivf", 200)
    indices, distances = index.search(np.zeros(1280, np.float32), 5)
    assert indices.shape == (1, 5) and np.all(np.diff(distances[0]) >= 0)


def test_precompute_images_without_out_writes_shards_beside_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.features.test_shards import add_broken_images, real_images

    images = real_images(tmp_path / "images", per_class=2, classes=2)
    broken = add_broken_images(images)
    args = ["precompute", "--images", str(images), "--layers", "top_conv", "--shard-size", "3"]
    assert main(args) == 0
    out = images / ".convenet" / "efficientnet_lite0"  # the default: no --out, no --model
    said = capsys.readouterr().out
    assert f"4 images in 2 shards in {out}" in said
    assert "skipped 2 that could not be read: " in said
    assert all(f"{image} ({reason})" in said for image, reason in broken.items())
    assert main(["index", "--shards", str(out), "--layer", "top_conv", "--metric", "cosine"]) == 0
    assert main(args) == 0  # the hidden folder is not walked as images: the same run, finished
    assert "4 images in 2 shards" in capsys.readouterr().out


def test_precompute_help_says_where_shards_go(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["precompute", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "default: DIR/.convenet/MODEL" in said

"""Resident memory of the app serving a large dataset (memory-mapped features, a FAISS index)
next to a small one, through the same code path: a folder served with ``CONVENET_IMAGES``.

    nice -n 10 python benchmarks/bench_served_scale.py [--sizes 200 1000000] [--layers top_conv]

The folder holds hard links to a few real stamps200 images (so a million "images" take a few
directory entries each, not disk), and its features are made before the app starts, where the
app's cache looks for them (the folder's content hash in the name): each row is a real image's
EfficientNet-Lite0 features plus a little noise, written as a float16 safetensors file a layer
at a time (memory flat in n). The app then starts without computing anything. For each size:
seconds to HTTP 200, and VmRSS / RssAnon (the process's own memory) / RssFile (mapped file
pages, which the kernel can drop) at start, after searches and after the map (PCA of its
5,000-image sample); the index is built in the app on the first search (IVF above 50,000).
``tests/test_large_dataset.py`` serves 60,000 images made the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import numpy as np  # noqa: E402

from convenet import __version__  # noqa: E402
from convenet.data.catalog import content_hash  # noqa: E402
from convenet.data.store import META_KEY, feature_path, read_feature_file, record_in_manifest  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.search.vector_index import EXACT_MAX  # noqa: E402

MODEL = "efficientnet_lite0"
SOURCE = PRECOMPUTED_DIR / "stamps200"
CLASSES = 10
REAL_PER_CLASS = 3
CHUNK = 50_000  # rows generated and written at a time


def real_rows(layers: list[str] | None) -> tuple[list[str], dict[str, np.ndarray], list[Path]]:
    """(classes, per-layer (CLASSES * REAL_PER_CLASS, d) float32 rows, their image files)."""
    stored = read_feature_file(SOURCE / "features" / f"{MODEL}.safetensors")
    classes = sorted(set(stored.meta["labels"]))[:CLASSES]
    picked = [
        i
        for c in classes
        for i in [j for j, label in enumerate(stored.meta["labels"]) if label == c][:REAL_PER_CLASS]
    ]
    chosen = layers or list(stored.features)
    rows = {name: stored.features[name][picked].astype(np.float32) for name in chosen}
    return classes, rows, [SOURCE / "images" / stored.meta["images"][i] for i in picked]


def served_dataset(
    images: Path, cache: Path, n: int, name: str = "big", layers: list[str] | None = None
) -> str:
    """Make ``images`` (n hard links in CLASSES class folders) and its features in the app's
    cache ``cache``; returns the ``CONVENET_IMAGES`` value that serves it."""
    if n % CLASSES:
        raise ValueError(f"n must be a multiple of {CLASSES}")
    classes, rows, files = real_rows(layers)
    per_class = n // CLASSES
    sources = images.parent / f"{images.name}-sources"
    sources.mkdir(parents=True)
    names = []
    for c, cls in enumerate(classes):
        (images / cls).mkdir(parents=True)
        originals = []
        for r in range(REAL_PER_CLASS):
            originals.append(sources / f"{c}-{r}.jpg")
            shutil.copy(files[c * REAL_PER_CLASS + r], originals[-1])
        for j in range(per_class):
            os.link(originals[j % REAL_PER_CLASS], images / cls / f"{j:07d}.jpg")
            names.append(f"{cls}/{j:07d}.jpg")
    meta = {
        "model": MODEL,
        "pooling": "avg",
        "preprocessing": "convenet.efficientnet_lite.lite_preprocess",
        "input_size": 224,
        "weights": "imagenet",
        "dataset": name,
        "fingerprint": content_hash(images),  # what the app checks before reading them
        "images": names,
        "labels": [name.split("/", 1)[0] for name in names],
        "convenet_version": __version__,
    }
    root = cache / "features"
    path = feature_path(root, meta["dataset"], MODEL)
    _write_streamed(path, rows, n, meta)
    record_in_manifest(root, path)
    return f"{name}={images}"


def save_cosine_index(cache: Path, name: str, nlist: int) -> None:
    """Build and save the top_conv cosine index where the app looks for it (as ``python -m
    convenet index`` does for a feature store), from the memory-mapped rows, so the app need
    not build one (about 10 minutes at 1e6 on two cores with the default 1,000 cells)."""
    from convenet.search.vector_index import ADD_CHUNK, build_index, index_path, save_index

    root = cache / "features"
    path = feature_path(root, name, MODEL)
    rows = read_feature_file(path, mapped=True).features["top_conv"]

    def chunks():
        for start in range(0, len(rows), ADD_CHUNK):
            yield rows[start : start + ADD_CHUNK]

    index = build_index(chunks, len(rows), rows.shape[1], "cosine", nlist=nlist)
    save_index(index, index_path(root, name, MODEL, "top_conv", "cosine"), {"recipe": "plain"})


def _synthetic(rows: np.ndarray, start: int, stop: int, n: int, seed: int) -> np.ndarray:
    """Rows start..stop: the real row of each image's source file plus noise (10 % of the
    real rows' spread per dimension), float16. The noise of a row is the mean of two of 4,096
    fixed draws, chosen at random: distinct rows at a gather's cost, not a fresh draw's."""
    index = np.arange(start, stop)
    per_class = n // CLASSES
    source = (index // per_class) * REAL_PER_CLASS + (index % per_class) % REAL_PER_CLASS
    rng = np.random.default_rng([seed, start])
    bank = rng.standard_normal((4096, rows.shape[1]), dtype=np.float32)
    bank *= 0.1 * rows.std(axis=0) / np.sqrt(2)
    a, b = rng.integers(0, len(bank), (2, stop - start))
    return (rows[source] + bank[a] + bank[b]).astype(np.float16)


def _write_streamed(path: Path, rows: dict[str, np.ndarray], n: int, meta: dict) -> None:
    """A safetensors file written a chunk at a time: header, then each layer's rows."""
    header: dict = {"__metadata__": {META_KEY: json.dumps(meta, sort_keys=True)}}
    offset = 0
    for layer, values in rows.items():
        size = 2 * n * values.shape[1]
        header[layer] = {
            "dtype": "F16",
            "shape": [n, values.shape[1]],
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        for seed, values in enumerate(rows.values()):
            for start in range(0, n, CHUNK):
                handle.write(_synthetic(values, start, min(n, start + CHUNK), n, seed).tobytes())


def _memory(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        key: round(int(fields[key].split()[0]) / 1024)
        for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM")
    }


def measure(n: int, layers: list[str] | None, searches: int, nlist: int) -> dict:
    from gradio_client import Client

    from benchmarks.common import app_cache
    from tests.app_server import app_process

    with app_cache() as cache, tempfile.TemporaryDirectory(prefix="convenet-served-") as tmp:
        began = time.perf_counter()
        served = served_dataset(Path(tmp) / "images", cache, n, layers=layers)
        made = time.perf_counter() - began
        if n > EXACT_MAX:
            save_cosine_index(cache, "big", nlist)
        began = time.perf_counter()
        with app_process(cache, timeout=1800, extra_env={"CONVENET_IMAGES": served}) as app:
            result = {"n": n, "layers": layers or "all", "made_s": round(made, 1), "nlist": nlist}
            result["start_s"] = round(time.perf_counter() - began, 1)
            result["at_start"] = _memory(app.process.pid)
            client = Client(app.url, verbose=False)
            times = []
            for i in range(searches):
                began = time.perf_counter()
                out = client.predict(
                    dataset="big",
                    layer="top_conv",
                    query_index=(i * 7919) % n,
                    k=50,
                    api_name="/search",
                )
                times.append(time.perf_counter() - began)
                assert len(out["results"]) == 50
            result["first_search_s"] = round(times[0], 2)
            result["search_p50_ms"] = round(1000 * float(np.median(times[1:])), 1)
            result["after_searches"] = _memory(app.process.pid)
            client.predict("big", MODEL, "top_conv", 3, None, "pca", api_name="/projection")
            result["after_map"] = _memory(app.process.pid)
            client.close()
    result["load_average"] = os.getloadavg()
    return result


def main() -> None:
    import argparse

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sizes", type=int, nargs="*", default=[200, 1_000_000])
    args.add_argument("--layers", nargs="*", default=["top_conv"], help="none: all eight")
    args.add_argument("--searches", type=int, default=21)
    args.add_argument("--nlist", type=int, default=256, help="IVF cells of the saved index")
    opts = args.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    for n in opts.sizes:
        print(json.dumps(measure(n, opts.layers or None, opts.searches, opts.nlist)), flush=True)


if __name__ == "__main__":
    main()

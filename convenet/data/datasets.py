"""Image datasets: the registry of shipped sets, folder scanning, and importers.

A dataset is a folder with one sub-folder of images per class. The two shipped sets live under
precomputed/<name>/images; importers write the same layout (fixed-size JPEG thumbnails) from any
image folder or from a Hugging Face Hub parquet dataset, sampling with a fixed seed so that a
rebuilt set is the same set.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from convenet.data.images import flatten_onto_white, has_transparency
from convenet.errors import choose
from convenet.paths import PRECOMPUTED_DIR

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
THUMBNAIL_SIZE = 192
JPEG_QUALITY = 85
# Alpha at or below this counts as empty when cropping cut-outs: soft shadows and antialiasing
# fringes would otherwise keep the crop box needlessly large.
_ALPHA_FLOOR = 16


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Plain description of a dataset the app can offer; `root` holds one folder per class.

    The app lists exactly these entries (``convenet.data.catalog``): adding a dataset is one entry.
    An unlabelled set keeps its images in one folder and is searched without scores.
    ``fingerprint`` (a content hash, for folders served with ``--images``) is recorded in its
    stored features and checked when they are read, so a changed folder is never served stale
    features, and ``precompute --images DIR --name NAME`` writes what the app reads;
    ``cache`` is where computed features go (None: the app's feature cache); ``owner`` is the
    browser session a dataset belongs to (None: everyone's).
    """

    name: str
    title: str
    description: str
    root: Path
    licence: str = "unknown"
    attribution: str = ""
    labelled: bool = True
    fingerprint: str = ""
    cache: Path | None = None
    owner: str | None = None

    @property
    def store_name(self) -> str:
        """The dataset's name in a feature store: its own name, wherever it is computed."""
        return self.name


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="stamps200",
            title="Stamps200: photo cut-outs",
            description=(
                "10 classes x 20 photo cut-outs of single objects on white. Classes overlap on "
                "purpose: birds, hoofed mammals, other mammals and water animals; fruit versus "
                "vegetables; flowers; vehicles; coins; household objects."
            ),
            licence="GPL-2.0-or-later",
            attribution=(
                "Tux Paint stamps by Bill Kendrick and contributors (Debian package "
                "tuxpaint-stamps-default); see NOTICE.txt and LICENSE.txt"
            ),
            root=PRECOMPUTED_DIR / "stamps200" / "images",
        ),
        DatasetSpec(
            name="clipart200",
            title="Clipart200: clip-art drawings",
            description=(
                "10 classes x 20 clip-art drawings. Classes overlap on purpose: birds, insects "
                "and cats; fruit, desserts and drinks; flowers; musical instruments; road "
                "vehicles; hand tools."
            ),
            licence="Public domain",
            attribution=(
                "Open Clip Art Library artists (Debian package openclipart-png); see NOTICE.txt"
            ),
            root=PRECOMPUTED_DIR / "clipart200" / "images",
        ),
    )
}


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up by name, naming the known ones when it is not there."""
    return choose("dataset", name, DATASETS)


@dataclass
class ImageFolder:
    """Images with integer labels; `classes[label]` is the class (folder) name."""

    paths: list[Path]
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def label_names(self) -> list[str]:
        """Class name of each image, in `paths` order."""
        return [self.classes[label] for label in self.labels]


def _is_image(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def scan_image_folder(root: Path, min_classes: int = 2) -> ImageFolder:
    """Read a one-sub-folder-per-class layout; empty classes are errors, not silently dropped.

    ``min_classes=1`` reads an unlabelled set (all its images in one sub-folder).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a directory")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < min_classes:
        raise ValueError(
            f"image folder {root} has {len(class_dirs)} class sub-folder(s); "
            f"expected one sub-folder of images per class and at least {min_classes} classes"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        images = sorted(p for p in class_dir.iterdir() if _is_image(p))
        if not images:
            raise ValueError(f"class folder {class_dir} contains no images")
        paths += images
        labels += [label] * len(images)
    return ImageFolder(paths, np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs])


def load_dataset(name: str) -> ImageFolder:
    """Scan a registered dataset's images."""
    return scan_image_folder(get_dataset(name).root)


def flatten(image: Image.Image) -> Image.Image:
    """RGB image with transparency flattened onto white.

    Cut-outs are cropped to their visible pixels first, so the object, not the empty canvas
    around it, fills the frame.
    """
    if not has_transparency(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").point(lambda a: 255 if a > _ALPHA_FLOOR else 0).getbbox()
    if box is None:
        raise ValueError("image is fully transparent")
    return flatten_onto_white(rgba.crop(box))


def fit_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> Image.Image:
    """Square RGB thumbnail of the flattened image, aspect kept, padded with white."""
    fitted = ImageOps.contain(flatten(image), (size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return canvas


def save_thumbnail(image: Image.Image, dest: Path, size: int = THUMBNAIL_SIZE) -> None:
    """Write `image` as a dataset thumbnail (JPEG) at `dest`, creating parent folders."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fit_thumbnail(image, size).save(dest, "JPEG", quality=JPEG_QUALITY, optimize=True)


def open_image(source: Path | bytes, name: str | None = None) -> Image.Image:
    """Decode an image file or encoded bytes; a bad image is a ValueError that names it."""
    label = name or str(source)
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except (OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {label}: {err}") from err
    return image


def safe_name(text: str) -> str:
    """File-system-safe version of a class name or file stem."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text.strip()).strip("_")
    if not cleaned:
        raise ValueError(f"name {text!r} has no usable characters")
    return cleaned


def seeded_order(items: Iterable[Any], seed: int | str) -> list[Any]:
    """Deterministic shuffle of sorted items: a fixed seed always yields the same sample."""
    order = sorted(items)
    random.Random(str(seed)).shuffle(order)
    return order


def sample_groups(
    groups: dict[str, Sequence[Any]], n_classes: int | None, n_per_class: int, seed: int
) -> dict[str, list[Any]]:
    """Pick classes with at least `n_per_class` items, then `n_per_class` items from each.

    With `n_classes=None` every class is kept and a class that is too small is an error rather
    than a silently smaller dataset.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if n_classes is not None and n_classes < 2:
        raise ValueError(f"n_classes must be at least 2 (or None for all), got {n_classes}")
    small = {name: len(items) for name, items in groups.items() if len(items) < n_per_class}
    if n_classes is None:
        if small:
            raise ValueError(f"classes with fewer than {n_per_class} images: {small}")
        chosen = sorted(groups)
    else:
        eligible = [name for name in groups if name not in small]
        if len(eligible) < n_classes:
            raise ValueError(
                f"asked for {n_classes} classes with {n_per_class} images each, but only "
                f"{len(eligible)} of {len(groups)} classes have that many"
            )
        chosen = sorted(seeded_order(eligible, seed)[:n_classes])
    return {name: seeded_order(groups[name], f"{seed}/{name}")[:n_per_class] for name in chosen}


def _check_empty_dest(dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"destination {dest} is not empty; choose a new folder")


def import_image_folder(
    src: Path,
    dest: Path,
    n_classes: int | None,
    n_per_class: int,
    seed: int = 0,
    size: int = THUMBNAIL_SIZE,
) -> ImageFolder:
    """Sample a class-per-folder image collection into thumbnails laid out as a dataset."""
    dest = Path(dest)
    _check_empty_dest(dest)
    source = scan_image_folder(Path(src))
    groups: dict[str, list[Path]] = {name: [] for name in source.classes}
    for path, name in zip(source.paths, source.label_names(), strict=True):
        groups[name].append(path)
    for name, paths in sample_groups(groups, n_classes, n_per_class, seed).items():
        for i, path in enumerate(paths):
            out = dest / safe_name(name) / f"{i:03d}_{safe_name(path.stem)}.jpg"
            save_thumbnail(open_image(path), out, size)
    return scan_image_folder(dest)


def _parquet_patterns(split: str) -> list[str]:
    # The layouts the Hub uses: data/train-00000-of-00001.parquet, train/0000.parquet,
    # <config>/train/0000.parquet (auto-converted) and train.parquet.
    return [f"*{split}-*.parquet", f"*{split}/*.parquet", f"*{split}.parquet"]


def _download_parquet(repo_id: str, split: str, revision: str | None) -> tuple[list[Path], Path]:
    """Fetch a split's parquet files plus the metadata files that carry class names."""
    import httpx2
    from huggingface_hub import snapshot_download

    patterns = _parquet_patterns(split)
    try:
        local = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                allow_patterns=[*patterns, "README.md", "dataset_infos.json"],
            )
        )
    except (OSError, httpx2.HTTPError) as exc:  # offline, unreachable, refused, no such repo
        raise ValueError(
            f"Cannot download {repo_id} from the Hugging Face Hub (offline, unreachable or no "
            "such dataset); import a local copy with --folder instead"
        ) from exc
    files = sorted(
        p
        for p in local.rglob("*.parquet")
        if any(p.relative_to(local).match(pattern) for pattern in patterns)
    )
    if not files:
        raise ValueError(f"no parquet files for split {split!r} in Hub dataset {repo_id}")
    return files, local


def _class_label_names(features: Any, column: str) -> dict[int, str] | None:
    """ClassLabel names for `column` from a `datasets` features description (dict or list)."""
    if isinstance(features, dict):
        feature = features.get(column)
    elif isinstance(features, list):  # dataset card YAML: [{name: label, dtype: {...}}, ...]
        feature = next((f for f in features if f.get("name") == column), None)
        feature = feature.get("dtype") if feature else None
        if isinstance(feature, dict) and "class_label" in feature:
            feature = feature["class_label"]
    else:
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    if isinstance(names, dict):  # card YAML keys them by id: {'0': cat, '1': dog}
        return {int(k): str(v) for k, v in names.items()}
    return {i: str(n) for i, n in enumerate(names)} if isinstance(names, list) else None


def _card_features(card: Path) -> list[Any]:
    """`features` entries of every config in a dataset card's YAML header."""
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    infos = header.get("dataset_info", [])
    infos = infos if isinstance(infos, list) else [infos]
    return [info.get("features") for info in infos if isinstance(info, dict)]


def _hub_class_names(
    parquet_file: Path, metadata_dir: Path | None, column: str
) -> dict[int, str] | None:
    """ClassLabel names from the parquet schema, then dataset_infos.json, then the card."""
    import pyarrow.parquet as pq

    candidates: list[Any] = []
    schema_meta = pq.read_schema(parquet_file).metadata or {}
    if b"huggingface" in schema_meta:
        candidates.append(json.loads(schema_meta[b"huggingface"]).get("info", {}).get("features"))
    if metadata_dir is not None:
        infos = metadata_dir / "dataset_infos.json"
        if infos.is_file():
            data = json.loads(infos.read_text(encoding="utf-8"))
            candidates += [cfg.get("features") for cfg in data.values() if isinstance(cfg, dict)]
        card = metadata_dir / "README.md"
        if card.is_file():
            candidates += _card_features(card)
    for features in candidates:
        names = _class_label_names(features, column)
        if names:
            return names
    return None


def _image_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, dict):
        value = value.get("bytes")
    if not isinstance(value, bytes):
        raise ValueError(f"{where}: image cell has no encoded bytes")
    return value


def import_hub_dataset(
    repo_id: str,
    dest: Path,
    n_classes: int | None = 10,
    n_per_class: int = 20,
    seed: int = 0,
    split: str = "train",
    image_column: str = "image",
    label_column: str = "label",
    revision: str | None = None,
    parquet_files: list[Path] | None = None,
) -> ImageFolder:
    """Sample an image-classification dataset stored as parquet on the Hugging Face Hub.

    Labels are read first and only the sampled rows' images are decoded, so a large split
    (e.g. Tiny ImageNet's 100,000 training images) costs one pass over its files.
    Pass `parquet_files` to import local files without any download.
    """
    import pyarrow.parquet as pq

    dest = Path(dest)
    _check_empty_dest(dest)
    metadata_dir = None
    if parquet_files is None:
        parquet_files, metadata_dir = _download_parquet(repo_id, split, revision)
    files = sorted(Path(p) for p in parquet_files)
    if not files:
        raise ValueError(f"no parquet files given for {repo_id}")
    rows: list[tuple[int, int]] = []  # (file index, row in file)
    raw_labels: list[Any] = []
    for f_idx, path in enumerate(files):
        columns = pq.read_schema(path).names
        for column in (image_column, label_column):
            if column not in columns:
                raise ValueError(f"{path} has no column {column!r}; columns: {columns}")
        labels = pq.read_table(path, columns=[label_column]).column(label_column).to_pylist()
        rows += [(f_idx, r) for r in range(len(labels))]
        raw_labels += labels
    names = _hub_class_names(files[0], metadata_dir, label_column)

    def class_name(label: Any) -> str:
        if isinstance(label, str):
            return label
        return (names or {}).get(label, f"class_{label}")

    folder_of: dict[Any, str] = {}
    for label in {label for label in raw_labels if label is not None}:
        folder_of[label] = safe_name(class_name(label))
    first_label: dict[str, Any] = {}
    for label, folder in folder_of.items():
        if first_label.setdefault(folder, label) != label:
            raise ValueError(
                f"{repo_id}: labels {first_label[folder]!r} and {label!r} share folder {folder!r}"
            )
    groups: dict[str, list[int]] = {}
    for index, label in enumerate(raw_labels):
        if label is not None:
            groups.setdefault(folder_of[label], []).append(index)
    picked = sample_groups(groups, n_classes, n_per_class, seed)
    targets: dict[tuple[int, int], Path] = {}
    for name, indices in picked.items():
        for i, index in enumerate(indices):
            targets[rows[index]] = dest / name / f"{i:03d}_{split}-{index}.jpg"
    for f_idx, path in enumerate(files):
        wanted = sorted(r for f, r in targets if f == f_idx)
        if not wanted:
            continue
        cells = pq.read_table(path, columns=[image_column]).column(image_column).take(wanted)
        for row, cell in zip(wanted, cells.to_pylist(), strict=True):
            where = f"{path} row {row}"
            save_thumbnail(open_image(_image_bytes(cell, where), where), targets[(f_idx, row)])
    return scan_image_folder(dest)

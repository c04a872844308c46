"""Dataset registry, folder scanning and the importers (all offline)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from convenet.data.datasets import (
    DATASETS,
    fit_thumbnail,
    get_dataset,
    import_hub_dataset,
    import_image_folder,
    load_dataset,
    scan_image_folder,
)

pytestmark = pytest.mark.quick


def _png(path: Path, color: tuple[int, int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", size, color).save(path)


def _png_bytes(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buffer, "PNG")
    return buffer.getvalue()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


# --- shipped datasets -------------------------------------------------------------------------


def test_registry_lists_stamps_first() -> None:
    assert list(DATASETS)[:2] == ["stamps200", "clipart200"]
    assert get_dataset("clipart200") is DATASETS["clipart200"]


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="stamps200.*clipart200"):
        get_dataset("tinyimagenet")


@pytest.mark.parametrize("name", ["stamps200", "clipart200"])
def test_shipped_dataset_is_10_classes_of_20_readable_jpegs(name: str) -> None:
    folder = load_dataset(name)
    assert len(folder.classes) == 10
    assert np.bincount(folder.labels).tolist() == [20] * 10
    for path in folder.paths:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (192, 192))
            image.load()


@pytest.mark.parametrize("name", ["stamps200", "clipart200"])
def test_shipped_dataset_carries_licence_notice_and_sources(name: str) -> None:
    spec = get_dataset(name)
    folder = spec.root.parent
    notice = (folder / "NOTICE.txt").read_text(encoding="utf-8")
    assert "Debian package" in notice and "version" in notice
    assert (folder / "LICENSE.txt").stat().st_size > 1000
    lines = (folder / "SOURCES.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    for line in lines:
        output, source = line.split(" -> ")
        assert (folder / output).is_file()
        assert source.startswith("/usr/share/")


def test_gpl_dataset_ships_the_gpl_text() -> None:
    folder = get_dataset("stamps200").root.parent
    licence = (folder / "LICENSE.txt").read_text(encoding="utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in licence and "Version 2" in licence
    assert "tuxpaint-stamps-default" in (folder / "NOTICE.txt").read_text(encoding="utf-8")


# --- scanning ---------------------------------------------------------------------------------


def test_scan_sorts_classes_and_ignores_non_images(tmp_path: Path) -> None:
    _png(tmp_path / "dog" / "b.png", (0, 0, 0, 255))
    _png(tmp_path / "dog" / "a.png", (0, 0, 0, 255))
    _png(tmp_path / "cat" / "c.png", (0, 0, 0, 255))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "README.md").write_text("top-level files are not classes")
    folder = scan_image_folder(tmp_path)
    assert folder.classes == ["cat", "dog"]
    assert [p.name for p in folder.paths] == ["c.png", "a.png", "b.png"]
    assert folder.labels.tolist() == [0, 1, 1]
    assert folder.label_names() == ["cat", "dog", "dog"]
    assert len(folder) == 3


def test_scan_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        scan_image_folder(tmp_path / "nowhere")


def test_scan_rejects_single_class(tmp_path: Path) -> None:
    _png(tmp_path / "only" / "a.png", (0, 0, 0, 255))
    with pytest.raises(ValueError, match="at least 2 classes"):
        scan_image_folder(tmp_path)


def test_scan_rejects_empty_class_folder(tmp_path: Path) -> None:
    _png(tmp_path / "full" / "a.png", (0, 0, 0, 255))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        scan_image_folder(tmp_path)


# --- thumbnails -------------------------------------------------------------------------------


def test_thumbnail_crops_cutout_flattens_and_pads_with_white() -> None:
    canvas = Image.new("RGBA", (300, 300), (0, 0, 255, 0))  # transparent blue: must vanish
    canvas.paste(Image.new("RGBA", (100, 50), (255, 0, 0, 255)), (20, 200))
    thumb = fit_thumbnail(canvas, 192)
    assert thumb.size == (192, 192) and thumb.mode == "RGB"
    assert thumb.getpixel((2, 96)) == (255, 0, 0)  # cropped: the red bar spans the full width
    assert thumb.getpixel((96, 2)) == (255, 255, 255)  # 2:1 aspect kept: padded above
    assert thumb.getpixel((96, 189)) == (255, 255, 255)  # ... and below


# --- folder import ----------------------------------------------------------------------------


@pytest.fixture()
def source_folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for c, cls in enumerate(["ant", "bee", "cow"]):
        for i in range(6):
            _png(src / cls / f"img{i}.png", (40 * c, 30 * i, 100, 255), (30 + i, 20))
    _png(src / "dodo" / "only.png", (0, 0, 0, 255))  # too small for 3 per class
    return src


def test_import_image_folder_is_deterministic(source_folder: Path, tmp_path: Path) -> None:
    first = import_image_folder(source_folder, tmp_path / "a", n_classes=2, n_per_class=3)
    again = import_image_folder(source_folder, tmp_path / "b", n_classes=2, n_per_class=3)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert len(first.classes) == 2 and "dodo" not in first.classes
    assert np.bincount(first.labels).tolist() == [3, 3]
    assert again.classes == first.classes
    with Image.open(first.paths[0]) as image:
        assert (image.format, image.size) == ("JPEG", (192, 192))


def test_import_image_folder_seed_changes_the_sample(source_folder: Path, tmp_path: Path) -> None:
    import_image_folder(source_folder, tmp_path / "a", n_classes=2, n_per_class=3, seed=0)
    import_image_folder(source_folder, tmp_path / "b", n_classes=2, n_per_class=3, seed=1)
    assert _tree(tmp_path / "a").keys() != _tree(tmp_path / "b").keys()


def test_import_image_folder_all_classes_must_be_big_enough(
    source_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="dodo"):
        import_image_folder(source_folder, tmp_path / "out", n_classes=None, n_per_class=3)


def test_import_image_folder_rejects_impossible_request(
    source_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="only 3 of 4 classes"):
        import_image_folder(source_folder, tmp_path / "out", n_classes=4, n_per_class=3)


def test_import_image_folder_refuses_non_empty_destination(
    source_folder: Path, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        import_image_folder(source_folder, tmp_path / "out", n_classes=2, n_per_class=3)


# --- Hub (parquet) import ---------------------------------------------------------------------

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _write_parquet(path: Path, labels: list, names: list[str] | None = None) -> None:
    """A `datasets`-style file: image structs of PNG bytes, labels, optional ClassLabel names."""
    images = [{"bytes": _png_bytes(COLORS[i % 3]), "path": f"{i}.png"} for i in range(len(labels))]
    table = pa.table({"image": images, "label": labels})
    if names is not None:
        features = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": names}}
        meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
        table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_import_hub_dataset_uses_class_label_names(tmp_path: Path) -> None:
    labels = [0, 1, 2] * 4  # 4 rows per class
    _write_parquet(tmp_path / "train.parquet", labels, names=["red", "green", "blue"])
    folder = import_hub_dataset(
        "someone/colors",
        tmp_path / "out",
        n_classes=2,
        n_per_class=3,
        parquet_files=[tmp_path / "train.parquet"],
    )
    assert len(folder.classes) == 2 and set(folder.classes) <= {"red", "green", "blue"}
    assert np.bincount(folder.labels).tolist() == [3, 3]
    for path, name in zip(folder.paths, folder.label_names(), strict=True):
        with Image.open(path) as image:  # each image decoded from its own row's bytes
            assert image.size == (192, 192)
            assert image.getpixel((96, 96)) == pytest.approx(
                COLORS[["red", "green", "blue"].index(name)], abs=8
            )


def test_import_hub_dataset_is_deterministic_across_files(tmp_path: Path) -> None:
    files = [tmp_path / "train-0.parquet", tmp_path / "train-1.parquet"]
    _write_parquet(files[0], ["x", "y", "z"] * 2)
    _write_parquet(files[1], ["x", "y", "z"] * 2)
    kwargs = {"n_classes": 3, "n_per_class": 3, "parquet_files": files}
    import_hub_dataset("someone/xyz", tmp_path / "a", **kwargs)
    folder = import_hub_dataset("someone/xyz", tmp_path / "b", **kwargs)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert folder.classes == ["x", "y", "z"]  # string labels become folder names


def test_import_hub_dataset_without_names_uses_class_ids(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "t.parquet", [3, 5] * 2)
    folder = import_hub_dataset(
        "someone/ids",
        tmp_path / "out",
        n_classes=None,
        n_per_class=2,
        parquet_files=[tmp_path / "t.parquet"],
    )
    assert folder.classes == ["class_3", "class_5"]


def test_import_hub_dataset_names_missing_column(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "t.parquet", [0, 1])
    with pytest.raises(ValueError, match="'fine_label'"):
        import_hub_dataset(
            "someone/ids",
            tmp_path / "out",
            label_column="fine_label",
            parquet_files=[tmp_path / "t.parquet"],
        )


def test_import_hub_dataset_downloads_split_and_reads_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snapshot"
    _write_parquet(snapshot / "data" / "train-00000-of-00001.parquet", [0, 1] * 3)
    _write_parquet(snapshot / "data" / "valid-00000-of-00001.parquet", [7, 7, 7])
    (snapshot / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n"
        "  - name: label\n    dtype:\n      class_label:\n        names:\n"
        "          '0': n01443537\n          '1': n01629819\n---\n# Tiny\n"
    )
    calls: list[dict] = []

    def fake_snapshot_download(repo_id: str, **kwargs: object) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    folder = import_hub_dataset(
        "zh-plus/tiny-imagenet", tmp_path / "out", n_classes=2, n_per_class=3
    )
    assert folder.classes == ["n01443537", "n01629819"]  # the valid split was not read
    assert calls[0]["repo_type"] == "dataset" and "README.md" in calls[0]["allow_patterns"]

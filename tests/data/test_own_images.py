"""A visitor's zip or image files made into a dataset: layouts, limits and hostile archives."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convenet.data.own_images import NO_CLASS, STORED_SIZE, Limits, UploadRefused, ingest
from convenet.paths import PRECOMPUTED_DIR

pytestmark = pytest.mark.quick

STAMPS = PRECOMPUTED_DIR / "stamps200" / "images"
LIMITS = Limits(
    max_images=30,
    max_total_bytes=2 << 20,
    max_file_bytes=1 << 20,
    max_entries=60,
    max_ratio=50,
    min_images=1,  # the minimum has a test of its own
)


def stamps(n_classes: int, per_class: int) -> list[tuple[str, bytes]]:
    """(class, JPEG bytes) of real stamps200 images."""
    classes = sorted(STAMPS.iterdir())[:n_classes]
    return [(c.name, p.read_bytes()) for c in classes for p in sorted(c.glob("*.jpg"))[:per_class]]


def make_zip(path: Path, entries: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def noise_png(side: int, seed: int = 0) -> bytes:
    """A PNG that does not compress: its size is about side * side * 3 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_a_zipped_folder_of_class_folders_is_a_labelled_set(tmp_path: Path) -> None:
    entries = {f"photos/{c}/{i}.jpg": data for i, (c, data) in enumerate(stamps(3, 4))}
    made = ingest([(make_zip(tmp_path / "a.zip", entries), "a.zip")], tmp_path / "out", LIMITS)
    assert made.labelled and not made.skipped and made.message() == ""
    assert made.folder.classes == ["birds", "coins", "flowers"]  # "photos" is not a class
    assert np.bincount(made.folder.labels).tolist() == [4, 4, 4]
    with Image.open(made.folder.paths[0]) as image:  # re-encoded pixels, not the upload
        assert image.format == "JPEG" and image.size == (STORED_SIZE, STORED_SIZE)


def test_a_flat_zip_and_loose_files_are_unlabelled(tmp_path: Path) -> None:
    data = [d for _, d in stamps(2, 3)]
    flat = make_zip(tmp_path / "flat.zip", {f"{i}.jpg": d for i, d in enumerate(data)})
    made = ingest([(flat, "flat.zip")], tmp_path / "one", LIMITS)
    assert not made.labelled and made.folder.classes == [NO_CLASS] and len(made.folder) == 6
    loose = []
    for i, d in enumerate(data[:3]):
        (tmp_path / f"p{i}.jpg").write_bytes(d)
        loose.append((tmp_path / f"p{i}.jpg", f"p{i}.jpg"))
    made = ingest(loose, tmp_path / "two", LIMITS)
    assert not made.labelled and len(made.folder) == 3


def test_hostile_entries_are_skipped_by_name_and_nothing_lands_outside(tmp_path: Path) -> None:
    good = {f"set/{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(2, 3))}
    hostile = {
        "../escape.jpg": good["set/birds/0.jpg"],
        "/etc/absolute.jpg": good["set/birds/0.jpg"],
        "set/birds/..\\win.jpg": good["set/birds/0.jpg"],
        "set/birds/inner.zip": b"PK\x05\x06" + bytes(18),
        "set/birds/notes.txt": b"not an image",
        "set/birds/broken.jpg": b"\xff\xd8\xff\xe0 truncated",
        "set/birds/big.png": noise_png(640),  # about 1.2 MB: over the 1 MB per image
        "set/birds/bomb.png": bytes(900_000),  # zeros: compressed about 1000x
        "set/.hidden.jpg": b"junk",
        "__MACOSX/set/._x.jpg": b"junk",
    }
    archive = make_zip(
        tmp_path / "h.zip", {**good, **hostile}, {"set/coins/link.jpg": "/etc/passwd"}
    )
    before = files_under(tmp_path)
    made = ingest([(archive, "h.zip")], tmp_path / "out", LIMITS)
    assert made.labelled and len(made.folder) == 6
    reasons = dict(item.rsplit(" (", 1) for item in made.skipped)
    assert reasons["../escape.jpg"] == "unsafe name)"
    assert reasons["/etc/absolute.jpg"] == "unsafe name)"
    assert reasons["set/birds/..\\win.jpg"] == "unsafe name)"
    assert reasons["set/birds/inner.zip"] == "an archive inside the archive)"
    assert reasons["set/birds/notes.txt"] == "not an image)"
    assert reasons["set/birds/broken.jpg"] == "not a readable image)"
    assert reasons["set/birds/big.png"] == "over 1 MB)"
    assert reasons["set/birds/bomb.png"].startswith("compressed 50x or more")
    assert reasons["set/coins/link.jpg"] == "a link)"
    assert len(made.skipped) == 9  # hidden files and __MACOSX are not listed
    assert made.message().startswith("Skipped 9: ") and "and 1 more" in made.message()
    written = files_under(tmp_path) - before
    assert written and all(p.is_relative_to(tmp_path / "out") for p in written)


def test_limits_on_count_total_and_entries(tmp_path: Path) -> None:
    many = {f"s/{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(2, 20))}  # 40 > 30 images
    made = ingest([(make_zip(tmp_path / "m.zip", many), "m.zip")], tmp_path / "m", LIMITS)
    assert len(made.folder) == 30 and sum("over 30 images" in s for s in made.skipped) == 10
    heavy = {f"{i}.png": noise_png(420, i) for i in (1, 2, 3)}  # about 0.5 MB each
    heavy_zip = make_zip(tmp_path / "t.zip", heavy)
    made = ingest(
        [(heavy_zip, "t.zip")],
        tmp_path / "t",
        Limits(**{**vars(LIMITS), "max_total_bytes": 1 << 20}),
    )
    assert len(made.folder) == 1 and all("over 1 MB in all" in s for s in made.skipped)
    crowded = make_zip(tmp_path / "c.zip", {f"{i}.txt": b"" for i in range(61)})
    with pytest.raises(UploadRefused, match="61 entries, more than the 60"):
        ingest([(crowded, "c.zip")], tmp_path / "c", LIMITS)


def test_nothing_usable_is_one_clear_refusal(tmp_path: Path) -> None:
    bad = make_zip(tmp_path / "b.zip", {"a.txt": b"x", "b.jpg": b"not a jpeg"})
    with pytest.raises(UploadRefused, match=r"no usable image was found \(a\.txt \(not an image\)"):
        ingest([(bad, "b.zip")], tmp_path / "b", LIMITS)
    few = make_zip(tmp_path / "f.zip", {f"{i}.jpg": d for i, (_, d) in enumerate(stamps(2, 5))})
    with pytest.raises(UploadRefused, match="at least 11 images; only 10 usable images were"):
        ingest([(few, "f.zip")], tmp_path / "f", Limits(**{**vars(LIMITS), "min_images": 11}))
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(UploadRefused, match="use .zip"):
        ingest([(tmp_path / "x.tar.gz", "x.tar.gz")], tmp_path / "x", LIMITS)


def test_a_class_of_one_image_makes_the_set_unlabelled(tmp_path: Path) -> None:
    images = stamps(2, 3)
    entries = {f"{c}/{i}.jpg": d for i, (c, d) in enumerate(images[:4])}  # birds 3, coins 1
    made = ingest([(make_zip(tmp_path / "u.zip", entries), "u.zip")], tmp_path / "u", LIMITS)
    assert not made.labelled and len(made.folder) == 4 and made.folder.classes == [NO_CLASS]

"""A visitor's own images (a .zip or image files) made into a dataset folder, defensively.

Everything here is hostile until proven otherwise: a zip is read member by member from its
central directory (never ``extractall``), each entry's name, type, size and compression ratio
are checked before a byte of it is read, reading stops at the declared size, and every image is
decoded within the app's memory budget and written back as a fresh JPEG under a name we choose.
So nothing is ever written outside ``dest``, and what lands there is pixels, not the uploaded
bytes. A zip with one sub-folder per class gives a labelled set; anything else is unlabelled.
"""

from __future__ import annotations

import functools
import stat
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from convenet.data.datasets import IMAGE_EXTENSIONS, ImageFolder, safe_name, scan_image_folder
from convenet.data.images import load_image
from convenet.errors import ImageLoadError
from convenet.settings import SETTINGS, Settings

# Square side of the stored images: the largest model input, so no model sees less than the
# upload gave (each model crops the centre square and resizes, as for any image).
STORED_SIZE = 299
NO_CLASS = "no class"  # the one folder of an unlabelled set (a caption under each image)
ARCHIVES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst"})
MB = 1024 * 1024
MIN_IMAGES = 11  # a query and the 10 others that precision@10 ranks


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one upload may hold (``CONVENET_OWN_*``)."""

    max_images: int
    max_total_bytes: int
    max_file_bytes: int
    max_entries: int
    max_ratio: int
    min_images: int = MIN_IMAGES

    @classmethod
    def from_settings(cls, settings: Settings = SETTINGS) -> Limits:
        return cls(
            max_images=settings.own_max_images,
            max_total_bytes=settings.own_max_total_mb * MB,
            max_file_bytes=settings.own_max_file_mb * MB,
            max_entries=settings.own_max_entries,
            max_ratio=settings.own_max_ratio,
        )


class UploadRefused(ValueError):
    """The upload as a whole cannot be used; the message says why in one sentence."""


@dataclass
class Ingested:
    """The dataset folder made, whether it has classes, and what was left out (and why)."""

    folder: ImageFolder
    labelled: bool
    skipped: list[str] = field(default_factory=list)

    def message(self, limit: int = 8) -> str:
        """One sentence naming what was skipped (the first few, then how many more)."""
        if not self.skipped:
            return ""
        shown = "; ".join(self.skipped[:limit])
        more = len(self.skipped) - limit
        tail = f"; and {more} more" if more > 0 else ""
        return f"Skipped {len(self.skipped)}: {shown}{tail}."


@dataclass(frozen=True)
class _Item:
    """One candidate image: where it came from (for messages) and its path inside the upload."""

    label: str
    parts: tuple[str, ...]
    read: Callable[[], bytes]  # reads at most the declared size


def _unsafe(name: str) -> bool:
    """Absolute paths, drive letters, backslashes, ``..`` and empty parts are never followed."""
    if name.startswith("/") or "\\" in name or "\0" in name or (len(name) > 1 and name[1] == ":"):
        return True
    parts = PurePosixPath(name).parts
    return any(part in ("..", ".") for part in parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """The entry's bytes, reading no more than ``cap`` whatever its header claims."""
    with archive.open(info) as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ImageLoadError(f"{info.filename}: larger than its header says")
    return data


def _zip_items(
    archive: zipfile.ZipFile, label: str, limits: Limits, skipped: list[str]
) -> Iterator[tuple[_Item, int]]:
    """Candidate images of a zip with their declared sizes; everything else goes to ``skipped``."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise UploadRefused(
            f"{label} has {len(entries)} entries, more than the {limits.max_entries} "
            "this app opens."
        )
    for info in entries:
        name = info.filename
        shown = name[:80]
        if info.is_dir():
            continue
        if _unsafe(name):
            skipped.append(f"{shown} (unsafe name)")
        elif _is_symlink(info):
            skipped.append(f"{shown} (a link)")
        elif PurePosixPath(name).suffix.lower() in ARCHIVES:
            skipped.append(f"{shown} (an archive inside the archive)")
        elif info.flag_bits & 0x1:
            skipped.append(f"{shown} (encrypted)")
        elif _hidden(name):
            continue  # __MACOSX/ and dot files: not the visitor's images
        elif PurePosixPath(name).suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(f"{shown} (not an image)")
        elif info.file_size > limits.max_file_bytes:
            skipped.append(f"{shown} (over {limits.max_file_bytes // MB} MB)")
        elif info.file_size > limits.max_ratio * max(info.compress_size, 1):
            skipped.append(f"{shown} (compressed {limits.max_ratio}x or more: a zip bomb?)")
        else:
            read = functools.partial(_read_member, archive, info, info.file_size)
            yield _Item(shown, PurePosixPath(name).parts, read), info.file_size


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def _file_item(path: Path, label: str) -> _Item:
    return _Item(label[:80], (label,), path.read_bytes)


def _class_of(parts: tuple[str, ...], depth: int) -> str | None:
    """The class folder of an entry: its folder at ``depth``, or None for a top-level file."""
    return parts[depth] if len(parts) > depth + 1 else None


def _common_depth(items: Sequence[_Item]) -> int:
    """Folders shared by every entry (a zipped folder "photos/cats/x.jpg") are not classes."""
    depth = 0
    while items and all(len(i.parts) > depth + 2 for i in items):
        if len({i.parts[depth] for i in items}) != 1:
            break
        depth += 1
    return depth


def ingest(
    sources: Sequence[tuple[Path, str]], dest: Path, limits: Limits | None = None
) -> Ingested:
    """Turn uploaded files ((path, name shown to the visitor) pairs) into a dataset under
    ``dest``: ``dest/<class>/<NNN>_<name>.jpg``, or ``dest/no_class/...`` when unlabelled.

    Raises UploadRefused when nothing usable is left; otherwise lists what was skipped.
    """
    limits = limits or Limits.from_settings()
    with ExitStack() as archives:
        return _ingest(sources, dest, limits, archives)


def _open_zip(path: Path, label: str, archives: ExitStack) -> zipfile.ZipFile:
    try:
        return archives.enter_context(zipfile.ZipFile(path))
    except (zipfile.BadZipFile, OSError):
        raise UploadRefused(f"{label} is not a readable .zip file.") from None


def _ingest(
    sources: Sequence[tuple[Path, str]], dest: Path, limits: Limits, archives: ExitStack
) -> Ingested:
    skipped: list[str] = []
    items: list[tuple[_Item, int]] = []
    for path, label in sources:
        if zipfile.is_zipfile(path):
            items += _zip_items(_open_zip(path, label, archives), label, limits, skipped)
        elif Path(label).suffix.lower() in ARCHIVES:
            skipped.append(f"{label[:80]} (an archive this app does not open; use .zip)")
        else:
            size = path.stat().st_size
            if size > limits.max_file_bytes:
                skipped.append(f"{label[:80]} (over {limits.max_file_bytes // MB} MB)")
            else:
                items.append((_file_item(path, Path(label).name or "image"), size))
    depth = _common_depth([item for item, _ in items])
    classes = [_class_of(item.parts, depth) for item, _ in items]
    labelled = None not in classes and len(set(classes)) >= 2
    total = kept = 0
    counters: dict[str, int] = {}
    for (item, size), cls in zip(items, classes, strict=True):
        if kept >= limits.max_images:
            skipped.append(f"{item.label} (over {limits.max_images} images)")
            continue
        if total + size > limits.max_total_bytes:
            skipped.append(f"{item.label} (over {limits.max_total_bytes // MB} MB in all)")
            continue
        try:
            pixels = load_image(item.read(), STORED_SIZE)
        except (ImageLoadError, OSError):
            skipped.append(f"{item.label} (not a readable image)")
            continue
        folder = safe_or(cls, NO_CLASS) if labelled else NO_CLASS
        number = counters.get(folder, 0)
        counters[folder] = number + 1
        stem = safe_or(PurePosixPath(item.parts[-1]).stem, "image")[:40]
        target = dest / folder / f"{number:03d}_{stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, "JPEG", quality=90)
        total += size
        kept += 1
    if kept < limits.min_images:
        detail = f" ({'; '.join(skipped[:3])})" if skipped else ""
        found = f"only {kept} usable images were found" if kept else "no usable image was found"
        raise UploadRefused(
            f"A dataset needs at least {limits.min_images} images; {found}{detail}."
        )
    if labelled and any(count < 2 for count in counters.values()):
        labelled = False  # a class of one image has nothing to match: search it unlabelled
        _merge_into_one_folder(dest)
    folder = scan_image_folder(dest, 2 if labelled else 1)
    return Ingested(folder, labelled, skipped)


def safe_or(text: str | None, fallback: str) -> str:
    try:
        return safe_name(text or "")
    except ValueError:
        return fallback


def _merge_into_one_folder(dest: Path) -> None:
    """Move every class folder's images into ``no_class`` (names stay unique: class prefix)."""
    target = dest / NO_CLASS
    target.mkdir(exist_ok=True)
    for class_dir in [p for p in dest.iterdir() if p.is_dir() and p != target]:
        for image in class_dir.iterdir():
            image.rename(target / f"{class_dir.name}_{image.name}")
        class_dir.rmdir()

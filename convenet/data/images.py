"""Turn whatever image file a user has into the RGB array a CNN expects.

Resize choice: shorter side to the model's input size with bicubic filtering, then a centre
crop. That is how ImageNet models are evaluated, so their weights see familiar statistics; the
shipped datasets are square thumbnails, for which it is a plain resize.
"""

from __future__ import annotations

import io
import threading
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from convenet.errors import ImageLoadError
from convenet.memory import give_back_memory
from convenet.settings import SETTINGS

# Anything above this many pixels is treated as a decompression bomb (Pillow's default warns
# at ~89M and errors at twice that); 80M still admits a 20000 x 4000 panorama.
MAX_PIXELS = 80_000_000
# Said when Pillow refuses a picture whose pixel count would fill the memory when decoded.
TOO_MANY_PIXELS = (
    f"the picture has too many pixels for this app (over {MAX_PIXELS // 1_000_000} million); "
    "please use a smaller one"
)
# Upload size cap: no sensible photo is larger, and it bounds memory per request.
MAX_FILE_BYTES = SETTINGS.max_file_mb * 1024 * 1024
# Memory a decode may take, computed from the header before any pixel is read: a small file can
# promise gigabytes (a 150 KB 16-bit PNG of 8900x8900 decodes to 158 MB, then grows in copies).
MAX_DECODED_BYTES = SETTINGS.max_decoded_mb * 1024 * 1024
# Decodes bigger than this wait for one of a few slots, so many at once cannot add up.
HEAVY_DECODE_BYTES = 16 * 1024 * 1024
_HEAVY_DECODES = threading.BoundedSemaphore(SETTINGS.heavy_decodes)
# Bytes per sample of each Pillow mode after decoding (bands x bytes).
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "PA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 4,
    "CMYK": 4,
    "La": 2,
    "I": 4,
    "F": 4,
    "I;16": 2,
    "I;16L": 2,
    "I;16B": 2,
    "I;16N": 2,
}

ImageSource = str | Path | bytes | Image.Image


def _describe(source: ImageSource) -> str:
    if isinstance(source, str | Path):
        return Path(source).name
    return "the uploaded image"


def _open(source: ImageSource, label: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"{label}: no such file")
        size = path.stat().st_size
        data_source: str | Path | io.BytesIO = path
    else:
        size = len(source)
        data_source = io.BytesIO(source)
    if size == 0:
        raise ImageLoadError(f"{label}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise ImageLoadError(
            f"{label}: {size / 2**20:.0f} MB is over the {MAX_FILE_BYTES >> 20} MB limit"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked next
            image = Image.open(data_source)
    except Image.DecompressionBombError:
        raise ImageLoadError(f"{label}: {TOO_MANY_PIXELS}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: not an image file this app can read") from None
    except OSError:
        raise ImageLoadError(f"{label}: the file cannot be read as an image") from None
    return image


def _check_pixels(image: Image.Image, label: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"{label}: {width}x{height} pixels is too large "
            f"(limit {MAX_PIXELS // 1_000_000}M pixels)"
        )


def decoded_bytes(image: Image.Image, size: int | None = None) -> int:
    """Bytes the decoded first frame will hold, from the header alone (JPEG: after draft)."""
    width, height = image.size
    if size is not None and image.format == "JPEG":
        scale = 1
        while scale < 8 and min(width, height) // (scale * 2) >= size * 2:
            scale *= 2  # what Image.draft will pick: a power-of-two reduction while decoding
        width, height = -(-width // scale), -(-height // scale)
    return width * height * _MODE_BYTES.get(image.mode, 4)


def _check_decoded_size(image: Image.Image, label: str, size: int | None) -> int:
    needed = decoded_bytes(image, size)
    if needed > MAX_DECODED_BYTES:
        width, height = image.size
        raise ImageLoadError(
            f"{label}: {width}x{height} pixels in mode {image.mode} would take "
            f"{needed / 2**20:.0f} MB to decode, over the {MAX_DECODED_BYTES >> 20} MB limit; "
            "please send a smaller image"
        )
    return needed


def check_image_file(path: Path, label: str | None = None) -> None:
    """Refuse, from its header alone, a file that is not an image or would decode too big.

    The app's edge runs this on every upload before anything decodes a pixel.
    """
    label = label or _describe(path)
    with _open(path, label) as image:
        _check_pixels(image, label)
        _check_decoded_size(image, label, None)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB: transparency flattened onto white, 16-bit scaled, CMYK converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image)
        if array.max() > 255:  # 16-bit samples: keep the high byte, in the array's own dtype
            array = np.clip(array >> 8, 0, 255)
        image = Image.fromarray(array.astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float32)
        span = float(array.max() - array.min()) or 1.0
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8), "L")
    return flatten_onto_white(image)


def has_transparency(image: Image.Image) -> bool:
    """An alpha channel, or a palette / colour key that marks pixels transparent."""
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def flatten_onto_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white, as a page shows it (the one place)."""
    if not has_transparency(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _box_mean_16bit(image: Image.Image, factor: int) -> Image.Image:
    """Pillow cannot reduce 16-bit images: average factor x factor blocks in numpy instead."""
    array = np.asarray(image)
    rows, cols = array.shape[0] // factor, array.shape[1] // factor
    tall = array[: rows * factor].reshape(rows, factor, -1).mean(axis=1, dtype=np.float32)
    small = tall[:, : cols * factor].reshape(rows, cols, factor).mean(axis=2)
    return Image.fromarray(small.astype(np.int32), "I")


def _shrink(image: Image.Image, size: int) -> Image.Image:
    """Reduce a much larger image by whole blocks before any mode conversion multiplies it.

    The result keeps at least twice the model's input size, so the final resize is unchanged
    in quality; memory and time then scale with the output, not the upload.
    """
    factor = min(image.size) // (size * 2)
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        return _box_mean_16bit(image, factor)
    if image.mode in ("P", "1"):  # indices cannot be averaged: sample them
        width, height = image.size
        return image.resize((width // factor, height // factor), Image.Resampling.NEAREST)
    return image.reduce(factor)


def _centre_square(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size``, centre crop; reducing_gap makes big downscales fast."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    box = (left, top, left + side, top + side)
    return image.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)


def load_image(source: ImageSource, size: int | None = None) -> np.ndarray:
    """Decode ``source`` to an RGB uint8 array (H, W, 3), optionally resized to ``size`` square.

    Raises ImageLoadError naming the file for anything that is not a sane image.
    """
    label = _describe(source)
    image = _open(source, label)
    _check_pixels(image, label)
    needed = _check_decoded_size(image, label, size)
    heavy = needed > HEAVY_DECODE_BYTES
    try:
        with _HEAVY_DECODES if heavy else nullcontext(), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if size is not None and image.format == "JPEG":
                image.draft("RGB", (size * 2, size * 2))  # decode big JPEGs at reduced scale
            image = ImageOps.exif_transpose(image)  # animated files: the first frame
            image.load()
            rgb = _to_rgb(image if size is None else _shrink(image, size))
            if size is not None:
                rgb = _centre_square(rgb, size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(f"{label}: {TOO_MANY_PIXELS}") from None
    except (OSError, SyntaxError, ValueError):
        raise ImageLoadError(f"{label}: the image is broken or truncated") from None
    finally:
        image.close()
    pixels = np.asarray(rgb, dtype=np.uint8)
    if heavy:
        del image, rgb
        give_back_memory()
    return pixels


def load_batch(sources: list[ImageSource], size: int) -> np.ndarray:
    """Several images as one float32 batch (N, size, size, 3) in 0..255."""
    return np.stack([load_image(source, size) for source in sources]).astype(np.float32)


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never half an image
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

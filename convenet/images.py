"""Turn whatever image file a user has into the RGB array a CNN expects.

Resize choice: shorter side to the model's input size with bicubic filtering, then a centre
crop. That is how ImageNet models are evaluated, so their weights see familiar statistics; the
shipped datasets are square thumbnails, for which it is a plain resize.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Anything above this many pixels is treated as a decompression bomb (Pillow's default warns
# at ~89M and errors at twice that); 80M still admits a 20000 x 4000 panorama.
MAX_PIXELS = 80_000_000
# Upload size cap: no sensible photo is larger, and it bounds memory per request.
MAX_FILE_BYTES = 40 * 1024 * 1024

ImageSource = str | Path | bytes | Image.Image


class ImageLoadError(ValueError):
    """An input that is not a readable, reasonably sized image; the message names it."""


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
        raise ImageLoadError(f"{label}: too many pixels (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: not an image file Pillow can read") from None
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot be read ({exc})") from None
    return image


def _check_pixels(image: Image.Image, label: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageLoadError(
            f"{label}: {width}x{height} pixels is too large "
            f"(limit {MAX_PIXELS // 1_000_000}M pixels)"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB: transparency flattened onto white, 16-bit scaled, CMYK converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        span = float(array.max() - array.min()) or 1.0
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if size is not None and image.format == "JPEG":
                image.draft("RGB", (size * 2, size * 2))  # decode big JPEGs at reduced scale
            image = ImageOps.exif_transpose(image)  # animated files: the first frame
            image.load()
            rgb = _to_rgb(image)
            if size is not None:
                rgb = _centre_square(rgb, size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(f"{label}: too many pixels (decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{label}: broken or truncated image ({exc})") from None
    return np.asarray(rgb, dtype=np.uint8)


def load_batch(sources: list[ImageSource], size: int) -> np.ndarray:
    """Several images as one float32 batch (N, size, size, 3) in 0..255."""
    return np.stack([load_image(source, size) for source in sources]).astype(np.float32)


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never half an image
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

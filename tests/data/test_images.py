"""Every kind of file a user may upload either loads correctly or fails with a clear error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convenet.data.datasets import flatten as dataset_flatten
from convenet.data.images import (
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    ImageLoadError,
    check_image_file,
    decoded_bytes,
    flatten_onto_white,
    load_batch,
    load_image,
)

pytestmark = pytest.mark.quick


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_rgb_photo_is_resized_by_centre_crop(photo_file: Path, photo: np.ndarray) -> None:
    out = load_image(photo_file, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    # The centre of the photo survives the crop: compare mean colour of the middle.
    h, w = photo.shape[:2]
    middle = photo[:, (w - h) // 2 : (w + h) // 2].mean(axis=(0, 1))
    assert np.allclose(out.mean(axis=(0, 1)), middle, atol=6)


def test_no_resize_keeps_size(photo_file: Path, photo: np.ndarray) -> None:
    assert load_image(photo_file).shape == photo.shape


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "1"])
def test_modes_become_rgb(tmp_path: Path, photo: np.ndarray, mode: str) -> None:
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    path = save(Image.fromarray(photo).convert(mode), tmp_path / f"x.{fmt.lower()}", format=fmt)
    out = load_image(path, 64)
    assert out.shape == (64, 64, 3)
    if mode == "L":
        assert np.array_equal(out[..., 0], out[..., 1])


def test_rgba_transparency_flattens_onto_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:10, :, :] = (255, 0, 0, 255)  # top half opaque red, bottom half fully transparent
    path = save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")
    out = load_image(path)
    assert tuple(out[2, 2]) == (255, 0, 0)
    assert tuple(out[15, 15]) == (255, 255, 255)


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.info["transparency"] = 1
    path = save(image, tmp_path / "p.png", transparency=1)
    assert tuple(load_image(path)[0, 0]) == (255, 255, 255)


def test_colour_key_and_half_alpha_flatten_like_a_page(tmp_path: Path) -> None:
    """One flattening for uploads and dataset thumbnails: alpha-weighted mix with white."""
    keyed = Image.new("RGB", (4, 4), (10, 20, 30))
    path = save(keyed, tmp_path / "k.png", transparency=(10, 20, 30))  # a tRNS colour key
    assert tuple(load_image(path)[0, 0]) == (255, 255, 255)
    half = Image.new("RGBA", (2, 2), (0, 0, 255, 51))  # 20% opaque blue
    assert flatten_onto_white(half).getpixel((0, 0)) == (204, 204, 255)  # 0.8*255, 0.2*255+0.8*255
    crop = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    crop.paste(Image.new("RGBA", (2, 3), (0, 0, 255, 51)), (4, 4))
    flat = dataset_flatten(crop)  # cropped to the visible pixels, then the same flattening
    assert flat.size == (2, 3) and flat.getpixel((1, 2)) == (204, 204, 255)


def test_16_bit_png_is_scaled(tmp_path: Path) -> None:
    array = np.full((10, 10), 65535, np.uint16)
    array[0, 0] = 0
    path = save(Image.fromarray(array), tmp_path / "deep.png")
    out = load_image(path)
    assert out[5, 5, 0] == 255 and out[0, 0, 0] == 0


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    wide = Image.new("RGB", (40, 20), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = save(wide, tmp_path / "rot.jpg", exif=exif)
    assert load_image(path).shape[:2] == (40, 20)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = load_image(path)
    assert out[8, 8, 0] > 200 and out[8, 8, 1] < 60


def test_tiny_and_panorama_images(tmp_path: Path) -> None:
    tiny = save(Image.new("RGB", (1, 1), "white"), tmp_path / "tiny.png")
    assert load_image(tiny, 224).shape == (224, 224, 3)
    pano = save(Image.new("RGB", (12000, 800), "green"), tmp_path / "pano.jpg", quality=50)
    assert load_image(pano, 224).shape == (224, 224, 3)


def test_bytes_and_batch(photo_file: Path) -> None:
    out = load_image(photo_file.read_bytes(), 32)
    assert out.shape == (32, 32, 3)
    batch = load_batch([photo_file, photo_file], 32)
    assert batch.shape == (2, 32, 32, 3) and batch.dtype == np.float32


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty.jpg: the file is empty"):
        load_image(path)


def test_text_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    with pytest.raises(ImageLoadError, match="notes.jpg: not an image"):
        load_image(path)


def test_truncated_jpeg(tmp_path: Path, photo_file: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(photo_file.read_bytes()[:3000])
    with pytest.raises(ImageLoadError, match="cut.jpg: the image is broken or truncated$"):
        load_image(path)


def test_decompression_bomb(tmp_path: Path) -> None:
    side = int(MAX_PIXELS**0.5) + 100
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # tiny file, huge image
    path = tmp_path / "bomb.png"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ImageLoadError, match="bomb.png: .*too large"):
        load_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="nope.png: no such file"):
        load_image(tmp_path / "nope.png")


def test_upload_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import convenet.data.images as images

    path = save(Image.new("RGB", (64, 64), "red"), tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageLoadError, match="big.png: .* over the .* limit"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="the uploaded image: .* over the"):
        load_image(path.read_bytes())


def test_16_bit_png_over_the_decode_budget_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 16-bit PNG under the pixel cap but over the decoded-bytes budget never decodes."""
    side = int((MAX_DECODED_BYTES / 2) ** 0.5) + 64
    path = save(Image.new("I;16", (side, side)), tmp_path / "deep.png")
    assert path.stat().st_size < 2 * 2**20 and side * side < MAX_PIXELS
    for check in (check_image_file, load_image):
        with pytest.raises(ImageLoadError, match=r"deep.png: .* MB to decode, over the"):
            check(path)


def test_jpeg_budget_counts_the_reduced_decode(tmp_path: Path) -> None:
    """A large JPEG decoded for a 224 px model is drafted at 1/8 scale, so it is allowed."""
    path = save(Image.new("RGB", (8000, 6000), "blue"), tmp_path / "big.jpg", quality=50)
    with Image.open(path) as image:
        assert decoded_bytes(image) == 8000 * 6000 * 3
        assert decoded_bytes(image, 224) == 1000 * 750 * 3
    assert load_image(path, 224).shape == (224, 224, 3)


def test_many_frame_gif_reads_only_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("P", (16, 16), i % 200) for i in range(2000)]
    path = tmp_path / "many.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1)
    check_image_file(path)
    assert load_image(path, 32).shape == (32, 32, 3)

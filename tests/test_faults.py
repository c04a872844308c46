"""Faults: every one gives a clear message and a working fallback, never a crash or a wrong answer.

Network faults (Hub down or silent, weights that cannot download), storage faults (corrupt,
read-only or full cache) and hostile or odd uploads, checked against the real app where the
fault lives in the app, and against the Playground where it lives in the core.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import struct
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from convenet.data import store
from convenet.data.datasets import scan_image_folder
from convenet.data.store import feature_path, read_feature_file, record_in_manifest, verify_file
from convenet.features import shelf
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground
from tests.app_server import AppProcess, app_process

pytestmark = pytest.mark.slow

FELL_BACK = "could not be reached, so the app uses its built-in features"
# Without CAP_DAC_OVERRIDE even root obeys a read-only folder's permission bits.
DROP_ROOT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def client_for(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False)


def status_line(url: str) -> str:
    """The page's feature-source line, as the app's config sends it to the browser."""
    with urllib.request.urlopen(f"{url}config", timeout=10) as response:
        config = json.loads(response.read())
    for component in config["components"]:
        if component.get("props", {}).get("elem_id") == "source-status":
            return component["props"]["value"]
    raise AssertionError("the page has no source-status line")


def assert_serves_searches(client: Client) -> None:
    out = client.predict(query_index=3, k=10, api_name="/search")
    assert len(out["results"]) == 10 and out["query_class"]
    assert all(hit["index"] != 3 for hit in out["results"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the Hub is unreachable ------------------------------------------------------------------


def hub_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    """Hub sync on, pointed at ``endpoint``; the HF cache stays inside the test's folder."""
    return {
        "CONVENET_HUB_OFFLINE": "0",
        "HF_HUB_OFFLINE": "0",
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
    }


def test_hub_refusing_connections_falls_back_to_embedded_features(tmp_path: Path) -> None:
    env = hub_env(f"http://127.0.0.1:{closed_port()}", tmp_path)
    with app_process(tmp_path, timeout=90, extra_env=env) as app:
        assert FELL_BACK in status_line(app.url)
        assert_serves_searches(client_for(app.url))
    assert "Using embedded features" in (tmp_path / "app.log").read_text()


def test_silent_hub_falls_back_within_the_timeout(tmp_path: Path) -> None:
    """A server that accepts and never answers must not hold the app's start (5 s timeout)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        env = hub_env(f"http://127.0.0.1:{silent.getsockname()[1]}", tmp_path)
        with app_process(tmp_path, timeout=90, extra_env=env) as app:
            assert FELL_BACK in status_line(app.url)
            assert_serves_searches(client_for(app.url))
    assert "ReadTimeout" in (tmp_path / "app.log").read_text()


# -- storage: corrupt, full and read-only caches ----------------------------------------------

MODEL = "efficientnet_lite0"


@pytest.fixture()
def small_stamps(tmp_path: Path) -> Path:
    """A feature source holding nine stamps200 images and no features."""
    root = tmp_path / "root"
    for class_dir in sorted((PRECOMPUTED_DIR / "stamps200" / "images").iterdir())[:3]:
        target = root / "stamps200" / "images" / class_dir.name
        target.mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:3]:
            shutil.copy(image, target / image.name)
    return root


def embedded_rows(root: Path, layer: str) -> np.ndarray:
    """The shipped features of the images under ``root``, in the Playground's order."""
    shipped = read_feature_file(feature_path(PRECOMPUTED_DIR, "stamps200", MODEL))
    row = {name: i for i, name in enumerate(shipped.meta["images"])}
    images_dir = root / "stamps200" / "images"
    names = [p.relative_to(images_dir).as_posix() for p in scan_image_folder(images_dir).paths]
    return shipped.features[layer][[row[name] for name in names]].astype(np.float32)


def flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


@pytest.mark.parametrize(
    "damage",
    [flip_middle, lambda data: data[: len(data) // 3], lambda data: b"\x00" * 16 + data[16:]],
    ids=["flipped-bytes", "truncated", "garbled-header"],
)
def test_corrupt_cached_features_are_recomputed_never_served(
    small_stamps: Path,
    tmp_path: Path,
    damage: Callable[[bytes], bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "cache"
    path = feature_path(cache, "stamps200", MODEL)
    path.parent.mkdir(parents=True)
    shutil.copy(feature_path(PRECOMPUTED_DIR, "stamps200", MODEL), path)
    record_in_manifest(cache, path)
    computed: list[str] = []
    real_compute = shelf.compute_folder

    def counting_compute(*args, **kwargs):
        computed.append(args[1])
        return real_compute(*args, **kwargs)

    monkeypatch.setattr("convenet.features.shelf.compute_folder", counting_compute)
    expected = embedded_rows(small_stamps, "top_conv")
    intact = Playground(small_stamps, cache).features("stamps200", MODEL, "top_conv")
    np.testing.assert_array_equal(intact, expected)
    assert computed == []  # the intact copy is served as is

    path.write_bytes(damage(path.read_bytes()))
    relpath = path.relative_to(cache).as_posix()
    assert not verify_file(cache, relpath)
    fresh = Playground(small_stamps, cache).features("stamps200", MODEL, "top_conv")
    assert computed == ["stamps200"]
    assert "failed its checksum" in caplog.text
    np.testing.assert_allclose(fresh, expected, rtol=0.02, atol=0.02)
    assert verify_file(cache, relpath)  # and the cache is whole again


def test_full_disk_serves_computed_features_from_memory(
    small_stamps: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "atomic_write_bytes", disk_full)
    cache = tmp_path / "cache"
    pg = Playground(small_stamps, cache)
    result = pg.search("stamps200", MODEL, "top_conv", "cosine", query_index=0, k=8)
    assert len(result.hits) == 8 and result.query_label
    np.testing.assert_allclose(
        pg.features("stamps200", MODEL, "top_conv"),
        embedded_rows(small_stamps, "top_conv"),
        rtol=0.02,
        atol=0.02,
    )
    assert "keeping them in memory only" in caplog.text and str(cache) in caplog.text
    assert not feature_path(cache, "stamps200", MODEL).exists()


@pytest.fixture(scope="module")
def read_only_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    base = tmp_path_factory.mktemp("read-only")
    cache = base / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    wrapper = DROP_ROOT_OVERRIDE if os.geteuid() == 0 else []
    if wrapper and not shutil.which(wrapper[0]):
        pytest.skip("running as root without setpriv: a read-only folder cannot be simulated")
    try:
        with app_process(base, extra_env={"CONVENET_CACHE": str(cache)}, wrapper=wrapper) as app:
            yield app
    finally:
        cache.chmod(0o755)


def test_read_only_cache_still_serves_the_shipped_features(read_only_app: AppProcess) -> None:
    assert_serves_searches(client_for(read_only_app.url))


def test_read_only_cache_still_embeds_uploads(read_only_app: AppProcess, photo_file: Path):
    out = client_for(read_only_app.url).predict(
        query=handle_file(str(photo_file)), k=5, api_name="/search"
    )
    assert len(out["results"]) == 5


# -- weights that cannot be downloaded, and odd uploads: one app for the rest of the module ---


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with no cached Keras weights and every download refused at once (no network)."""
    base = tmp_path_factory.mktemp("faults")
    refused = f"http://127.0.0.1:{closed_port()}"
    env = {
        "KERAS_HOME": str(base / "keras"),
        **{name: refused for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with app_process(base, extra_env=env) as app:
        yield app.url


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return client_for(app_url)


def test_missing_weights_name_the_offline_models(client: Client) -> None:
    with pytest.raises(AppError) as info:
        client.predict(model="vgg16", layer="block5_conv3", query_index=0, api_name="/search")
    message = str(info.value)
    assert "VGG16 could not be downloaded" in message
    assert all(f"EfficientNet-Lite{i}" in message for i in range(3))
    assert "Traceback" not in message
    assert_serves_searches(client)


def bomb_png(path: Path, side: int) -> None:
    """A 1-bit PNG of side x side pixels that is tiny on disk, written without decoding it."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory, photo) -> Path:
    """Every odd file a visitor might upload, beside a plain twin where one is meaningful."""
    folder = tmp_path_factory.mktemp("uploads")
    picture = Image.fromarray(photo)
    picture.save(folder / "photo.jpg", quality=90)
    (folder / "empty.jpg").write_bytes(b"")
    jpeg = (folder / "photo.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    bomb_png(folder / "bomb.png", 20_000)  # 400 M pixels in ~50 kB
    bomb_png(folder / "too_many_pixels.png", 10_000)  # 100 M: over the app's 80 M limit
    picture.resize((1, 1)).save(folder / "one_pixel.png")
    ramp = np.linspace(0, 255, 16_000, dtype=np.uint8)
    panorama = np.stack([np.tile(ramp, (2_000, 1))] * 3, axis=-1)
    panorama[700:1300] = photo[0, 0]  # a band across it, like a horizon
    Image.fromarray(panorama).save(folder / "panorama.jpg", quality=80)
    frames = [picture.convert("P"), picture.rotate(180).convert("P")]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(folder / "first_frame.gif")
    picture.convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    picture.save(folder / "photo.png")
    wide = np.asarray(picture.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(wide).save(folder / "sixteen_bit.png")
    picture.convert("L").save(folder / "gray.png")
    picture.convert("L").convert("RGB").save(folder / "gray_as_rgb.png")
    alpha = Image.linear_gradient("L").resize(picture.size)
    rgba = picture.copy()
    rgba.putalpha(alpha)
    rgba.save(folder / "rgba.png")
    white = Image.new("RGBA", picture.size, (255, 255, 255, 255))
    Image.alpha_composite(white, rgba).convert("RGB").save(folder / "rgba_flattened.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    picture.save(folder / "exif_rotated.png", exif=exif)
    picture.transpose(Image.Transpose.ROTATE_270).save(folder / "upright.png")
    return folder


def search_upload(client: Client, path: Path) -> dict:
    return client.predict(query=handle_file(str(path)), k=5, api_name="/search")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.jpg", "the file is empty"),
        ("truncated.jpg", "the image is broken or truncated"),
        ("bomb.png", "too many pixels"),
        ("too_many_pixels.png", "pixels is too large"),
    ],
)
def test_bad_upload_gives_a_clear_error_and_the_app_keeps_serving(
    client: Client, uploads: Path, name: str, message: str
) -> None:
    with pytest.raises(AppError, match=message) as info:
        search_upload(client, uploads / name)
    assert name.split(".")[0] in str(info.value)  # the message names the file
    assert_serves_searches(client)


@pytest.mark.parametrize(
    ("name", "twin"),
    [
        ("one_pixel.png", None),
        ("panorama.jpg", None),
        ("cmyk.jpg", None),
        ("animated.gif", "first_frame.gif"),
        ("sixteen_bit.png", "gray.png"),
        ("gray.png", "gray_as_rgb.png"),
        ("rgba.png", "rgba_flattened.png"),
        ("exif_rotated.png", "upright.png"),
    ],
)
def test_odd_upload_works_like_its_plain_twin(
    client: Client, uploads: Path, name: str, twin: str | None
) -> None:
    out = search_upload(client, uploads / name)
    similarities = [hit["similarity"] for hit in out["results"]]
    assert len(similarities) == 5 and out["query_class"] is None
    assert similarities == sorted(similarities, reverse=True)
    assert all(0 <= s <= 100 for s in similarities)
    if twin is not None:
        expected = search_upload(client, uploads / twin)
        assert [hit["index"] for hit in out["results"]][:3] == [
            hit["index"] for hit in expected["results"]
        ][:3]
        assert similarities == pytest.approx(
            [hit["similarity"] for hit in expected["results"]], abs=0.5
        )
    assert_serves_searches(client)


def test_cmyk_upload_finds_what_the_photo_finds(client: Client, uploads: Path) -> None:
    """CMYK is converted, not misread as RGB: the two copies share most of their results."""
    photo = [hit["index"] for hit in search_upload(client, uploads / "photo.png")["results"]]
    cmyk = [hit["index"] for hit in search_upload(client, uploads / "cmyk.jpg")["results"]]
    assert len(set(photo) & set(cmyk)) >= 3

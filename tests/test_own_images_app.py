"""'Use your own images' against the real app: a session's dataset, limits, isolation, clean-up.

One app with small limits (so a test can cross each one cheaply) and a short idle timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.app_server import AppProcess, app_process
from tests.data.test_own_images import make_zip, noise_png, stamps
from tests.http_calls import call, request

pytestmark = pytest.mark.slow
IDLE_S = 20
LIMITS_ENV = {
    "CONVENET_OWN_MAX_IMAGES": "70",
    "CONVENET_OWN_MAX_FILE_MB": "1",
    "CONVENET_OWN_MAX_TOTAL_MB": "4",
    "CONVENET_OWN_MAX_ENTRIES": "120",
    "CONVENET_OWN_MAX_RATIO": "50",
    "CONVENET_OWN_IDLE_S": str(IDLE_S),
    "CONVENET_OWN_PER_ADDRESS": "20",  # every session here comes from 127.0.0.1
    "CONVENET_TEMP_TTL_S": "20",  # the uploaded zips themselves go too
    "CONVENET_TEMP_SWEEP_S": "2",
}


@pytest.fixture(scope="module")
def own_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("own")


@pytest.fixture(scope="module")
def app_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("own-app")


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder on "this machine", served with CONVENET_IMAGES (app.py --images on a Space)."""
    folder = tmp_path_factory.mktemp("pets")
    for i, (cls, data) in enumerate(stamps(2, 6)):
        (folder / cls).mkdir(exist_ok=True)
        (folder / cls / f"{i}.jpg").write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def app(app_cache: Path, own_dir: Path, pets: Path) -> Iterator[AppProcess]:
    env = {**LIMITS_ENV, "CONVENET_OWN_DIR": str(own_dir), "CONVENET_IMAGES": f"pets={pets}"}
    with app_process(app_cache, extra_env=env) as started:
        yield started


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every upload the tests send, made once."""
    folder = tmp_path_factory.mktemp("zips")
    labelled = {f"trip/{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(3, 20))}
    small = {f"{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(2, 6))}
    hostile = {
        **small,
        "../../escape.jpg": small["birds/0.jpg"],
        "/tmp/absolute.jpg": small["birds/0.jpg"],
        "birds/nested.zip": make_zip(folder / "inner.zip", small).read_bytes(),
        "birds/notes.txt": b"hello",
        "birds/broken.jpg": b"\xff\xd8\xff not really",
        "birds/huge.png": noise_png(640),  # about 1.2 MB: over 1 MB per image
        "birds/bomb.png": bytes(900_000),  # compressed about 1000x
    }
    return {
        "labelled": make_zip(folder / "labelled.zip", labelled),
        "small": make_zip(folder / "small.zip", small),
        "hostile": make_zip(folder / "hostile.zip", hostile, {"coins/link.jpg": "/etc/passwd"}),
        "crowded": make_zip(folder / "crowded.zip", {f"{i}.txt": b"" for i in range(121)}),
        "junk": make_zip(folder / "junk.zip", {"a.txt": b"x", "b.jpg": b"not a jpeg"}),
        "many": make_zip(
            folder / "many.zip", {f"{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(4, 20))}
        ),
        "heavy": make_zip(
            folder / "heavy.zip",
            {**small, **{f"birds/n{i}.png": noise_png(500, i) for i in range(6)}},
        ),
    }


def make_own(client: Client, *files: Path) -> tuple[str, str]:
    """Upload through the page's event; (the new dataset's name, the status sentence)."""
    out = client.predict([handle_file(str(f)) for f in files], api_name="/own_images")
    return out[0]["value"], next(value for value in out if isinstance(value, str))


def still_serving(app: AppProcess) -> None:
    assert (
        call(app.url, "search", ["stamps200", "efficientnet_lite0", "top_conv", "cosine", 3])[0]
        == "complete"
    )


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture()
def client(app: AppProcess) -> Iterator[Client]:
    visitor = Client(app.url, verbose=False)
    yield visitor
    visitor.close()


def test_a_labelled_zip_becomes_this_sessions_dataset(client: Client, zips: dict) -> None:
    name, status = make_own(client, zips["labelled"])
    assert name.startswith("mine-")
    assert "60 images in 3 classes (birds, coins, flowers)" in status
    out = client.predict(dataset=name, query_index=0, k=50, api_name="/search")
    assert len(out["results"]) == 50 and out["query_class"] == "birds"
    assert out["possible"] == 19 and 0.3 < out["p_at_k"] <= 1
    assert out["results"][0]["class"] == "birds" and out["results"][0]["same_class"]
    assert {row["class"] for row in out["results"]} == {"birds", "coins", "flowers"}
    up = client.predict(
        dataset=name, query=handle_file(str(stamps_file(zips))), k=5, api_name="/search"
    )
    assert len(up["results"]) == 5 and up["p_at_k"] is None  # an uploaded query works too


def test_an_own_datasets_channel_page_finds_where_each_channel_fires(
    client: Client, zips: dict
) -> None:
    """No peaks ship for an upload: the first channel page finds them in one pass of the model
    over its images; the page then shows nine of them, cropped, and the spread over all 60."""
    name, _ = make_own(client, zips["labelled"])
    out = client.predict(
        "efficientnet_lite0", "block2b_project_conv", 2, name, api_name="/channel_page"
    )
    items, top_text, spread = out[2], out[3], out[7]
    assert len(items) == 9 and "fires most strongly, each cropped around that spot" in top_text
    assert {item["caption"].split(" · ")[0] for item in items} <= {"birds", "coins", "flowers"}
    with Image.open(items[0]["image"]) as patch:
        assert patch.size == (64, 64)  # a 19-pixel field inside a 64-pixel patch
    assert "each of the 60" in spread


def stamps_file(zips: dict) -> Path:
    path = zips["labelled"].parent / "query.jpg"
    path.write_bytes(stamps(1, 1)[0][1])
    return path


def test_a_served_folder_is_a_dataset_with_features_from_the_start(
    client: Client, app_cache: Path
) -> None:
    from convenet.data.store import read_feature_file

    stored = list(app_cache.glob("features/pets*/features/efficientnet_lite0.safetensors"))
    assert [path.parent.parent.name for path in stored] == ["pets"]  # computed at start
    assert len(read_feature_file(stored[0]).meta["fingerprint"]) == 16  # the folder's content
    out = client.predict(dataset="pets", query_index=0, k=11, api_name="/search")
    assert len(out["results"]) == 11 and out["possible"] == 5 and out["p_at_k"] is not None


def test_hostile_entries_are_skipped_and_listed_in_one_message(
    client: Client, zips: dict, app: AppProcess
) -> None:
    name, status = make_own(client, zips["hostile"])
    assert "12 images in 2 classes" in status
    for skipped in (
        "../../escape.jpg (unsafe name)",
        "/tmp/absolute.jpg (unsafe name)",
        "birds/nested.zip (an archive inside the archive)",
        "birds/notes.txt (not an image)",
        "birds/broken.jpg (not a readable image)",
        "birds/huge.png (over 1 MB)",
        "birds/bomb.png (compressed 50x or more",
        "coins/link.jpg (a link)",
    ):
        assert skipped in status
    assert status.count("Skipped 8:") == 1
    assert not Path("/tmp/absolute.jpg").exists()
    still_serving(app)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ("crowded", "has 121 entries, more than the 120 this app opens"),
        ("junk", "A dataset needs at least 11 images; no usable image was found"),
    ],
)
def test_unusable_archives_are_refused_in_one_sentence(
    client: Client, zips: dict, app: AppProcess, upload: str, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        make_own(client, zips[upload])
    still_serving(app)


def test_count_and_size_limits_keep_what_fits(client: Client, zips: dict) -> None:
    _, status = make_own(client, zips["many"])
    assert "70 images in 4 classes" in status and "(over 70 images)" in status
    _, status = make_own(client, zips["heavy"])  # 12 stamps + 6 x 0.75 MB: 4 MB in all
    assert "(over 4 MB in all)" in status


def test_loose_image_files_make_an_unlabelled_set(
    client: Client, zips: dict, tmp_path: Path
) -> None:
    files = []
    for i, (_, data) in enumerate(stamps(2, 6)):
        files.append(tmp_path / f"photo{i}.jpg")
        files[-1].write_bytes(data)
    name, status = make_own(client, *files)
    assert "12 images without classes" in status and "hidden" in status
    out = client.predict(dataset=name, query_index=3, k=5, api_name="/search")
    assert len(out["results"]) == 5 and out["p_at_k"] is None and out["query_class"] is None
    html, note = client.predict(name, 0, "cosine", None, api_name="/compare")
    assert html == "" and "no classes" in note


def test_another_session_cannot_reach_them(app: AppProcess, zips: dict, own_dir: Path) -> None:
    owner, other = Client(app.url, verbose=False), Client(app.url, verbose=False)
    try:
        name, _ = make_own(owner, zips["small"])
        images = sorted(own_dir.glob(f"app-*/*/{name}/images/*/*.jpg"))
        assert images, "the owner's images are on disk"
        for kwargs in ({"dataset": name}, {"dataset": name, "query_index": 3}):
            with pytest.raises(Exception, match=f"Unknown dataset '{name}'"):
                other.predict(**kwargs, api_name="/search")
        page_events = {  # the page's own events: their dataset boxes list no other's sets
            "/dataset_images": [name],
            "/explorer_dataset_images": [name],
            "/channel_page": ["efficientnet_lite0", "top_conv", 0, name],
        }
        for event, data in page_events.items():
            with pytest.raises(Exception, match="choose one of the options this box offers"):
                other.predict(*data, api_name=event)
        for image in images[:3]:  # Gradio's file route, with the real server path
            reply = request(app.url, "GET", f"/gradio_api/file={quote(str(image))}")
            assert reply.status == 403
        assert owner.predict(dataset=name, query_index=3, k=5, api_name="/search")["results"]
    finally:
        owner.close()
        other.close()


def sessions_on_disk(own_dir: Path) -> list[Path]:
    return [p for app_dir in own_dir.glob("app-*") for p in app_dir.iterdir()]


def wait_until(condition: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def test_twenty_upload_and_leave_sessions_leave_no_files(
    app: AppProcess, zips: dict, own_dir: Path, app_cache: Path
) -> None:
    """Half close the page (Gradio's unload), half just stop calling (the idle timeout)."""
    assert wait_until(lambda: not sessions_on_disk(own_dir), IDLE_S + 30)
    uploads = app_cache / "gradio-tmp"
    before = du(own_dir) + du(uploads)
    peak = 0
    for i in range(20):
        if i % 2 == 0:
            visitor = Client(app.url, verbose=False)
            make_own(visitor, zips["small"])
            visitor.close()  # the heartbeat ends: Gradio calls the app's unload
        else:  # a raw call: no heartbeat at all, so only the idle timeout removes it
            ref = {"path": upload_path(app, zips["small"]), "meta": {"_type": "gradio.FileData"}}
            assert call(app.url, "own_images", [[ref]])[0] == "complete"
        peak = max(peak, du(own_dir))
    assert peak > 0
    assert wait_until(lambda: not sessions_on_disk(own_dir), IDLE_S + 30)
    assert wait_until(lambda: du(own_dir) + du(uploads) <= before + 256 * 1024, 40), (
        f"{before} bytes before, {du(own_dir) + du(uploads)} after 20 sessions"
    )
    print(f"own images + uploads: {before} B before, own-images peak {peak} B, ", end="")
    print(f"{du(own_dir) + du(uploads)} B after 20 sessions")


def upload_path(app: AppProcess, path: Path) -> str:
    from tests.test_security import upload

    return upload(app.url, path)

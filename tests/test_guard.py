"""The edge's rules, the server's limits and the settings, without starting the app."""

from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from convenet import settings
from convenet.models.registry import get_model_spec
from convenet.paths import REPO_DIR
from convenet.settings import Settings, read_settings
from ui.common import friendly
from ui.guard import NOT_AVAILABLE, Edge, Refused, input_kind
from ui.server import client_address, sweep_temp_files

pytestmark = pytest.mark.quick


def refusal(kind: str, label: str, raw: object) -> str:
    """The sentence the edge answers ``raw`` with (it must refuse it)."""
    with pytest.raises(Refused) as refused:
        Edge().value(kind, label, raw)
    return refused.value.message


@pytest.fixture()
def uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_input_kinds_come_from_the_component() -> None:
    assert input_kind(gr.Image()) == "file"
    assert input_kind(gr.Number(precision=0)) == "integer"
    assert input_kind(gr.Number()) == "number"
    assert input_kind(gr.Slider()) == "number"
    assert input_kind(gr.Dropdown()) == "any"


@pytest.mark.parametrize(("raw", "expected"), [(3, 3), (3.0, 3), (-2.0, -2), (None, None)])
def test_whole_numbers_are_accepted_as_ints(raw: object, expected: object) -> None:
    value = Edge().value("integer", "Channel", raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("raw", [3.7, 1.5, True, "3", [3], float("inf"), float("nan")])
def test_anything_else_is_not_a_whole_number(raw: object) -> None:
    assert re.match(r"Channel must be a (whole|finite) number", refusal("integer", "Channel", raw))


def test_long_text_is_refused_without_echoing_it() -> None:
    message = refusal("any", "Dataset", "x" * 10_000)
    assert "xxxxxxxxxx" not in message and len(message) < 100


def test_a_file_where_none_is_expected_is_refused(uploads: Path) -> None:
    message = refusal("any", "Layer", ["a", {"path": str(uploads / "x.png")}])
    assert message == "Layer does not take a file."


def test_uploaded_images_pass_and_everything_else_reads_the_same(
    uploads: Path, tmp_path: Path
) -> None:
    inside = uploads / "abc" / "photo.png"
    inside.parent.mkdir()
    Image.new("RGB", (32, 32), "red").save(inside)
    Edge().value("file", "Image", {"path": str(inside)})
    Image.new("RGB", (32, 32), "red").save(tmp_path / "secret.png")
    (uploads / "link.png").symlink_to(tmp_path / "secret.png")
    for path in (
        tmp_path / "secret.png",  # exists, outside
        tmp_path / "missing.png",  # does not exist
        uploads / "abc",  # a folder inside
        uploads / "nope.png",  # missing inside
        uploads / "link.png",  # a link out of the folder
        f"{uploads}/../secret.png",  # a way out
    ):
        for ref in ({"path": str(path)}, {"path": str(path), "meta": {"_type": "gradio.FileData"}}):
            assert refusal("file", "Image", ref) == NOT_AVAILABLE


def test_non_images_and_urls_are_refused_plainly(uploads: Path) -> None:
    text = uploads / "notes.jpg"
    text.write_text("hello")
    assert refusal("file", "Image", {"path": str(text)}) == (
        "notes.jpg: not an image file this app can read"
    )
    assert "does not fetch images from URLs" in refusal(
        "file", "Image", {"path": "https://example.com/a.jpg"}
    )
    inline = {"path": "a.jpg", "url": "data:image/png;base64,AAAA"}
    assert "data: URLs are not accepted" in refusal("file", "Image", inline)
    assert "as an uploaded file" in refusal("file", "Image", "/etc/passwd")


def test_client_address_trusts_only_the_proxy_it_sits_behind() -> None:
    request = SimpleNamespace(
        headers={"x-forwarded-for": "6.6.6.6, 1.2.3.4"}, client=SimpleNamespace(host="10.0.0.9")
    )
    assert client_address(request, trust_proxy=False) == "10.0.0.9"  # headers are the client's
    assert client_address(request, trust_proxy=True) == "1.2.3.4"  # what the proxy appended


def test_sweep_removes_old_files_and_keeps_new_and_kept_ones(tmp_path: Path) -> None:
    old, new, kept = tmp_path / "a" / "old.png", tmp_path / "b" / "new.png", tmp_path / "k.jpg"
    for path in (old, new, kept):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(kept, (an_hour_ago, an_hour_ago))
    assert sweep_temp_files(tmp_path, 60, {str(kept.resolve())}) == 1
    assert not old.exists() and not old.parent.exists() and new.exists() and kept.exists()


def test_settings_read_from_the_environment() -> None:
    assert read_settings({}) == Settings()
    chosen = read_settings({"CONVENET_MAX_FILE_MB": "5", "CONVENET_TRUST_PROXY": "yes"})
    assert chosen.max_file_mb == 5 and chosen.trust_proxy is True
    with pytest.raises(SystemExit, match="CONVENET_CLIENT_REQUESTS='0'"):
        read_settings({"CONVENET_CLIENT_REQUESTS": "0"})


def test_an_unknown_name_reaches_the_user_as_its_one_sentence() -> None:
    @friendly
    def handler(model: str) -> None:
        get_model_spec(model)

    with pytest.raises(gr.Error) as shown:
        handler("alexnet")
    assert shown.value.message.startswith("Unknown model 'alexnet'; choose one of: vgg16, ")
    assert "\n" not in shown.value.message and "Error" not in shown.value.message


def test_every_variable_is_read_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVENET_CACHE", "/somewhere/cache")
    monkeypatch.setenv("CONVENET_ONNX", "0")
    monkeypatch.setenv("CONVENET_MODEL_CACHE", "5")
    monkeypatch.setenv("CONVENET_HUB_REPO", "me/features")
    monkeypatch.delenv("CONVENET_HUB_REVISION", raising=False)
    monkeypatch.setenv("CONVENET_HUB_OFFLINE", "yes")
    assert settings.cache_root() == Path("/somewhere/cache")
    assert not settings.onnx_enabled() and settings.model_cache_size() == 5
    assert settings.hub_config() == ("me/features", "main", True)
    monkeypatch.setenv("CONVENET_MODEL_CACHE", "0")
    with pytest.raises(SystemExit, match="CONVENET_MODEL_CACHE='0'"):
        settings.model_cache_size()
    environ: dict[str, str] = {}
    settings.quiet_tensorflow(environ)
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "2"}


def _environment_uses(path: Path) -> list[str]:
    """Where a module reads or writes os.environ / os.getenv / os.putenv (line numbers)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv", "putenv"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


def test_only_settings_touches_the_environment() -> None:
    """Configuration is read in one module; importing a library module sets nothing."""
    sources = [*(REPO_DIR / "convenet").rglob("*.py"), *(REPO_DIR / "ui").rglob("*.py")]
    found = [
        use for path in sources if path.name != "settings.py" for use in _environment_uses(path)
    ]
    assert sources and found == []

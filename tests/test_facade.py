"""What the UI asks the facades besides search: uploads checked, own images made, weights,
result pictures, the feature source, class names. ``ui/`` reaches the core only through these
(tests/test_import_graph.py), so each is checked here without starting the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from convenet.data.catalog import current_owner
from convenet.data.hub import FeatureSource
from convenet.errors import ImageLoadError
from convenet.inspector import ModelInspector
from convenet.models.registry import MODELS
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import BAR_COLOURS, Hit, Playground, SearchResult

pytestmark = pytest.mark.quick

STAMPS = PRECOMPUTED_DIR / "stamps200" / "images"


@pytest.fixture()
def pg(tmp_path: Path) -> Playground:
    return Playground(PRECOMPUTED_DIR, tmp_path / "features")


def test_an_upload_is_checked_from_its_header(tmp_path: Path) -> None:
    good = tmp_path / "ok.png"
    Image.new("RGB", (40, 30), "red").save(good)
    Playground.check_upload(good, "ok.png")  # no error
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageLoadError, match=r"^my notes\.png: not an image"):
        Playground.check_upload(bad, "my notes.png")
    assert issubclass(ImageLoadError, ValueError)  # the UI shows it as a user's mistake


def test_own_images_become_a_dataset_of_their_session_only(pg: Playground, tmp_path: Path) -> None:
    classes = sorted(STAMPS.iterdir())[:2]
    files = [p for c in classes for p in sorted(c.glob("*.jpg"))[:6]]  # 12 files, no folders
    home = tmp_path / "session" / "mine-1"
    made = pg.add_own_images("mine-1", "alice", files, home)
    assert len(made.folder.paths) == 12 and not made.labelled  # loose files carry no class
    assert "mine-1" not in pg.datasets()  # nobody's call sees it ...
    token = current_owner.set("alice")
    try:
        assert pg.datasets()[-1] == "mine-1"  # ... but alice's
        spec = pg.spec("mine-1")
        assert spec.title == "Your images (12, no classes)" and spec.owner == "alice"
        assert spec.root == home / "images" and spec.cache == home / "features"
        assert len(pg.dataset("mine-1").paths) == 12
    finally:
        current_owner.reset(token)


def test_weights_status_and_problem_of_the_offline_models() -> None:
    statuses = {key: Playground.weights_status(key) for key in MODELS}
    assert set(statuses.values()) <= {"bundled", "cached", "download", "missing"}
    for key in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert statuses[key] == "bundled"
        assert Playground.weights_problem(key) is None  # nothing loads for bundled weights
    with pytest.raises(ValueError, match="Unknown model 'nope'; choose one of: "):
        Playground.weights_status("nope")


def bar_colour(tile: Image.Image) -> tuple[int, int, int]:
    """The colour at the left end of a tile's similarity bar."""
    return tile.getpixel((4, tile.height - 5))


def test_result_tiles_colour_the_bar_by_class(tmp_path: Path) -> None:
    image = sorted(STAMPS.glob("*/*.jpg"))[0]
    hits = [Hit(1, 0, image, "a", 90.0, 0.1, True), Hit(2, 1, image, "b", 40.0, 0.6, False)]
    labelled = SearchResult("a", hits, 0.5, 0.5).tiles()
    assert [tile.size for tile in labelled] == [(160, 172)] * 2
    assert [bar_colour(tile) for tile in labelled] == [BAR_COLOURS["match"], BAR_COLOURS["other"]]
    upload = SearchResult(None, hits, None, None).tiles(size=64)  # no class: every bar blue
    assert [tile.size for tile in upload] == [(64, 76)] * 2
    assert {bar_colour(tile) for tile in upload} == {BAR_COLOURS["unknown"]}
    cache = Playground.tiles(tmp_path / "tiles")
    file = Path(cache.tile(str(image), 90.0, True))
    assert file.parent == tmp_path / "tiles" and file.is_file()
    with Image.open(file) as drawn:
        assert drawn.size == (160, 172)


def test_the_feature_source_is_kept_with_the_playground(tmp_path: Path) -> None:
    given = FeatureSource(PRECOMPUTED_DIR, "embedded", "Features shipped with the app.")
    pg = Playground.from_feature_source(given)
    assert pg.source is given and pg.root == PRECOMPUTED_DIR
    assert pg.datasets()[:2] == ["stamps200", "clipart200"]
    resolved = Playground.from_feature_source()  # tests run with CONVENET_HUB_OFFLINE=1
    assert resolved.source is not None and resolved.source.origin == "embedded"
    assert resolved.root == PRECOMPUTED_DIR
    assert Playground(PRECOMPUTED_DIR).source is None  # a plain one names no source


def test_class_names_come_from_the_inspector(pg: Playground) -> None:
    inspector = pg.inspect("efficientnet_lite0")
    assert isinstance(inspector, ModelInspector)
    assert inspector.class_name(0) == "tench, Tinca tinca"
    assert inspector.class_name(999).startswith("toilet tissue")
    assert len({ModelInspector.class_name(i) for i in range(1000)}) == 999  # two "crane"s

"""The one dataset list: registered entries only, served folders by content hash, owned sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from convenet.data.catalog import Catalog, current_owner, folder_spec
from convenet.data.datasets import DatasetSpec
from convenet.data.store import feature_path, read_feature_file
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import UNLABELLED, Playground

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"


def copy_classes(dest: Path, n_classes: int = 2, per_class: int = 4) -> Path:
    for class_dir in sorted((PRECOMPUTED_DIR / "stamps200" / "images").iterdir())[:n_classes]:
        (dest / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:per_class]:
            shutil.copy(image, dest / class_dir.name / image.name)
    return dest


def test_a_throw_away_entry_is_listed_and_searched(tmp_path: Path) -> None:
    """Adding a dataset is one entry: nothing else to touch, and search works on it."""
    images = copy_classes(tmp_path / "throwaway" / "images")
    copy_classes(tmp_path / "unregistered" / "images")  # on disk, but no entry: not listed
    entry = DatasetSpec(name="throwaway", title="Throw-away", description="8 stamps", root=images)
    pg = Playground(tmp_path, tmp_path / "cache", [entry])
    assert pg.datasets() == ["throwaway"]
    result = pg.search("throwaway", MODEL, "top_conv", "cosine", query_index=0, k=7)
    assert len(result.hits) == 7 and result.possible == 3 and result.p_at_k is not None
    assert {hit.label for hit in result.hits} == {"birds", "coins"}
    with pytest.raises(
        ValueError, match="Unknown dataset 'unregistered'; choose one of: throwaway"
    ):
        pg.dataset("unregistered")


def test_the_app_default_lists_the_registered_shipped_sets() -> None:
    pg = Playground(PRECOMPUTED_DIR)
    assert pg.datasets() == ["stamps200", "clipart200"]
    assert pg.spec("stamps200").title.startswith("Stamps200")  # the entry's words are read


def test_owned_datasets_exist_for_their_owner_only(tmp_path: Path) -> None:
    public = DatasetSpec(name="shared", title="S", description="", root=tmp_path)
    mine = DatasetSpec(name="mine-1", title="M", description="", root=tmp_path, owner="alice")
    catalog = Catalog([public])
    catalog.add(mine)
    for owner, names in ((None, ["shared"]), ("bob", ["shared"]), ("alice", ["shared", "mine-1"])):
        token = current_owner.set(owner)
        try:
            assert catalog.names() == names
            if owner != "alice":
                with pytest.raises(ValueError, match="Unknown dataset 'mine-1'"):
                    catalog.get("mine-1")
            else:
                assert catalog.get("mine-1") is mine
        finally:
            current_owner.reset(token)
    with pytest.raises(ValueError, match="exists already"):
        catalog.add(DatasetSpec(name="shared", title="", description="", root=tmp_path, owner="x"))
    assert catalog.drop_owner("alice") == [mine] and catalog.owners() == []


def test_a_served_folder_is_cached_by_content_and_a_change_is_noticed(tmp_path: Path) -> None:
    images = copy_classes(tmp_path / "photos")
    first = folder_spec(images, "my photos")
    assert first.name == "my_photos" and len(first.fingerprint) == 16
    pg = Playground(tmp_path / "none", tmp_path / "cache", [first])
    before = pg.features("my_photos", MODEL, "top_conv")
    stored = feature_path(tmp_path / "cache", first.store_name, MODEL)
    assert stored.is_file()
    assert folder_spec(images, "my photos").fingerprint == first.fingerprint  # restart: same
    victim = sorted(images.rglob("*.jpg"))[0]
    shutil.copy(sorted(images.rglob("*.jpg"))[-1], victim)  # same name, other picture
    changed = folder_spec(images, "my photos")
    assert changed.fingerprint != first.fingerprint
    after = Playground(tmp_path / "none", tmp_path / "cache", [changed]).features(
        "my_photos", MODEL, "top_conv"
    )
    assert feature_path(tmp_path / "cache", changed.store_name, MODEL).is_file()
    assert (after[0] != before[0]).any() and (after[1:] == before[1:]).all()


def test_the_app_reads_what_precompute_wrote_for_a_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``precompute --images DIR --name NAME --root R`` writes what a playground on R serving
    ``--images DIR --name NAME`` reads, without computing again; a changed folder is not served
    the stored features but computed anew, and the log says why in one sentence."""
    from convenet.cli import main

    images = copy_classes(tmp_path / "photos")
    store, cache = tmp_path / "store", tmp_path / "cache"
    args = ["precompute", "--images", str(images), "--name", "trip", "--model", MODEL]
    assert main([*args, "--root", str(store)]) == 0
    pg = Playground(store, cache, [folder_spec(images, "trip")])
    read = pg.features("trip", MODEL, "top_conv")
    assert not cache.exists() or not any(cache.rglob("*.safetensors")), "computed again"
    stored = read_feature_file(feature_path(store, "trip", MODEL)).features["top_conv"]
    np.testing.assert_array_equal(read, stored.astype(np.float32))
    assert main([*args, "--root", str(store)]) == 0  # unchanged folder: skipped
    evaluate = ["evaluate", "--images", str(images), "--model", MODEL, "--layer", "top_conv"]

    def no_extraction(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluate --root extracted features it had stored")

    with monkeypatch.context() as patch:
        patch.setattr("convenet.features.extract.extract_features", no_extraction)
        assert main([*evaluate, "--root", str(store), "--name", "trip", "--json"]) == 0

    shutil.copy(sorted(images.rglob("*.jpg"))[-1], sorted(images.rglob("*.jpg"))[0])
    with caplog.at_level("INFO", logger="convenet"):
        again = Playground(store, cache, [folder_spec(images, "trip")])
        after = again.features("trip", MODEL, "top_conv")
    assert "The folder trip changed since its features were stored" in caplog.text
    assert feature_path(cache, "trip", MODEL).is_file() and (after[0] != read[0]).any()


def test_an_unlabelled_set_is_searched_without_scores(tmp_path: Path) -> None:
    images = tmp_path / "flat"
    copy_classes(tmp_path / "tmp", 2, 3)
    (images / "no_class").mkdir(parents=True)
    for i, path in enumerate(sorted((tmp_path / "tmp").rglob("*.jpg"))):
        shutil.copy(path, images / "no_class" / f"{i}.jpg")
    entry = DatasetSpec(name="flat", title="", description="", root=images, labelled=False)
    pg = Playground(tmp_path, tmp_path / "cache", [entry])
    result = pg.search("flat", MODEL, "top_conv", "cosine", query_index=0, k=5)
    assert len(result.hits) == 5 and result.query_label is None and result.p_at_k is None
    for view in (lambda: pg.quality("flat", "cosine"), lambda: pg.compare("flat", 0, "cosine")):
        with pytest.raises(ValueError, match="no classes"):
            view()
    assert "no classes" in UNLABELLED

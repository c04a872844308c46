"""``app.py --images DIR [--name NAME]`` and ``CONVENET_IMAGES``: the folders served as datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from convenet.settings import folder_datasets
from ui.folders import parse_folder_args

pytestmark = pytest.mark.quick


def parse(*argv: str) -> list[list[str]]:
    parser = argparse.ArgumentParser()
    parse_folder_args(parser)
    return parser.parse_args(argv).images


def test_each_name_belongs_to_the_folder_before_it() -> None:
    assert parse() == []
    assert parse("--images", "a", "--name", "pets", "--images", "b") == [["a", "pets"], ["b", ""]]
    for wrong in (["--name", "x"], ["--images", "a", "--name", "x", "--name", "y"]):
        with pytest.raises(SystemExit):
            parse(*wrong)


def test_the_environment_names_folders_too() -> None:
    env = {"CONVENET_IMAGES": "pets=/data/pets: /data/trips :"}
    assert folder_datasets(env) == [("pets", "/data/pets"), ("", "/data/trips")]
    assert folder_datasets({}) == []


def test_a_served_folder_with_an_unreadable_image_stops_the_start_in_one_line(
    tmp_path: Path,
) -> None:
    from convenet.playground import Playground
    from tests.features.test_shards import add_broken_images, real_images
    from ui.folders import compute_at_start
    from ui.folders import folder_datasets as served

    images = real_images(tmp_path / "pets", per_class=2, classes=2)
    add_broken_images(images)
    specs = served([[str(images), "pets"]])
    pg = Playground(tmp_path / "none", tmp_path / "cache", specs)
    with pytest.raises(SystemExit) as stopped:
        compute_at_start(pg, specs)
    said = str(stopped.value)
    assert said.startswith(f"--images {images}: 0-truncated.jpg: the image is broken or truncated")
    assert "Traceback" not in said and said.endswith("then start again")

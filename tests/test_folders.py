"""``app.py --images DIR [--name NAME]`` and ``CONVENET_IMAGES``: the folders served as datasets."""

from __future__ import annotations

import argparse

import pytest

from convenet.settings import folder_datasets
from ui.folders import parse_folder_args


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

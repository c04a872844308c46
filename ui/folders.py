"""Folders on this machine served as datasets: ``app.py --images DIR [--name NAME]`` (repeatable)
and ``CONVENET_IMAGES`` (for a Space, where the command line is not ours).

Their features (every curated layer of the default model) are computed at start, with a
progress bar, and cached under a name that includes the folder's content hash: a restart finds
them at once, and a changed folder gets new ones.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from convenet.data.catalog import folder_spec
from convenet.data.datasets import DatasetSpec
from convenet.models.registry import DEFAULT_MODEL, MODELS
from convenet.playground import Playground
from convenet.settings import folder_datasets as env_folders


class _AddFolder(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, value: Any, option: Any = None) -> None:
        getattr(namespace, self.dest).append([value, ""])


class _NameFolder(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, value: Any, option: Any = None) -> None:
        folders = getattr(namespace, self.dest)
        if not folders or folders[-1][1]:
            parser.error("--name names the --images folder just before it")
        folders[-1][1] = value


def parse_folder_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--images DIR`` and ``--name NAME`` (for the ``--images`` before it)."""
    parser.set_defaults(images=[])
    parser.add_argument(
        "--images",
        action=_AddFolder,
        metavar="DIR",
        help="a folder with one sub-folder of images per class, served as a dataset (repeatable)",
    )
    parser.add_argument(
        "--name",
        action=_NameFolder,
        dest="images",
        metavar="NAME",
        help="the dataset name of the --images folder before it (default: the folder's name)",
    )


def folder_datasets(cli: Sequence[Sequence[str]] = ()) -> list[DatasetSpec]:
    """The folders of ``CONVENET_IMAGES`` then of the command line, as dataset entries."""
    specs = []
    for name, folder in [*env_folders(), *((n, d) for d, n in cli)]:
        try:
            specs.append(folder_spec(folder, name or None))
        except ValueError as exc:
            raise SystemExit(f"--images {folder}: {exc}") from None
    return specs


def compute_at_start(
    pg: Playground, specs: Sequence[DatasetSpec], model: str = DEFAULT_MODEL
) -> None:
    """Every curated layer of ``model`` for each folder, with a progress bar (cached: a
    restart only checks the cache)."""
    spec = MODELS[model]
    for data in specs:
        with tqdm(desc=f"{data.name} x {spec.title}", unit="images") as bar:

            def show(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                pg.features(data.name, spec.key, spec.layer_names[-1], show)
            except ValueError as exc:  # an unreadable image: one line, not a traceback
                raise SystemExit(
                    f"--images {data.root}: {exc}; remove or replace it, then start again"
                ) from None

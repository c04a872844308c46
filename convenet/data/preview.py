"""A small parquet index of a feature store's images, for the Hub's dataset viewer.

One file per dataset (image path, class, dataset), so the card's ``configs`` can offer each
dataset as a split that a visitor can browse without downloading anything. The rows come from
the feature files' own metadata, so they list exactly the images the features describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from convenet.data.store import read_feature_meta

INDEX_DIR = "index"


def write_index(root: Path, manifest: Mapping[str, Any]) -> dict[str, str]:
    """Write ``index/<dataset>.parquet`` for each dataset; return dataset -> relative path."""
    first_file: dict[str, str] = {}
    for relpath, entry in sorted(manifest["files"].items()):
        first_file.setdefault(entry["dataset"], relpath)
    written = {}
    for name, relpath in sorted(first_file.items()):
        meta = read_feature_meta(root / relpath)
        table = pa.table(
            {
                "image": [f"{name}/images/{image}" for image in meta["images"]],
                "class": list(meta["labels"]),
                "dataset": [name] * len(meta["images"]),
            }
        )
        index_path = f"{INDEX_DIR}/{name}.parquet"
        (root / INDEX_DIR).mkdir(exist_ok=True)
        pq.write_table(table, root / index_path)
        written[name] = index_path
    return written


def viewer_configs(index: Mapping[str, str]) -> list[dict]:
    """The card's ``configs`` entry: one split per dataset, read from its parquet index."""
    files = [{"split": name, "path": path} for name, path in sorted(index.items())]
    return [{"config_name": "default", "data_files": files}]

"""The Ray Data engine gives the in-process engine's output (a local Ray, started here)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from convenet.features.shards import precompute_shards  # noqa: E402
from tests.features.test_shards import (  # noqa: E402
    LAYERS,
    MODEL,
    add_broken_images,
    features_of,
    real_images,
)

pytestmark = pytest.mark.slow  # starts a local Ray cluster: about 40 s


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A small local Ray (3 logical CPUs: two actors and the reading tasks), shut down after."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=3,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_engine_output_equals_the_in_process_engine(local_ray: None, tmp_path: Path) -> None:
    images = real_images(tmp_path / "images", per_class=6)  # 24 real images
    broken = add_broken_images(images)  # and two that cannot be read: skipped by both
    local, distributed = tmp_path / "local", tmp_path / "ray"
    expected = precompute_shards(images, local, MODEL, LAYERS, shard_size=10, batch_size=4)
    manifest = precompute_shards(
        images, distributed, MODEL, LAYERS, shard_size=10, batch_size=4, engine="ray", ray_actors=2
    )
    assert [s["n_images"] for s in manifest["shards"]] == [9, 10, 5]  # 10 images each, less 2
    assert manifest["skipped"] == expected["skipped"]
    assert {s["image"]: s["reason"] for s in manifest["skipped"]} == broken
    ours, theirs = features_of(distributed), features_of(local)
    assert ours[0] == theirs[0] and len(ours[0]) == 24  # the same images, in the same order
    assert ours[1] == theirs[1]
    for layer in LAYERS:  # float16 storage: equal within its rounding (about 1e-3 relative)
        np.testing.assert_allclose(
            ours[2][layer].astype(np.float32),
            theirs[2][layer].astype(np.float32),
            rtol=2e-3,
            atol=2e-3,
        )

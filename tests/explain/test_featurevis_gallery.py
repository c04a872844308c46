"""The shipped gallery's channel choice and per-class means (pure numpy, no TensorFlow)."""

import numpy as np
import pytest

from convenet.explain.featurevis_gallery import (
    class_means,
    interesting_channels,
    precomputed_featurevis_path,
    shipped_channels,
    top_activating_images,
)

pytestmark = pytest.mark.quick


def test_class_means_match_a_hand_computed_table():
    features = np.array([[1.0, 0.0], [3.0, 2.0], [10.0, 4.0]])
    labels = np.array([0, 0, 2])
    means = class_means(features, labels, 3)
    np.testing.assert_allclose(means, [[2.0, 1.0], [0.0, 0.0], [10.0, 4.0]])


def test_class_means_reject_mismatched_labels():
    with pytest.raises(ValueError, match="one label per row"):
        class_means(np.zeros((3, 2)), np.zeros(2, dtype=int), 2)


def test_interesting_channels_prefer_a_strong_class_over_a_broad_one():
    # Channel 0 fires a little on every class, channel 1 strongly on one class, channel 2 never.
    a = np.array([[2.0, 6.0, 0.0], [2.0, 0.0, 0.0]])
    # In a second dataset with a 10x larger scale, channel 2 wins a class.
    b = np.array([[20.0, 0.0, 50.0], [20.0, 10.0, 0.0]])
    # a: mean 10/6 -> scores 1.2, 3.6, 0;  b: mean 100/6 -> 1.2, 0.6, 3.0
    assert interesting_channels([a, b], 3) == [1, 2, 0]
    assert interesting_channels([a], 2) == [1, 0]


def test_interesting_channels_break_ties_by_index():
    assert interesting_channels([np.ones((2, 4))], 4) == [0, 1, 2, 3]


def test_shipped_channels_lists_pictures_by_number(tmp_path, monkeypatch):
    import convenet.explain.featurevis_gallery as gallery

    monkeypatch.setattr(gallery, "FEATUREVIS_DIR", tmp_path)
    folder = tmp_path / "m" / "conv"
    folder.mkdir(parents=True)
    for name in ("12.webp", "3.webp", "7.webp.123.tmp", "notes.txt"):
        (folder / name).write_bytes(b"x")
    assert shipped_channels("m", "conv") == [3, 12]
    assert shipped_channels("m", "other") == []
    assert precomputed_featurevis_path("m", "conv", 3) == folder / "3.webp"


def test_top_activating_images() -> None:
    features = np.random.default_rng(5).normal(size=(50, 8))
    top = top_activating_images(features, 3, k=9)
    assert list(top) == list(np.argsort(features[:, 3])[::-1][:9])
    with pytest.raises(ValueError, match="channel 8 out of range"):
        top_activating_images(features, 8)
    with pytest.raises(ValueError, match="n_images, channels"):
        top_activating_images(features[0], 0)

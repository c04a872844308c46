"""Linear CKA against a direct reference (the feature-space formula of Kornblith et al.) and the
properties a learner is told: 1 on the diagonal, symmetric, blind to rotation and scale."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.explain.cka import linear_cka_matrix


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centered X and Y."""
    x = np.asarray(x, np.float64) - np.mean(x, axis=0)
    y = np.asarray(y, np.float64) - np.mean(y, axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


@pytest.fixture()
def layers() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 12))
    return [
        base,
        base @ rng.normal(size=(12, 30)) + 0.3 * rng.normal(size=(40, 30)),  # related
        rng.normal(size=(40, 7)),  # unrelated
        np.abs(base[:, :5]) ** 2,  # a nonlinear view
    ]


def test_matches_the_reference_formula(layers: list[np.ndarray]) -> None:
    got = linear_cka_matrix(layers)
    for i, x in enumerate(layers):
        for j, y in enumerate(layers):
            assert got[i, j] == pytest.approx(reference_cka(x, y), abs=1e-5)


def test_one_on_the_diagonal_and_symmetric(layers: list[np.ndarray]) -> None:
    got = linear_cka_matrix(layers)
    np.testing.assert_allclose(np.diag(got), 1.0)
    np.testing.assert_allclose(got, got.T)
    assert got[0, 1] > 0.5 > got[0, 2]  # a related layer scores high, an unrelated one low


def test_blind_to_rotation_and_isotropic_scale(layers: list[np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    moved = [layers[0] @ q * 7.5, *layers[1:]]
    np.testing.assert_allclose(linear_cka_matrix(moved), linear_cka_matrix(layers), atol=1e-5)
    stretched = layers[0] * np.linspace(1, 20, 12)  # not isotropic: CKA may change
    assert linear_cka_matrix([stretched, layers[0]])[0, 1] < 1 - 1e-3


def test_flat_features_and_mismatched_rows() -> None:
    flat = np.ones((10, 4))
    got = linear_cka_matrix([flat, np.arange(30.0).reshape(10, 3)])
    np.testing.assert_allclose(got, np.eye(2))
    with pytest.raises(ValueError, match="same images"):
        linear_cka_matrix([np.zeros((3, 2)), np.zeros((4, 2))])

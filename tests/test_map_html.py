"""The map's markup: every point names its dataset image, also when a large set shows a sample."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ui.map_html import map_html

pytestmark = pytest.mark.quick


def _indices(markup: str) -> list[int]:
    return [int(i) for i in re.findall(r"<circle [^>]*data-index='(\d+)'", markup)]


def test_a_sample_keeps_dataset_indices_and_says_it_is_a_sample():
    labels = np.array([0, 1] * 10)
    rows = np.array([2, 5, 11, 17])  # 4 of 20 images on the map
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    urls = [f"/file={row}.jpg" for row in rows]
    markup = map_html(points, labels, ["a", "b"], urls, 5, [11, 3, 17], rows)
    assert _indices(markup) == [2, 5, 11, 17]
    assert "/file=11.jpg" in markup and "a sample of 4 of the 20 images" in markup
    assert markup.count("stroke='black'") == 2 + 1  # hits 11 and 17 ringed (3 is not shown) + ◆
    # the query (5) is on the map: the diamond sits on its point (x 96, y 96 after scaling)
    assert "points='96.00,93.00 99.00,96.00" in markup


def test_a_whole_dataset_is_not_called_a_sample():
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    markup = map_html(points, np.array([0, 1]), ["a", "b"], ["u0", "u1"], 1, [0])
    assert _indices(markup) == [0, 1] and "sample" not in markup


def test_a_query_outside_the_sample_sits_among_its_nearest_shown_images():
    labels = np.zeros(10, int)
    rows = np.array([0, 1])
    points = np.array([[0.0, 0.0], [1.0, 1.0]])
    markup = map_html(points, labels, ["a"], ["u0", "u1"], 7, [0, 1], rows)
    assert "the query (not in the sample)" in markup
    assert "points='50.00,47.00 53.00,50.00" in markup  # the mean of the two shown hits


def test_the_query_is_joined_to_its_ten_nearest_images_which_are_listed():
    """The Projector-like neighbour view: lines from the query to its nearest images (those on
    the map), and the list of the ten in rank order, each a button that sends its index."""
    labels = np.array([0, 1] * 10)
    points = np.random.default_rng(0).normal(size=(20, 2))
    urls = [f"/file={i}.jpg" for i in range(20)]
    hits = [4, 9, 1, 12, 3, 5, 7, 19, 2, 11, 13, 8]  # 12 results: only the first 10 joined
    markup = map_html(points, labels, ["a", "b"], urls, 0, hits)
    assert markup.count("<line class='cn-nn'") == 10
    listed = re.findall(r"<button class='cn-nn-item' data-index='(\d+)'", markup)
    assert [int(i) for i in listed] == hits[:10]
    assert "Its 10 nearest images in this layer" in markup
    # each line runs from the query's point to one neighbour's point
    cx, cy = (
        re.search(r"data-index='0'", markup)
        and re.findall(r"cx='([\d.]+)' cy='([\d.]+)'[^>]*data-index='0'", markup)[0]
    )
    ends = re.findall(r"x1='([\d.]+)' y1='([\d.]+)' x2='([\d.]+)' y2='([\d.]+)'", markup)
    assert all((x1, y1) == (cx, cy) for x1, y1, _, _ in ends)
    second = re.findall(r"cx='([\d.]+)' cy='([\d.]+)'[^>]*data-index='9'", markup)[0]
    assert tuple(ends[1][2:]) == second


def test_a_map_with_no_results_lists_no_neighbours():
    markup = map_html(np.eye(2), np.array([0, 1]), ["a", "b"], ["/a", "/b"], 0, [])
    assert "cn-nn" not in markup

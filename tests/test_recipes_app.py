"""Integration: every search recipe through ``/search`` of the real app, with gradio_client."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client

from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground
from convenet.search.recipes import RECIPES
from tests.app_server import running_app

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    with running_app(tmp_path_factory.mktemp("app-cache")) as url:
        yield Client(url, verbose=False)


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_each_recipe_returns_50_results(client: Client, recipe: str) -> None:
    out = client.predict(query_index=3, recipe=recipe, api_name="/search")
    assert out["recipe"] == recipe
    results = out["results"]
    assert [r["rank"] for r in results] == list(range(1, 51))
    assert len({r["index"] for r in results}) == 50 and all(r["index"] != 3 for r in results)


def test_unknown_recipe_is_one_clear_sentence(client: Client) -> None:
    with pytest.raises(Exception, match="Unknown recipe 'magic'"):
        client.predict(query_index=0, recipe="magic", api_name="/search")


@pytest.mark.parametrize("dataset", ["stamps200", "clipart200"])
def test_best_beats_plain_over_every_query(client: Client, dataset: str) -> None:
    """Mean precision@10 of all 200 dataset queries, at plain's best layer, through the API."""
    grid = Playground(PRECOMPUTED_DIR).quality(dataset, "cosine", 10, "plain")[MODEL]
    layer = max(grid, key=grid.get)
    means = {}
    for recipe in ("plain", "best"):
        scores = [
            client.predict(
                dataset=dataset,
                model=MODEL,
                layer=layer,
                query_index=i,
                k=10,
                recipe=recipe,
                api_name="/search",
            )["p_at_k"]
            for i in range(200)
        ]
        means[recipe] = float(np.mean(scores))
    assert means["plain"] == pytest.approx(grid[layer])  # the app ranks as the evaluation does
    assert means["best"] > means["plain"], means

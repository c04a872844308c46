"""The app's engine without a UI: datasets, their features, search and the views that explain it.

Features come from the resolved feature source (the Hub dataset or the embedded
``precomputed/``), then from the local cache, and are computed on first use when the model's
weights can be had. A file that fails its checksum is never served. Searches and the quality
grid take a retrieval recipe (``convenet.search.recipes``); ``plain`` is the classic single-layer
search.

The UI talks to this module and ``convenet.inspector`` only (tests/test_import_graph.py): what it
shows comes back as the types defined or named here (``SearchResult``, ``Ingested``,
``PairExplanation``), and what a result's picture means is said once, below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from convenet.data.catalog import Catalog, shipped
from convenet.data.datasets import DatasetSpec, ImageFolder, scan_image_folder
from convenet.data.images import ImageSource, check_image_file, load_image
from convenet.data.own_images import Ingested, Limits, ingest
from convenet.errors import UnknownNameError, WeightsUnavailableError
from convenet.explain.cka import linear_cka_matrix
from convenet.explain.maps import (
    MAPS_FILE,
    feature_digest,
    projection_of,
    read_maps,
    umap_available,
)
from convenet.explain.peaks import PEAKS_FILE, LayerPeaks, dataset_peaks, read_peaks
from convenet.explain.plots import BAR_COLOURS, TileCache, class_colour, result_tile
from convenet.explain.why_match import PairExplanation, explain_pair
from convenet.features.extract import PLAIN, View, extract_arrays
from convenet.features.shelf import FeatureShelf
from convenet.inspector import ModelInspector
from convenet.lru import BuildOnceLRU
from convenet.models.loading import get_model_spec, load_model, weights_status
from convenet.models.registry import MODELS
from convenet.paths import cache_dir
from convenet.search.calibration import (
    SIMILARITY_MEANING,
    relative_similarity,
    sampled,
    scale_distances,
    scale_sample,
)
from convenet.search.evaluation import chance_precision, per_query_precision, query_scores
from convenet.search.metrics import METRICS
from convenet.search.ranking import Ranking, rank
from convenet.search.recipes import (
    Recipe,
    Views,
    base_vectors,
    database_vectors,
    get_recipe,
    layers_alike,
    layers_read,
    leave_one_out,
    query_vectors,
    recipe_at,
    single_steps,
)
from convenet.search.vector_index import (
    EXACT_MAX,
    VectorIndex,
    index_of,
    index_path,
    load_index,
    uses_index,
)

if TYPE_CHECKING:
    from convenet.data.hub import FeatureSource

__all__ = [  # the facade: what the UI may use, besides the registries
    "UNLABELLED",
    "Hit",
    "Ingested",
    "PairExplanation",
    "Playground",
    "SearchResult",
    "umap_available",
    # What a result's picture means, for every view that draws one (the tiles drawn here, the
    # UI's bars and legend, the map): one sentence for the similarity scale, the bar colours
    # (the query's class, another, none known) and one colour per class.
    "SIMILARITY_MEANING",
    "BAR_COLOURS",
    "class_colour",
]

log = logging.getLogger("convenet")
Progress = Callable[[int, int], None]
SPACES_KEPT = 24  # recipe databases kept in memory, most recently used first
QUALITY_MAX = 5000  # images in the overview at most: leave-one-out over all pairs is O(n^2)
PEAKS_KEPT_VIEWS = 12  # datasets x models whose channel peaks stay in memory (~0.5 MB each)
MAP_MAX = 5000  # images on the map at most (a seeded sample beyond): t-SNE is O(n log n) slow
CKA_MAX = 1000  # images compared by layer similarity at most (n x n Gram matrices, 24 of them)
BROWSE_MAX = 1000  # dataset images a browsing gallery lists at most: a page cannot show 1e6
UNLABELLED = (
    "These images have no classes (they were not in one sub-folder per class), so there is "
    "nothing to score; search and the map work, the scores need classes."
)


@dataclass(frozen=True)
class Hit:
    """One search result."""

    rank: int
    index: int
    path: Path
    label: str
    similarity: float
    distance: float
    match: bool


@dataclass(frozen=True)
class SearchResult:
    """The hits of one query; ``possible`` counts the other images of its class (None: upload)."""

    query_label: str | None
    hits: list[Hit]
    p_at_k: float | None
    weighted_score: float | None
    possible: int | None = None
    labelled: bool = True  # False: the dataset has no classes, so nothing was scored

    @property
    def matches(self) -> int:
        return sum(hit.match for hit in self.hits)

    def matches_in_top(self, n: int) -> int:
        return sum(hit.match for hit in self.hits[:n])

    def rows(self, images_dir: Path) -> list[dict[str, Any]]:
        """The hits as plain rows (API, export): ``same_class`` is None for an upload."""
        known = self.query_label is not None
        return [
            {
                "rank": hit.rank,
                "index": hit.index,
                "image": hit.path.relative_to(images_dir).as_posix(),
                "class": hit.label,
                "similarity": round(hit.similarity, 2),
                "distance": hit.distance,
                "same_class": hit.match if known else None,
            }
            for hit in self.hits
        ]

    def tiles(self, size: int = 160) -> list[Image.Image]:
        """Each hit as a thumbnail with its similarity as a bar (BAR_COLOURS: the query's class,
        another class, or no class known for an upload)."""
        known = self.query_label is not None
        return [
            result_tile(str(hit.path), hit.similarity, hit.match if known else None, size)
            for hit in self.hits
        ]


def ranked_hits(
    folder: ImageFolder, ranking: Ranking, similarity: np.ndarray, query_label: str | None
) -> list[Hit]:
    """A ranking of ``folder``'s images as hits; ``match`` is False for an upload (no label)."""
    labels = [folder.classes[folder.labels[index]] for index in ranking.indices]
    return [
        Hit(
            rank,
            int(index),
            folder.paths[index],
            label,
            float(sim),
            float(dist),
            label == query_label,
        )
        for rank, (index, label, sim, dist) in enumerate(
            zip(ranking.indices, labels, similarity, ranking.distances, strict=True), start=1
        )
    ]


class Playground:
    """Everything the UI asks, answered from precomputed features where possible."""

    def __init__(
        self,
        root: Path,
        cache_root: Path | None = None,
        datasets: list[DatasetSpec] | None = None,
    ) -> None:
        """``datasets`` defaults to the registered ones whose images ``root`` holds."""
        self.root = Path(root)
        self.cache_root = cache_root or cache_dir() / "features"
        self.catalog = Catalog(shipped(self.root) if datasets is None else datasets)
        self._lock = threading.Lock()
        self.shelf = FeatureShelf(self.catalog, self.root, self.cache_root, self.dataset, EXACT_MAX)
        self._spaces: BuildOnceLRU[tuple[np.ndarray, np.ndarray]] = BuildOnceLRU(SPACES_KEPT)
        self._quality: dict[tuple, dict[str, dict[str, float]]] = {}
        self._indexes: BuildOnceLRU[VectorIndex] = BuildOnceLRU(4)
        # a large database's similarity-scale rows as float32 (~100 MB at 20,000 x 1280)
        self._scale_samples: BuildOnceLRU[tuple[np.ndarray, np.ndarray] | None] = BuildOnceLRU(2)
        self._similarities: BuildOnceLRU[LayerSimilarity] = BuildOnceLRU(4)
        self._precisions: BuildOnceLRU[float] = BuildOnceLRU(2048)  # a float per view
        self._maps: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
        self._peaks: BuildOnceLRU[dict[str, LayerPeaks]] = BuildOnceLRU(PEAKS_KEPT_VIEWS)
        self.source: FeatureSource | None = None  # set by from_feature_source

    @classmethod
    def from_feature_source(cls, source: FeatureSource | None = None) -> Playground:
        """The app's Playground: features from the Hub dataset when it can be fetched and
        verified, else the embedded ``precomputed/``; ``source`` says which, in one sentence
        for the page. Never raises for network problems."""
        from convenet.data.hub import resolve_feature_source  # the Hub client: only the app's

        source = source or resolve_feature_source()
        pg = cls(source.root)
        pg.source = source
        return pg

    @staticmethod
    def tiles(folder: Path) -> TileCache:
        """Result tiles (``SearchResult.tiles``' pictures) drawn once into ``folder`` and handed
        out as file paths: the folder a UI serves, so a search returns paths, not pixels."""
        return TileCache(folder)

    # -- models -------------------------------------------------------------------------
    @staticmethod
    def weights_status(model: str) -> str:
        """Where a model's weights come from here: "bundled" (a package: works offline),
        "cached" (downloaded before), "download" (needs the network once) or "missing"."""
        return weights_status(get_model_spec(model))

    @staticmethod
    def weights_problem(model: str) -> str | None:
        """None when the model's weights can be had (trying the download if one is needed);
        else the sentence that says why not and which models work."""
        spec = get_model_spec(model)
        if weights_status(spec) in ("bundled", "cached"):
            return None
        try:
            load_model(spec.key)
        except WeightsUnavailableError as exc:  # logged once, where the download failed
            return str(exc)
        return None

    def can_compute(self, model: str) -> bool:
        return self.weights_status(model) != "missing"

    # -- datasets ---------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """The catalog's datasets the current caller may choose, in the catalog's order."""
        return self.catalog.names()

    def spec(self, name: str) -> DatasetSpec:
        return self.catalog.get(name)

    def _check_dataset(self, name: str) -> str:
        return self.catalog.get(name).name

    def dataset(self, name: str) -> ImageFolder:
        spec = self.catalog.get(name)
        return _scan(spec.root, 2 if spec.labelled else 1)

    def check_index(self, name: str, index: int, what: str = "query_index") -> int:
        """``index`` if it names an image of the dataset; else a clear error."""
        size = len(self.dataset(name).paths)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise ValueError(f"{what} must be a whole number from 0 to {size - 1}")
        return index

    def images_dir(self, name: str) -> Path:
        return self.catalog.get(name).root

    @staticmethod
    def check_upload(path: Path, label: str | None = None) -> None:
        """Refuse, from its header alone, a file that is not an image or would decode too big
        (ImageLoadError naming it as ``label``): an app's edge runs this on every upload."""
        check_image_file(path, label)

    def add_own_images(
        self,
        name: str,
        owner: str,
        files: list[Path],
        home: Path,
        limits: Limits | None = None,
    ) -> Ingested:
        """A visitor's upload as dataset ``name``, seen only by calls of ``owner``: the files are
        ingested into ``home``/images by ``convenet.data.own_images`` (archives opened safely,
        non-images skipped, ``limits`` from the settings by default), their features cached
        in ``home``/features."""
        made = ingest([(path, path.name) for path in files], home / "images", limits)
        n, classes = len(made.folder.paths), made.folder.classes
        kind = f"{len(classes)} classes" if made.labelled else "no classes"
        spec = DatasetSpec(
            name=name,
            title=f"Your images ({n}, {kind})",
            description=f"{n} images uploaded in this browser session ({kind}).",
            root=home / "images",
            labelled=made.labelled,
            cache=home / "features",
            owner=owner,
        )
        self.catalog.add(spec)
        return made

    def forget(self, name: str) -> None:
        """Drop what is held in memory for a dataset that is gone (a session's uploads)."""
        with self._lock:
            for key in [key for key in self._quality if key[0] == name]:
                del self._quality[key]
        self.shelf.forget(name)
        self._spaces.discard(lambda key: key[0] == name)
        self._indexes.discard(lambda key: key[0] == name)
        self._scale_samples.discard(lambda key: key[0] == name)
        self._peaks.discard(lambda key: key[0] == name)
        self._similarities.discard(lambda key: key[0] == name)
        self._precisions.discard(lambda key: key[0] == name)

    def why_match(
        self,
        dataset: str,
        model: str,
        layer: str,
        result_index: int,
        query_index: int | None = None,
        query_image: ImageSource | None = None,
        channels: int = 5,
    ) -> PairExplanation:
        """Why the layer finds dataset image ``result_index`` like the query: a dataset image
        (``query_index``) or an outside one (``query_image``)."""
        paths = self.dataset(dataset).paths
        result = paths[self.check_index(dataset, result_index, "result_index")]
        if query_image is not None:
            query: ImageSource = query_image
        elif query_index is not None:
            query = paths[self.check_index(dataset, query_index)]
        else:
            raise ValueError("Give a query: a dataset image index or an image file.")
        return explain_pair(model, layer, query, result, channels)

    def inspect(self, model: str) -> ModelInspector:
        """The Model Explorer's view of one model (checks the name; loads nothing yet)."""
        return ModelInspector(get_model_spec(model), self)

    # -- features ---------------------------------------------------------------------
    def has_features(self, dataset: str, model: str) -> bool:
        return self.shelf.stored(dataset, get_model_spec(model))

    def features(
        self,
        dataset: str,
        model: str,
        layer: str,
        progress: Progress | None = None,
        view: View = PLAIN,
    ) -> np.ndarray:
        """(n, d) features of one layer in one view (pooling, mirrored or not); computed and
        cached on first use if needed (``convenet.features.shelf``). float32 in memory, or
        above ``EXACT_MAX`` images the stored float16 rows, memory-mapped."""
        spec = get_model_spec(model)
        spec.layer(layer)
        self._check_dataset(dataset)
        return self.shelf.layer(dataset, spec, layer, view, progress)

    def views(self, dataset: str, model: str, progress: Progress | None = None) -> Views:
        """A dataset's features by (view, layer), as the recipes read them."""
        return lambda view, layer: self.features(dataset, model, layer, progress, view)

    def embed(
        self, image: ImageSource, model: str, layers: tuple[str, ...], recipe: Recipe
    ) -> Views:
        """One outside image's features in every view a recipe reads (a forward pass per view)."""
        spec = get_model_spec(model)
        pixels = load_image(image, spec.input_size).astype(np.float32)[None]
        found = {
            view: extract_arrays(
                spec.key, pixels[:, :, ::-1] if view.flip else pixels, layers, view.pooling
            )
            for view in recipe.views
        }
        return lambda view, layer: found[view][layer]

    def space(
        self, dataset: str, model: str, layer: str, recipe: Recipe, progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(base, database) vectors of a dataset under a recipe; the last few are kept."""
        spec = get_model_spec(model)
        size = len(self.dataset(dataset).paths)
        if recipe.name != "plain" and size > EXACT_MAX:  # float32 copies of every row
            raise ValueError(
                f"The {recipe.name} recipe makes new vectors of every image, too many for "
                f"{size:,} images (at most {EXACT_MAX:,}); the plain recipe searches them."
            )

        def build() -> tuple[np.ndarray, np.ndarray]:
            views = self.views(dataset, model, progress)
            base = base_vectors(recipe, views, spec.layer_names, layer)
            return base, database_vectors(recipe, base)

        return self._spaces.get((dataset, model, layer, recipe), build)

    # -- search -----------------------------------------------------------------------
    def search(
        self,
        dataset: str,
        model: str,
        layer: str,
        metric: str,
        query_index: int | None = None,
        query_image: ImageSource | None = None,
        k: int = 50,
        progress: Progress | None = None,
        recipe: str = "plain",
    ) -> SearchResult:
        """Top-k of the dataset for a dataset image (excluded from its own results) or an upload.

        An upload is expanded (DBA, QE) with its neighbours in the dataset, never added to it.
        """
        if metric not in METRICS:
            raise UnknownNameError("metric", metric, METRICS)
        spec = get_model_spec(model)
        spec.layer(layer)
        chosen = recipe_at(recipe, spec.layer_names, layer)
        folder = self.dataset(dataset)
        if not 1 <= k <= len(folder.paths):
            raise ValueError(f"k must be between 1 and {len(folder.paths)}, got {k}")
        base, database = self.space(dataset, spec.key, layer, chosen, progress)
        if query_image is not None:
            read = layers_read(chosen, spec.layer_names, layer)
            views = self.embed(query_image, spec.key, read, chosen)
            query_base = base_vectors(chosen, views, spec.layer_names, layer)
            exclude, query_label = None, None
        elif query_index is not None:
            exclude = self.check_index(dataset, query_index)
            query_base = base[exclude : exclude + 1]
            labelled = self.catalog.get(dataset).labelled
            query_label = folder.classes[folder.labels[exclude]] if labelled else None
        else:
            raise ValueError("Give a query: a dataset image index or an image file.")
        left_out = None if exclude is None else np.array([exclude])
        query = query_vectors(chosen, query_base, base, database, left_out)[0]
        where = (dataset, spec.key, layer, chosen.name)
        ranking = self._rank(query, database, metric, k, exclude, where)
        sample = (  # kept for large sets only: a small one's None would evict a large one's
            self._scale_samples.get(where, lambda: scale_sample(database))
            if sampled(len(database))
            else None
        )
        similarity = relative_similarity(
            ranking.distances, scale_distances(query, database, metric, exclude, sample)
        )
        hits = ranked_hits(folder, ranking, similarity, query_label)
        if query_label is None:
            return SearchResult(None, hits, None, None, labelled=query_image is not None)
        scores = query_scores(np.array([hit.label for hit in hits]), query_label)
        possible = int(np.sum(folder.labels == folder.labels[query_index])) - 1
        return SearchResult(query_label, hits, scores["p_at_k"], scores["weighted_score"], possible)

    def _rank(
        self,
        query: np.ndarray,
        database: np.ndarray,
        metric: str,
        k: int,
        exclude: int | None,
        where: tuple[str, str, str, str],
    ) -> Ranking:
        """Today's exact scan, or above ``vector_index.EXACT_MAX`` vectors a FAISS index (the
        one ``python -m convenet index`` saved for plain features, else built here once)."""
        if not uses_index(len(database), metric):
            return rank(query, database, metric, k, exclude=exclude)

        dataset, model, layer, recipe = where

        def build() -> VectorIndex:
            for root in (self.root, self.cache_root) if recipe == "plain" else ():
                saved = index_path(root, dataset, model, layer, metric)
                if saved.is_file():
                    index, _ = load_index(saved)
                    if index.n == len(database):
                        return index
            return index_of(database, metric)

        index = self._indexes.get((*where, metric), build)
        indices, distances = index.search(query, k, exclude)
        return Ranking(indices[0], distances[0])

    # -- explanations -----------------------------------------------------------------
    def quality(
        self, dataset: str, metric: str, k: int = 10, recipe: str = "plain"
    ) -> dict[str, dict[str, float]]:
        """precision@k averaged over every query, per model and layer with features here.

        Cached per (dataset, metric, k, recipe, models with features): features never change
        once stored, and the heatmap is the slowest view.
        """
        chosen = get_recipe(recipe)
        self.check_labelled(dataset)
        size = len(self.dataset(dataset).paths)
        if size > QUALITY_MAX:
            raise ValueError(
                f"The overview ranks every image against every other, too slow for {size:,} "
                f"images (at most {QUALITY_MAX:,}); search, the map and compare work."
            )
        models = tuple(spec.key for spec in MODELS.values() if self.has_features(dataset, spec.key))
        key = (dataset, metric, k, chosen.name, models)
        if key not in self._quality:
            self._quality[key] = self._quality_grid(dataset, metric, k, chosen, models)
        return self._quality[key]

    def _quality_grid(
        self, dataset: str, metric: str, k: int, recipe: Recipe, models: tuple[str, ...]
    ) -> dict[str, dict[str, float]]:
        return {
            model: {
                layer: self.precision_at(dataset, model, layer, metric, recipe.name, k)
                for layer in get_model_spec(model).layer_names
            }
            for model in models
        }

    def step_effects(
        self, dataset: str, model: str, layer: str, metric: str, recipe: str, k: int = 10
    ) -> list[tuple[str, float]]:
        """What ``recipe`` and each of its steps alone change in precision@k over plain at this
        view (leave-one-out over every image): ``[(recipe, change), (step, change), ...]``,
        since a trick can also hurt. Empty for plain, an unlabelled dataset, or one of more
        than ``CKA_MAX`` images (the search would wait for it)."""
        spec = get_model_spec(model)
        spec.layer(layer)
        chosen = recipe_at(recipe, spec.layer_names, layer)
        if chosen.name == "plain" or not self.spec(dataset).labelled:
            return []
        if len(self.dataset(dataset)) > CKA_MAX:
            return []
        plain = self.precision_at(dataset, model, layer, metric, "plain", k)
        steps = single_steps(chosen)
        names = (chosen.name, *steps) if steps != (chosen.name,) else steps
        return [
            (name, self.precision_at(dataset, model, layer, metric, name, k) - plain)
            for name in names
        ]

    @staticmethod
    def searches_alike(model: str, layer: str, recipe: str) -> tuple[str, ...]:
        """The model's other curated layers that search exactly like ``layer`` under
        ``recipe`` (with fuse, the last three read the same layers)."""
        spec = get_model_spec(model)
        spec.layer(layer)
        return layers_alike(recipe, spec.layer_names, layer)

    def precision_at(
        self, dataset: str, model: str, layer: str, metric: str, recipe: str, k: int = 10
    ) -> float:
        """Leave-one-out precision@k of one view, as the quality overview scores it (cached)."""
        spec = get_model_spec(model)
        spec.layer(layer)
        chosen = recipe_at(recipe, spec.layer_names, layer)

        def build() -> float:
            views = self.views(dataset, spec.key)
            database, queries = leave_one_out(chosen, views, spec.layer_names, layer)
            labels = self.dataset(dataset).labels
            return float(per_query_precision(database, labels, metric, k, queries).mean())

        return self._precisions.get((dataset, spec.key, layer, metric, chosen.name, k), build)

    def compare(
        self, dataset: str, query_index: int, metric: str, k: int = 10
    ) -> list[dict[str, Any]]:
        """This query's precision@k in every model and layer with features here."""
        self.check_labelled(dataset)
        rows = []
        for spec in MODELS.values():
            if not self.has_features(dataset, spec.key):
                continue
            for layer in spec.layers:
                result = self.search(dataset, spec.key, layer.name, metric, query_index, k=k)
                rows.append(
                    {
                        "key": spec.key,
                        "model": spec.title,
                        "layer": layer.name,
                        "description": layer.description,
                        "p_at_k": result.p_at_k,
                    }
                )
        return rows

    def layer_similarity(self, dataset: str) -> LayerSimilarity:
        """Linear CKA between every (model, layer) with features on this dataset: which layers
        arrange its images alike (a seeded sample of CKA_MAX images on a larger set)."""
        keys = tuple(spec.key for spec in MODELS.values() if self.has_features(dataset, spec.key))
        if not keys:
            raise ValueError(f"No model has features of {dataset} here yet.")

        def build() -> LayerSimilarity:
            n = len(self.dataset(dataset).paths)
            rows = np.arange(n)
            if n > CKA_MAX:
                rows = np.sort(np.random.default_rng(0).choice(n, CKA_MAX, replace=False))
            pairs = [(key, layer) for key in keys for layer in MODELS[key].layer_names]
            feats = [self.features(dataset, key, layer)[rows] for key, layer in pairs]
            return LayerSimilarity(pairs, linear_cka_matrix(feats))

        return self._similarities.get((dataset, keys), build)

    def check_labelled(self, dataset: str) -> None:
        """Scores count results of the query's class: a set without classes has none to count."""
        if not self.catalog.get(dataset).labelled:
            raise ValueError(UNLABELLED)

    def chance(self, dataset: str) -> float:
        """precision@k a random ranking would get on this dataset."""
        return chance_precision(self.dataset(dataset).labels)

    def map_rows(self, dataset: str) -> np.ndarray:
        """The images the map shows: all of them, or a seeded sample of MAP_MAX (in dataset
        order) when there are more, since t-SNE of 1e5 points would take hours."""
        n = len(self.dataset(dataset).paths)
        if n <= MAP_MAX:
            return np.arange(n)
        return np.sort(np.random.default_rng(0).choice(n, MAP_MAX, replace=False))

    def projection(self, dataset: str, model: str, layer: str, method: str = "tsne") -> np.ndarray:
        """2-D map of the ``map_rows`` images in a layer's feature space (cached per view)."""
        feats = np.ascontiguousarray(self.features(dataset, model, layer)[self.map_rows(dataset)])
        # Keyed by the view and a digest of what it maps: a changed dataset is never served an
        # old map, and no key pins a copy of a feature matrix (they are up to 25 MB each).
        digest = feature_digest(feats)
        key = (dataset, model, layer, method, digest)
        shipped = self._shipped_maps(dataset).get(f"{model}/{layer}/{method}")
        if shipped is not None and shipped[0] == digest:
            return shipped[1]
        return projection_of(key, feats, method)

    def channel_peaks(
        self, dataset: str, model: str, progress: Progress | None = None
    ) -> dict[str, LayerPeaks]:
        """Per curated layer, each channel's strongest images and where on them it fires: the
        peaks shipped beside a shipped dataset's features when they match them, else one pass
        of the model over the dataset (once per dataset, model and content)."""
        spec = get_model_spec(model)
        digest = self.peaks_digest(dataset, spec.key, progress)

        def build() -> dict[str, LayerPeaks]:
            shipped = read_peaks(self.root / dataset / PEAKS_FILE, spec.key, digest)
            if set(spec.layer_names) <= set(shipped):  # every curated layer, else computed
                return shipped
            paths = self.dataset(dataset).paths
            return dataset_peaks(spec.key, paths, spec.layer_names, progress=progress)

        return self._peaks.get((dataset, spec.key, digest), build)

    def peaks_digest(self, dataset: str, model: str, progress: Progress | None = None) -> str:
        """What a dataset's peaks for ``model`` are checked by: a digest of its first curated
        layer's features (new images or weights change it; ``progress`` while they are
        extracted, on a dataset's first visit)."""
        first = get_model_spec(model).layer_names[0]
        return feature_digest(self.features(dataset, model, first, progress))

    def _shipped_maps(self, dataset: str) -> dict[str, tuple[str, np.ndarray]]:
        """The maps shipped beside a dataset's features (``scripts/build_maps.py``), by
        "model/layer/method": (digest of the features they map, points). Empty when none."""
        with self._lock:
            if dataset not in self._maps:
                self._maps[dataset] = read_maps(self.root / dataset / MAPS_FILE)
            return self._maps[dataset]


@dataclass(frozen=True)
class LayerSimilarity:
    """CKA between layers: ``pairs[i]`` is (model key, layer) of row and column i."""

    pairs: list[tuple[str, str]]
    matrix: np.ndarray


def spread(rows: list[int], most: int = BROWSE_MAX) -> list[int]:
    """At most ``most`` of ``rows``, evenly spaced and in order, so every part of a large
    dataset (every class) keeps its share of a browsing gallery."""
    if len(rows) <= most:
        return rows
    return [rows[i] for i in np.linspace(0, len(rows) - 1, most).astype(np.int64)]


def browse_label(shown: int, total: int) -> str:
    """A browsing gallery's title: says when it lists a spread of a larger dataset."""
    if shown == total:
        return "Dataset images"
    return f"Dataset images: {shown:,} of {total:,}, evenly spread"


@lru_cache(maxsize=16)
def _scan(images_dir: Path, min_classes: int) -> ImageFolder:
    return scan_image_folder(images_dir, min_classes)

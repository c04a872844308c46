"""Command line: list models, evaluate retrieval, search a folder, precompute and sync features.

Every error a user can cause (unknown name, empty folder, unreadable image, missing weights)
ends with one clear line on stderr and a non-zero exit, never a stack trace.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convenet.errors import ImageLoadError, UnknownNameError, WeightsUnavailableError
from convenet.features.extract import BATCH_SIZE, POOLINGS, View
from convenet.models.registry import DEFAULT_MODEL, MODELS, ModelSpec
from convenet.paths import PRECOMPUTED_DIR
from convenet.search.metrics import METRICS
from convenet.search.recipes import RECIPES
from convenet.search.vector_index import NPROBE

if TYPE_CHECKING:
    from convenet.search.recipes import Recipe, Views

SHARDS_DIR = ".convenet"


def _progress_bar(description: str) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=description, unit="img", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)
        if done >= total:
            bar["bar"].close()

    return update


def cmd_models(args: argparse.Namespace) -> int:
    from convenet.models.loading import weights_status

    rows = [
        {
            "key": spec.key,
            "title": spec.title,
            "input_size": spec.input_size,
            "params": spec.params,
            "depth": spec.depth,
            "year": spec.year,
            "weights": weights_status(spec),
            "layers": [
                {"name": layer.name, "description": layer.description} for layer in spec.layers
            ],
        }
        for spec in MODELS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['key']:<20} {row['title']:<18} input {row['input_size']:>3}  "
            f"{row['params'] / 1e6:6.1f}M params  {row['depth']:>3} layers  "
            f"weights: {row['weights']}"
        )
        for layer in row["layers"]:
            print(f"    {layer['name']:<24} {layer['description']}")
    return 0


def _choices(value: str, known: Sequence[str], kind: str, where: str = "") -> list[str]:
    """``[value]``, or every known name for ``all``."""
    if value == "all":
        return list(known)
    if value not in known:
        raise UnknownNameError(kind, value, [*known, "all"], where)
    return [value]


def _stored_views(images_dir: Path, model: str, root: Path, name: str | None) -> Views | None:
    """The stored feature views when ``images_dir`` is a shipped dataset's folder, or the folder
    that ``precompute --images DIR --name NAME --root ROOT`` stored, else None."""
    from convenet.data.catalog import folder_spec, shipped
    from convenet.playground import Playground

    pg = Playground(
        root, datasets=[*shipped(root), *([folder_spec(images_dir, name)] * bool(name))]
    )
    for name in pg.datasets():
        if pg.images_dir(name).resolve() == images_dir.resolve() and pg.has_features(name, model):
            return pg.views(name, model)
    return None


def _computed_views(
    spec: ModelSpec, paths: Sequence[Path], recipes: Sequence[Recipe], layers: Sequence[str]
) -> Views:
    """Every view the recipes read, extracted from the images (one pass per view)."""
    from convenet.features.extract import extract_features

    found = {
        view: extract_features(
            spec.key,
            paths,
            layers,
            view.pooling,
            progress=_progress_bar(f"{spec.title} {view.variant or ''}"),
            flip=view.flip,
        ).features
        for view in dict.fromkeys(v for recipe in recipes for v in recipe.views)
    }
    return lambda view, layer: found[view][layer].astype("float32")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from convenet.data.datasets import scan_image_folder
    from convenet.models.loading import get_model_spec
    from convenet.search.recipes import RECIPES, evaluate_recipe, layers_read, recipe_at

    spec = get_model_spec(args.model)
    layers = _choices(args.layer, spec.layer_names, "layer", f" for model {spec.title}")
    metrics = _choices(args.metric, METRICS, "metric")
    names = _choices(args.recipe, list(RECIPES), "recipe")
    recipes = [recipe_at(name, spec.layer_names, layer) for layer in layers for name in names]
    images_dir = Path(args.images)
    folder = scan_image_folder(images_dir)
    views = _stored_views(images_dir, spec.key, Path(args.root), args.name)
    if views is None:
        needed = {
            name
            for layer, recipe in itertools.product(layers, recipes)
            for name in layers_read(recipe, spec.layer_names, layer)
        }
        wanted = [name for name in spec.layer_names if name in needed]
        views = _computed_views(spec, folder.paths, recipes, wanted)
    rows = []
    for layer, name, metric in itertools.product(layers, names, metrics):
        recipe = recipe_at(name, spec.layer_names, layer)
        scores = evaluate_recipe(
            recipe, views, spec.layer_names, layer, folder.labels, metric, args.k, folder.classes
        )
        rows.append({"layer": layer, "recipe": recipe.name, "metric": metric, **scores.to_dict()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{spec.title}, {len(folder.paths)} images in {len(folder.classes)} classes, k={args.k}")
    print(
        f"{'layer':<24} {'recipe':<6} {'metric':<12} {'p_at_k':>7} {'map_at_k':>9} "
        f"{'weighted':>9} {'chance':>7}"
    )
    for row in rows:
        print(
            f"{row['layer']:<24} {row['recipe']:<6} {row['metric']:<12} {row['p_at_k']:7.3f} "
            f"{row['map_at_k']:9.3f} {row['weighted_score']:9.3f} {row['chance']:7.3f}"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from convenet.data.datasets import scan_image_folder
    from convenet.models.loading import get_model_spec
    from convenet.playground import SearchResult, ranked_hits
    from convenet.search.calibration import relative_similarity, scale_distances
    from convenet.search.ranking import rank
    from convenet.search.recipes import (
        base_vectors,
        database_vectors,
        layers_read,
        query_vectors,
        recipe_at,
    )

    spec = get_model_spec(args.model)
    spec.layer(args.layer)
    if args.metric not in METRICS:  # checked here, not by argparse: the one wording for names
        raise UnknownNameError("metric", args.metric, METRICS)
    recipe = recipe_at(args.recipe, spec.layer_names, args.layer)
    if args.pooling != "avg":
        if recipe.name != "plain":
            raise ValueError("--pooling goes with the plain recipe; the others choose their own")
        recipe = replace(recipe, pooling=args.pooling)
    images_dir = Path(args.images)
    folder = scan_image_folder(images_dir)
    layers = layers_read(recipe, spec.layer_names, args.layer)
    own = _computed_views(spec, [Path(args.query)], [recipe], layers)
    base = base_vectors(
        recipe, _computed_views(spec, folder.paths, [recipe], layers), spec.layer_names, args.layer
    )
    database = database_vectors(recipe, base)
    query_base = base_vectors(recipe, own, spec.layer_names, args.layer)
    query = query_vectors(recipe, query_base, base, database)[0]
    result = rank(query, database, args.metric, args.k)
    # The app's scale: set by the query's own distances to every image of the folder.
    similarities = relative_similarity(
        result.distances, scale_distances(query, database, args.metric)
    )
    hits = ranked_hits(folder, result, similarities, query_label=None)
    rows = SearchResult(None, hits, None, None).rows(images_dir)  # as the app and API give them
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['rank']:>3}  {row['similarity']:6.2f}%  {row['class']:<16} {row['image']}")
    return 0


def cmd_precompute(args: argparse.Namespace) -> int:
    from convenet.data.catalog import content_hash
    from convenet.data.datasets import DATASETS, get_dataset
    from convenet.features.precompute import precompute_folder
    from convenet.models.loading import get_model_spec, weights_status
    from convenet.search.recipes import RECIPE_VIEWS

    if args.images and not args.name:
        return _precompute_shards(args)
    if args.out:
        raise ValueError("--name stores a folder as a dataset in --root; --out writes shards")
    if args.images:
        jobs = [(args.name, Path(args.images))]
        fingerprint = content_hash(Path(args.images))  # what the app checks before reading them
    else:
        names = list(DATASETS) if args.dataset == "all" else [args.dataset]
        jobs = [(name, get_dataset(name).root) for name in names]
        fingerprint = ""
    if args.model in (None, "all"):
        models = [spec for spec in MODELS.values() if weights_status(spec) != "download"]
    else:
        models = [get_model_spec(args.model)]
    views = [View(args.pooling, args.flip)]
    if args.recipes:
        views += [view for view in RECIPE_VIEWS if view not in views]
    root = Path(args.root)
    for dataset, images_dir in jobs:
        for spec, view in itertools.product(models, views):
            path, computed = precompute_folder(
                images_dir,
                dataset,
                spec.key,
                root,
                args.layers,
                view,
                force=args.force,
                progress=_progress_bar(f"{dataset} x {spec.title} {view.variant or ''}"),
                fingerprint=fingerprint,
            )
            print(f"{'wrote' if computed else 'valid, skipped'} {path}")
    return 0


def default_out(images: Path, model: str, view: View) -> Path:
    """Where ``precompute --images DIR`` puts its shards without ``--out``: beside the images, in
    a hidden folder (which the image walk passes over), one per model and view."""
    return Path(images) / SHARDS_DIR / ".".join(filter(None, (model, view.variant)))


def _precompute_shards(args: argparse.Namespace) -> int:
    """``--images`` without ``--name``: stream a folder of any size into resumable shards
    (local or on Ray), in ``--out`` or the default beside the images."""
    from convenet.features.shards import precompute_shards
    from convenet.models.loading import get_model_spec

    if args.model == "all" or args.recipes:
        raise ValueError("shards hold one model and view at a time: name --model")
    spec = get_model_spec(args.model or DEFAULT_MODEL)
    view = View(args.pooling, args.flip)
    out = Path(args.out) if args.out else default_out(Path(args.images), spec.key, view)
    manifest = precompute_shards(
        Path(args.images),
        out,
        spec.key,
        args.layers,
        view,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        engine=args.engine,
        force=args.force,
        progress=_progress_bar(f"{spec.title} -> {out}"),
        ray_actors=args.actors,
    )
    print(f"{manifest['n_images']} images in {len(manifest['shards'])} shards in {out}")
    if manifest["skipped"]:
        shown = "; ".join(f"{s['image']} ({s['reason']})" for s in manifest["skipped"][:5])
        more = len(manifest["skipped"]) - 5
        print(
            f"skipped {len(manifest['skipped'])} that could not be read: {shown}"
            + (f"; and {more} more (all in {out / 'manifest.json'})" if more > 0 else "")
        )
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from convenet.features.shards import layer_chunks
    from convenet.search.vector_index import EXACT_MAX, INDEX_METRICS, build_index, save_index

    metrics = _choices(args.metric, INDEX_METRICS, "metric")
    exact_max = EXACT_MAX if args.exact_max is None else args.exact_max
    if args.shards:
        chunks, n, dim = layer_chunks(Path(args.shards), args.layer)
        about = {"shards": str(Path(args.shards).resolve()), "layer": args.layer}
        targets = {m: Path(args.shards) / "index" / f"{args.layer}.{m}.faiss" for m in metrics}
    else:
        from convenet.models.loading import get_model_spec
        from convenet.playground import Playground
        from convenet.search.vector_index import index_path

        spec = get_model_spec(args.model)
        spec.layer(args.layer)
        pg = Playground(Path(args.root))
        rows = pg.features(args.dataset, spec.key, args.layer)
        n, dim = rows.shape
        chunks = lambda: [rows]  # noqa: E731 - one chunk: the whole in-memory matrix
        about = {"dataset": args.dataset, "model": spec.key, "layer": args.layer}
        root = Path(args.root)
        targets = {m: index_path(root, args.dataset, spec.key, args.layer, m) for m in metrics}
    for metric, path in targets.items():
        index = build_index(chunks, n, dim, metric, exact_max, nprobe=args.nprobe)
        save_index(index, path, {**about, "recipe": "plain"})
        print(f"{index.kind} {metric} index of {n} x {dim}: {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from convenet.data.datasets import import_hub_dataset, import_image_folder, safe_name

    if safe_name(args.name) != args.name:
        raise ValueError(f"--name {args.name!r}: use letters, digits, - and _ only")
    dest = Path(args.root) / args.name / "images"
    classes = None if args.classes == 0 else args.classes
    if args.folder:
        folder = import_image_folder(Path(args.folder), dest, classes, args.per_class, args.seed)
    else:
        import logging

        # Its retry warnings would bury the one line that says what went wrong.
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
        folder = import_hub_dataset(
            args.hub,
            dest,
            classes,
            args.per_class,
            args.seed,
            split=args.split,
            image_column=args.image_column,
            label_column=args.label_column,
            revision=args.revision,
        )
    print(f"{len(folder)} images in {len(folder.classes)} classes in {dest}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from convenet.data.hub import push

    url = push(Path(args.root), args.repo_id, private=args.private)
    print(f"pushed {args.root} to {url}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from convenet.data.hub import hub_settings, pull

    repo_id, revision, _ = hub_settings()
    path = pull(args.repo_id or repo_id, args.revision or revision)
    print(path)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from convenet.data.space import check_repo_id, deploy, stage

    space = check_repo_id(args.space, "--space")
    features = args.features_repo and check_repo_id(args.features_repo, "--features-repo")
    if args.dry_run != bool(args.out):
        raise ValueError("--dry-run and --out go together: --dry-run --out DIR stages the files")
    if args.dry_run:
        staged = stage(Path(args.out), features_repo=features)
        print(f"staged {staged.describe()} for {space} in {args.out}; nothing was uploaded")
        if staged.left_out:
            print(
                f"left out of the card (not checked without network): {', '.join(staged.left_out)}"
            )
        return 0
    done = deploy(space, features_repo=features, private=args.private)
    if done.features_url:
        print(f"published the features to {done.features_url}")
    print(f"deployed {done.staged.describe()} to {done.url}")
    if done.staged.left_out:
        print(f"left out of the card (not on the Hub): {', '.join(done.staged.left_out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convenet", description="ConvNet Playground: CNN layers as image search."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list models, their layers and weight availability")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=cmd_models)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--images", required=True, help="folder with one sub-folder per class")
        p.add_argument("--model", required=True, help="model key or title (see `models`)")
        p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")

    evaluate = sub.add_parser(
        "evaluate", help="retrieval quality (precision@k, mAP@k) per layer and recipe"
    )
    common(evaluate)
    evaluate.add_argument("--layer", default="all", help="curated layer name, or all")
    evaluate.add_argument(
        "--root",
        default=str(PRECOMPUTED_DIR),
        help="feature store to read stored views from (default: the shipped one)",
    )
    evaluate.add_argument(
        "--name", help="the dataset name the folder was precomputed under (precompute --name)"
    )
    evaluate.add_argument("--recipe", default="plain", help="search recipe name, or all")
    evaluate.add_argument("--metric", default="cosine", help="distance metric, or all")
    evaluate.add_argument(
        "--k", type=int, default=10, help="results per query scored (default: %(default)s)"
    )
    evaluate.set_defaults(func=cmd_evaluate)

    search = sub.add_parser(
        "search",
        help="rank a folder's images by similarity to a query",
        description="Rank the images of --images by their similarity to --query, as the app does.",
    )
    common(search)
    search.add_argument("--query", required=True, help="query image file")
    search.add_argument(
        "--layer", required=True, help="one of the model's curated layers (see `models`)"
    )
    search.add_argument(
        "--metric",
        default="cosine",
        metavar="METRIC",
        help=f"distance metric, one of: {', '.join(METRICS)} (default: %(default)s)",
    )
    search.add_argument(
        "--recipe",
        default="plain",
        metavar="RECIPE",
        help=f"search recipe, one of: {', '.join(RECIPES)} (default: %(default)s)",
    )
    search.add_argument(
        "--pooling",
        default="avg",
        choices=POOLINGS,
        help="how a feature map becomes a vector (plain recipe only; default: %(default)s)",
    )
    search.add_argument("--k", type=int, default=50, help="results to list (default: %(default)s)")
    search.set_defaults(func=cmd_search)

    pre = sub.add_parser(
        "precompute",
        help="extract and store features of every curated layer",
        description=(
            "--dataset: features of registered datasets into the feature store (--root). "
            "--images DIR: stream a folder of any size into resumable feature shards, in --out "
            f"(default: DIR/{SHARDS_DIR}/MODEL); with --name, store it as that dataset in --root "
            "instead (one file per model, what the app reads)."
        ),
    )
    source = pre.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a registered dataset name, or all")
    source.add_argument(
        "--images", help="a folder of images (one sub-folder per class, or loose: unlabelled)"
    )
    pre.add_argument("--name", help="store the --images folder as this dataset in --root")
    pre.add_argument(
        "--model",
        help=f"model key, or all (those with weights here; the default, but {DEFAULT_MODEL} "
        "for shards)",
    )
    pre.add_argument("--layers", nargs="*", help="layer names (default: the curated layers)")
    pre.add_argument(
        "--pooling", default="avg", choices=POOLINGS, help="how a feature map becomes a vector"
    )
    pre.add_argument("--flip", action="store_true", help="of the left-right mirrored images")
    pre.add_argument(
        "--recipes", action="store_true", help="also every view the search recipes need"
    )
    pre.add_argument("--root", default=str(PRECOMPUTED_DIR), help="feature store folder")
    pre.add_argument("--force", action="store_true", help="recompute even if valid")
    pre.add_argument(
        "--out",
        help=f"the shards' folder (default: DIR/{SHARDS_DIR}/MODEL[.VIEW] beside the --images)",
    )
    pre.add_argument("--engine", default="local", choices=["local", "ray"], help="with --out")
    pre.add_argument("--shard-size", type=int, default=1024, help="images per shard (--out)")
    pre.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per forward pass")
    pre.add_argument("--actors", type=int, help="Ray actors (default: one per CPU Ray has)")
    pre.set_defaults(func=cmd_precompute)

    index = sub.add_parser("index", help="build a FAISS index of a layer's features")
    found = index.add_mutually_exclusive_group(required=True)
    found.add_argument("--dataset", help="a dataset of the feature store (with --model)")
    found.add_argument("--shards", help="a folder written by precompute --out")
    index.add_argument("--model", default=DEFAULT_MODEL)
    index.add_argument("--layer", default="top_conv")
    index.add_argument("--metric", default="all", help="cosine, euclidean or all")
    index.add_argument("--root", default=str(PRECOMPUTED_DIR), help="feature store folder")
    index.add_argument("--exact-max", type=int, help="exact index up to this many vectors")
    index.add_argument("--nprobe", type=int, default=NPROBE, help="IVF cells visited per query")
    index.set_defaults(func=cmd_index)

    imp = sub.add_parser("import", help="sample a dataset from the Hub or a folder")
    origin = imp.add_mutually_exclusive_group(required=True)
    origin.add_argument("--hub", metavar="REPO", help="a Hub image dataset stored as parquet")
    origin.add_argument("--folder", help="a folder with one sub-folder of images per class")
    imp.add_argument("--name", required=True, help="dataset name (folder under --root)")
    imp.add_argument("--classes", type=int, default=10, help="classes to sample (0: all)")
    imp.add_argument("--per-class", type=int, default=20, help="images per class")
    imp.add_argument("--seed", type=int, default=0)
    imp.add_argument("--split", default="train")
    imp.add_argument("--image-column", default="image")
    imp.add_argument("--label-column", default="label")
    imp.add_argument("--revision")
    imp.add_argument("--root", default=str(PRECOMPUTED_DIR), help="where datasets live")
    imp.set_defaults(func=cmd_import)

    push = sub.add_parser("push", help="publish a feature store as a Hugging Face Hub dataset")
    push.add_argument("--repo-id", required=True, help="Hub dataset to create or update")
    push.add_argument("--root", default=str(PRECOMPUTED_DIR), help="feature store folder")
    push.add_argument("--private", action="store_true", help="create the dataset private")
    push.set_defaults(func=cmd_push)

    dep = sub.add_parser(
        "deploy",
        help="publish the app as a Hugging Face Space",
        description=(
            "Create or update the Space OWNER/NAME with exactly the files it needs (app, code, "
            "shipped features and images, card). The token comes from HF_TOKEN or `hf auth login`."
        ),
    )
    dep.add_argument("--space", required=True, metavar="OWNER/NAME", help="the Space to publish")
    dep.add_argument(
        "--features-repo",
        metavar="OWNER/NAME",
        help="first publish the shipped features as this Hub dataset; the Space then reads it",
    )
    dep.add_argument(
        "--private", action="store_true", help="create the Space (and dataset) private"
    )
    dep.add_argument(
        "--dry-run", action="store_true", help="stage the files into --out, no network"
    )
    dep.add_argument("--out", metavar="DIR", help="with --dry-run: a new or empty folder")
    dep.set_defaults(func=cmd_deploy)

    pull = sub.add_parser("pull", help="download the configured Hub dataset into the local cache")
    pull.add_argument("--repo-id", help="Hub dataset (default: CONVENET_HUB_REPO or the app's)")
    pull.add_argument("--revision", help="branch, tag or commit (default: CONVENET_HUB_REVISION)")
    pull.set_defaults(func=cmd_pull)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImageLoadError, WeightsUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

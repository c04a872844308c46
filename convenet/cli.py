"""Command line: list models, evaluate retrieval, search a folder, precompute and sync features.

Every error a user can cause (unknown name, empty folder, unreadable image, missing weights)
ends with one clear line on stderr and a non-zero exit, never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convenet.errors import WeightsUnavailableError
from convenet.images import ImageLoadError
from convenet.metrics import METRICS
from convenet.paths import PRECOMPUTED_DIR
from convenet.registry import MODELS


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
    from convenet.models import weights_status

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


def _choices(value: str, known: Sequence[str], what: str) -> list[str]:
    if value == "all":
        return list(known)
    if value not in known:
        raise ValueError(f"Unknown {what} {value!r}; choose one of: {', '.join(known)}, all")
    return [value]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from convenet.datasets import scan_image_folder
    from convenet.evaluation import evaluate_retrieval
    from convenet.features import extract_features
    from convenet.models import get_model_spec

    spec = get_model_spec(args.model)
    layers = _choices(args.layer, spec.layer_names, f"layer of {spec.title}")
    metrics = _choices(args.metric, METRICS, "metric")
    folder = scan_image_folder(Path(args.images))
    feats = extract_features(
        spec.key, folder.paths, layers, args.pooling, progress=_progress_bar(spec.title)
    )
    rows = []
    for layer in layers:
        for metric in metrics:
            scores = evaluate_retrieval(
                feats.features[layer], folder.labels, metric, args.k, folder.classes
            )
            rows.append({"layer": layer, "metric": metric, **scores.to_dict()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{spec.title}, {len(folder.paths)} images in {len(folder.classes)} classes, k={args.k}")
    print(
        f"{'layer':<24} {'metric':<12} {'p_at_k':>7} {'map_at_k':>9} {'weighted':>9} {'chance':>7}"
    )
    for row in rows:
        print(
            f"{row['layer']:<24} {row['metric']:<12} {row['p_at_k']:7.3f} {row['map_at_k']:9.3f} "
            f"{row['weighted_score']:9.3f} {row['chance']:7.3f}"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from convenet.calibration import calibrated_similarity, reference_distances
    from convenet.datasets import scan_image_folder
    from convenet.features import extract_features
    from convenet.models import get_model_spec
    from convenet.ranking import rank

    spec = get_model_spec(args.model)
    spec.layer(args.layer)
    _choices(args.metric, METRICS, "metric")
    folder = scan_image_folder(Path(args.images))
    query = extract_features(spec.key, [Path(args.query)], [args.layer], args.pooling)
    feats = extract_features(
        spec.key, folder.paths, [args.layer], args.pooling, progress=_progress_bar(spec.title)
    )
    data = feats.features[args.layer]
    result = rank(query.features[args.layer][0], data, args.metric, args.k)
    # The app's scale: placed among the distances between the folder's own images.
    similarities = calibrated_similarity(result.distances, reference_distances(data, args.metric))
    rows = [
        {
            "rank": position + 1,
            "path": str(folder.paths[index]),
            "class": folder.classes[folder.labels[index]],
            "similarity": round(float(similarity), 2),
            "distance": float(distance),
        }
        for position, (index, distance, similarity) in enumerate(
            zip(result.indices, result.distances, similarities, strict=True)
        )
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['rank']:>3}  {row['similarity']:6.2f}%  {row['class']:<16} {row['path']}")
    return 0


def cmd_precompute(args: argparse.Namespace) -> int:
    from convenet.datasets import DATASETS, get_dataset
    from convenet.models import get_model_spec, weights_status
    from convenet.precompute import precompute_folder

    if args.images:
        images_dir = Path(args.images)
        jobs = [(args.name or images_dir.name, images_dir)]
    else:
        names = list(DATASETS) if args.dataset == "all" else [args.dataset]
        jobs = [(name, get_dataset(name).root) for name in names]
    if args.model == "all":
        models = [spec for spec in MODELS.values() if weights_status(spec) != "download"]
    else:
        models = [get_model_spec(args.model)]
    root = Path(args.root)
    for dataset, images_dir in jobs:
        for spec in models:
            path, computed = precompute_folder(
                images_dir,
                dataset,
                spec.key,
                root,
                args.layers,
                args.pooling,
                force=args.force,
                progress=_progress_bar(f"{dataset} x {spec.title}"),
            )
            print(f"{'wrote' if computed else 'valid, skipped'} {path}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from convenet.hub import push

    url = push(Path(args.root), args.repo_id, private=args.private)
    print(f"pushed {args.root} to {url}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from convenet.hub import hub_settings, pull

    repo_id, revision, _ = hub_settings()
    path = pull(args.repo_id or repo_id, args.revision or revision)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m convenet", description="ConvNet Playground: CNN layers as image search."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list models, their layers and weight availability")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--images", required=True, help="folder with one sub-folder per class")
        p.add_argument("--model", required=True, help="model key or title (see `models`)")
        p.add_argument("--pooling", default="avg", choices=["avg", "max", "gem", "flat"])
        p.add_argument("--json", action="store_true")

    evaluate = sub.add_parser("evaluate", help="retrieval quality (precision@k, mAP@k) per layer")
    common(evaluate)
    evaluate.add_argument("--layer", default="all", help="curated layer name, or all")
    evaluate.add_argument("--metric", default="cosine", help="distance metric, or all")
    evaluate.add_argument("--k", type=int, default=10)
    evaluate.set_defaults(func=cmd_evaluate)

    search = sub.add_parser("search", help="rank a folder's images by similarity to a query")
    common(search)
    search.add_argument("--query", required=True, help="query image file")
    search.add_argument("--layer", required=True)
    search.add_argument("--metric", default="cosine")
    search.add_argument("--k", type=int, default=50)
    search.set_defaults(func=cmd_search)

    pre = sub.add_parser("precompute", help="extract and store features of every curated layer")
    source = pre.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a registered dataset name, or all")
    source.add_argument("--images", help="a folder with one sub-folder per class")
    pre.add_argument("--name", help="dataset name to store an --images folder under")
    pre.add_argument("--model", default="all", help="model key, or all (those with weights here)")
    pre.add_argument("--layers", nargs="*", help="layer names (default: the curated layers)")
    pre.add_argument("--pooling", default="avg", choices=["avg", "max", "gem", "flat"])
    pre.add_argument("--root", default=str(PRECOMPUTED_DIR), help="feature store folder")
    pre.add_argument("--force", action="store_true", help="recompute even if valid")
    pre.set_defaults(func=cmd_precompute)

    push = sub.add_parser("push", help="publish a feature store as a Hugging Face Hub dataset")
    push.add_argument("--repo-id", required=True)
    push.add_argument("--root", default=str(PRECOMPUTED_DIR))
    push.add_argument("--private", action="store_true")
    push.set_defaults(func=cmd_push)

    pull = sub.add_parser("pull", help="download the configured Hub dataset into the local cache")
    pull.add_argument("--repo-id")
    pull.add_argument("--revision")
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

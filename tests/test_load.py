"""Load: 20 concurrent gradio_client users with a realistic mix, against the real app.

Every request must succeed within its bound, and the server's memory must settle back near its
warm level afterwards (caches are bounded; a leak per request would show up as growth).
Run with ``-s`` to see the latency and memory numbers.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from convenet.search.metrics import METRICS
from tests.app_server import AppProcess, app_process

pytestmark = pytest.mark.slow

USERS = 20
REQUESTS_PER_USER = 20
WARM_UP_PER_USER = 3
REQUEST_TIMEOUT_S = 60.0
ROUND_TIMEOUT_S = 180.0
MEMORY_SLACK_MB = 150.0
DATASETS = ("stamps200", "clipart200")
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
# Layers all three Lite models have: a fresh session's layer dropdown lists Lite0's choices.
SHARED_LAYERS = ("stem_conv", "block4c_expand_conv", "block5b_expand_conv", "top_conv")

Request = tuple[str, Callable[[Client], object]]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    # The app limits glibc to two malloc arenas itself (more fragment and let RSS creep ~70 MB
    # per 100 overview requests with no object leaked), so growth here means a real leak.
    # The twenty simulated users share one loopback address: lift the per-address cap that
    # would rightly stop one real address from holding so many queue places.
    env = {"CONVENET_ADDRESS_REQUESTS": "64"}
    with app_process(tmp_path_factory.mktemp("load-cache"), extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def small_images(tmp_path_factory: pytest.TempPathFactory, photo) -> list[Path]:
    """Crops of a real photo in a few sizes and formats, as a phone or a screenshot makes them."""
    folder = tmp_path_factory.mktemp("uploads")
    paths = []
    for i, (side, suffix) in enumerate([(32, "png"), (96, "jpg"), (200, "jpg"), (150, "webp")]):
        crop = Image.fromarray(photo[i * 40 : i * 40 + side * 2, i * 60 : i * 60 + side * 3])
        path = folder / f"crop{i}.{suffix}"
        crop.resize((side * 3 // 2, side)).save(path)
        paths.append(path)
    return paths


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def new_client(url: str) -> Client:
    """A client whose every HTTP call, the first config fetch included, has the same bound."""
    return Client(
        url,
        verbose=False,
        analytics_enabled=False,
        download_files=False,
        httpx_kwargs={"timeout": REQUEST_TIMEOUT_S},
    )


def ask(client: Client, *args: object, **kwargs: object) -> object:
    """client.predict, but a request that takes longer than REQUEST_TIMEOUT_S fails."""
    return client.submit(*args, **kwargs).result(timeout=REQUEST_TIMEOUT_S)


def check_search(out: dict, k: int) -> None:
    assert len(out["results"]) == k, f"expected {k} results, got {len(out['results'])}"


def make_request(rng: random.Random, images: list[Path], kind: str) -> Request:
    """One request of ``kind`` with random arguments, and a check of its answer."""
    dataset, model, metric = rng.choice(DATASETS), rng.choice(MODELS), rng.choice(METRICS)
    query_index, k = rng.randrange(200), rng.choice((5, 10, 50))
    if kind == "search":
        layer = rng.choice(SHARED_LAYERS)

        def call(client: Client) -> None:
            out = ask(
                client,
                dataset=dataset,
                model=model,
                layer=layer,
                metric=metric,
                query_index=query_index,
                k=k,
                api_name="/search",
            )
            check_search(out, k)
            assert out["query_index"] == query_index and out["query_class"]

    elif kind == "upload":
        image = rng.choice(images)

        def call(client: Client) -> None:
            out = ask(
                client,
                dataset=dataset,
                model=model,
                query=handle_file(str(image)),
                k=k,
                api_name="/search",
            )
            check_search(out, k)
            assert out["query_class"] is None

    elif kind == "quality":

        def call(client: Client) -> None:
            assert "chance" in ask(client, dataset, metric, api_name="/quality")

    elif kind == "compare":

        def call(client: Client) -> None:
            rows, _ = ask(client, dataset, query_index, metric, None, api_name="/compare")
            assert len(rows["data"] if isinstance(rows, dict) else rows) >= 24

    elif kind == "projection":
        layer = rng.choice(SHARED_LAYERS)

        def call(client: Client) -> None:
            svg = ask(
                client, dataset, model, layer, query_index, None, "pca", api_name="/projection"
            )
            assert "<circle" in svg

    else:
        raise ValueError(f"unknown request kind {kind!r}")
    return kind, call


# Six searches, two uploads and two of the slower explanatory views in every ten requests.
MIX = (
    *("search", "upload", "search", "quality", "search"),
    *("search", "upload", "projection", "search", "compare"),
)


def user_session(
    url: str, user: int, count: int, images: list[Path]
) -> list[tuple[str, float, str | None]]:
    """One user's requests in order: (kind, seconds, error or None) for each."""
    rng = random.Random(user)
    client = new_client(url)
    log = []
    try:
        for j in range(count):
            kind, call = make_request(rng, images, MIX[(user + j) % len(MIX)])
            start = time.perf_counter()
            try:
                call(client)
                error = None
            except Exception as exc:  # record every failure; the test reports them all
                error = f"{type(exc).__name__}: {exc}"
            log.append((kind, time.perf_counter() - start, error))
    finally:
        client.close()
    return log


def run_round(url: str, count: int, images: list[Path]) -> list[tuple[str, float, str | None]]:
    """All users at once; the whole round must end within ROUND_TIMEOUT_S."""
    pool = ThreadPoolExecutor(USERS)
    try:
        futures = [pool.submit(user_session, url, user, count, images) for user in range(USERS)]
        _, pending = wait(futures, timeout=ROUND_TIMEOUT_S)
        assert not pending, f"{len(pending)} users still busy after {ROUND_TIMEOUT_S:.0f} s"
        return [entry for future in futures for entry in future.result()]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def warm_up(url: str, images: list[Path]) -> None:
    """Load every model and feature set once, so the measured round sees a warm server."""
    client = new_client(url)
    try:
        for dataset in DATASETS:
            for model in MODELS:
                ask(client, dataset=dataset, model=model, query_index=0, api_name="/search")
                query = handle_file(str(images[0]))
                ask(client, dataset=dataset, model=model, query=query, api_name="/search")
    finally:
        client.close()


def latency_report(log: list[tuple[str, float, str | None]]) -> str:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, seconds, _ in log:
        by_kind[kind].append(seconds)
        by_kind["all"].append(seconds)
    lines = []
    for kind, samples in sorted(by_kind.items()):
        ms = np.array(samples) * 1000
        lines.append(
            f"{kind:>10}: n={len(ms):3d}  p50={np.percentile(ms, 50):7.0f} ms  "
            f"p95={np.percentile(ms, 95):7.0f} ms  max={ms.max():7.0f} ms"
        )
    return "\n".join(lines)


def test_twenty_concurrent_users_no_failures_and_flat_memory(
    app: AppProcess, small_images: list[Path]
) -> None:
    warm_up(app.url, small_images)
    warm_log = run_round(app.url, WARM_UP_PER_USER, small_images)
    assert not [entry for entry in warm_log if entry[2]], "warm-up round had failures"
    time.sleep(1.0)
    warm = rss_mb(app.process.pid)

    start = time.monotonic()
    log = run_round(app.url, REQUESTS_PER_USER, small_images)
    elapsed = time.monotonic() - start
    time.sleep(1.0)
    after = rss_mb(app.process.pid)

    print(f"\n{len(log)} requests from {USERS} users in {elapsed:.1f} s")
    print(latency_report(log))
    print(f"server RSS: warm {warm:.0f} MB, after load {after:.0f} MB ({after - warm:+.0f} MB)")
    failures = [f"{kind}: {error}" for kind, _, error in log if error]
    assert len(log) == USERS * REQUESTS_PER_USER
    assert not failures, f"{len(failures)} failed requests, e.g.:\n" + "\n".join(failures[:10])
    assert statistics.median(s for _, s, _ in log) < 10.0
    assert after <= warm + MEMORY_SLACK_MB, f"RSS grew from {warm:.0f} to {after:.0f} MB"


def test_searches_never_wait_behind_slow_views(app: AppProcess) -> None:
    """Searches have workers of their own: while feature visualizations (gradient ascent, one
    at a time), Explorer views and heavy search-tab views keep their groups busy, searches sent
    meanwhile all answer before the slow work is done."""
    from tests.http_calls import call

    def timed(api_name: str, data: list) -> float:
        status, out = call(app.url, api_name, data)
        assert status == "complete", f"{api_name}: {status}: {str(out)[:200]}"
        return time.monotonic()

    search = ["stamps200", "efficientnet_lite0", "top_conv", "cosine"]
    timed("search", [*search, 0, None, 50])  # warm
    slow_calls = [
        *[("featurevis", ["efficientnet_lite0", "top_conv", 1000 + i, 64]) for i in range(2)],
        *[
            ("activations", ["efficientnet_lite1", "top_conv", "stamps200", i, None])
            for i in (1, 2)
        ],
        ("projection", ["clipart200", "efficientnet_lite2", "top_conv", 3, None, "tsne"]),
    ]
    with ThreadPoolExecutor(len(slow_calls)) as pool:
        slow = [pool.submit(timed, name, data) for name, data in slow_calls]
        time.sleep(1.0)  # the slow views are queued or running
        searches = [timed("search", [*search, i, None, 50]) for i in range(1, 11)]
        slow_done = max(future.result(timeout=600) for future in slow)
    assert max(searches) < slow_done, "a search waited until the slow views were done"

"""A class behind one school address, and one greedy visitor beside it, for a while.

    python benchmarks/bench_soak.py [--minutes M] [--learners N] [--quick]

The classroom run is ``--minutes 5`` (the default); the soak at Space scale is ``--minutes 60``
(a command, not a test: run it by hand). Starts the real app with its default limits, measures
a dataset search alone (idle), then for M minutes N learners (default 30) at ONE address
(127.0.0.4, as behind a school's NAT) do normal work with think times of 1-4 s: dataset
searches, searches by an uploaded photo, Explorer views and now and then a short feature
visualization; meanwhile one greedy visitor at 127.0.0.2 keeps long feature visualizations
queued. Every minute it samples the app's memory (RSS), its cache and temporary folders on
disk, and the searches' p95 of that minute.

Printed: refused calls of the learners (target 0), search p95 under the class over the idle
median (target <= 3x, issue 27), and memory and disk at the end over their value after the
first minute (warm-up; target within 10 %), with the load average at start and end.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import (  # noqa: E402
    DATASET,
    LAYER,
    METRIC,
    MODEL,
    app_cache,
    parser,
    percentile,
    report,
    rss_mib,
    upload_images,
)

CLASSROOM, GREEDY = "127.0.0.4", "127.0.0.2"
TARGET_RATIO = 3.0
SHORT_STEPS, LONG_STEPS = 16, 512
MIX = ("search",) * 6 + ("upload", "upload", "explorer", "featurevis")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def search_data(query: object) -> list:
    if isinstance(query, int):
        return [DATASET, MODEL, LAYER, METRIC, query, None, 10]
    ref = {"path": query, "meta": {"_type": "gradio.FileData"}}
    return [DATASET, MODEL, LAYER, METRIC, 0, ref, 10]


class Soak:
    """The learners' log: (kind, seconds, status, minute) of every call."""

    def __init__(self, url: str, photos: list[Path], until: float) -> None:
        self.url, self.photos, self.until = url, photos, until
        self.log: list[tuple[str, float, str, int]] = []
        self.began = time.monotonic()
        self.lock = threading.Lock()

    def one(self, kind: str, rng: random.Random, channel: int) -> None:
        from tests.http_calls import call, upload

        start = time.monotonic()
        if kind == "search":
            status, _ = call(self.url, "search", search_data(rng.randrange(200)), CLASSROOM)
        elif kind == "upload":
            path = upload(self.url, rng.choice(self.photos))
            status, _ = call(self.url, "search", search_data(path), CLASSROOM)
        elif kind == "explorer":
            data = [MODEL, LAYER, DATASET, rng.randrange(200), None]
            status, _ = call(self.url, "activations", data, CLASSROOM)
        else:
            data = [MODEL, LAYER, channel, SHORT_STEPS]
            status, _ = call(self.url, "featurevis", data, CLASSROOM)
        minute = int((start - self.began) // 60)
        with self.lock:
            self.log.append((kind, time.monotonic() - start, status, minute))

    def learner(self, number: int) -> None:
        rng = random.Random(number)
        channel = 1000 * (number + 1)
        while time.monotonic() < self.until:
            channel += 1
            self.one(rng.choice(MIX), rng, channel)
            time.sleep(rng.uniform(1.0, 4.0))

    def greedy(self) -> None:
        """Keeps about six long pictures queued, from one session each."""
        from tests.http_calls import call

        channel = 0
        lock = threading.Semaphore(6)

        def picture(c: int) -> None:
            try:
                call(self.url, "featurevis", [MODEL, LAYER, c % 1280, LONG_STEPS], GREEDY)
            finally:
                lock.release()

        while time.monotonic() < self.until:
            lock.acquire()
            channel += 1
            threading.Thread(target=picture, args=(channel,), daemon=True).start()


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--minutes", type=float, default=5.0)
    args.add_argument("--learners", type=int, default=30)
    opts = args.parse_args()
    minutes = 1.0 if opts.quick else opts.minutes
    from tests.app_server import app_process
    from tests.http_calls import call

    with report("bench_soak", opts) as run, app_cache() as cache, app_process(cache) as app:
        photos = upload_images(cache)
        for _ in range(3):  # warm: the model, the dataset, an upload, the Explorer
            call(app.url, "search", search_data(0))
        idle = []
        for i in range(20):
            start = time.monotonic()
            call(app.url, "search", search_data(i))
            idle.append(time.monotonic() - start)
        soak = Soak(app.url, photos, time.monotonic() + 60 * minutes)
        threads = [threading.Thread(target=soak.learner, args=(n,)) for n in range(opts.learners)]
        threads.append(threading.Thread(target=soak.greedy))
        for thread in threads:
            thread.start()
        samples = []  # (minute, RSS MiB, cache bytes, load)
        while any(t.is_alive() for t in threads[:-1]):
            time.sleep(min(60.0, max(1.0, soak.until - time.monotonic() + 1)))
            samples.append(
                (
                    len(samples) + 1,
                    rss_mib(app.process.pid),
                    folder_bytes(cache),
                    os.getloadavg()[0],
                )
            )
        for thread in threads:
            thread.join()
        searches = [
            s for kind, s, status, _ in soak.log if kind == "search" and status == "complete"
        ]
        refused = [entry for entry in soak.log if entry[2] != "complete"]
        print(f"\n{opts.learners} learners at one address, {minutes:g} min, one greedy visitor:")
        print(f"  calls {len(soak.log)}, refused or failed {len(refused)} (target 0)")
        run.add("idle_search", "dataset search, idle", idle)
        run.add("class_search", "dataset search, during the class", searches)
        for kind in ("upload", "explorer", "featurevis"):
            done = [s for k, s, status, _ in soak.log if k == kind and status == "complete"]
            if done:
                run.add(f"class_{kind}", f"{kind}, during the class", done)
        p95 = percentile(searches, 95)
        idle_median = sorted(idle)[len(idle) // 2]
        print(f"  RATIO search p95 in the class / idle median = {p95 / idle_median:.2f}x")
        run.ratios["class_p95"] = {"label": "search p95 / idle median", "value": p95 / idle_median}
        for minute, rss, disk, load in samples:
            window = [s for k, s, st, m in soak.log if k == "search" and m == minute - 1]
            p95_text = f"{percentile(window, 95) * 1e3:.0f} ms" if window else "-"
            print(f"  minute {minute}: RSS {rss:.0f} MiB, disk {disk / 2**20:.1f} MiB, ", end="")
            print(f"search p95 {p95_text}, load {load:.1f}")
        if len(samples) >= 2:
            first, last = samples[0], samples[-1]
            print(f"  RATIO memory end / after minute 1 = {last[1] / first[1]:.2f}x")
            print(f"  RATIO disk end / after minute 1 = {last[2] / max(first[2], 1):.2f}x")
        if refused:
            print(f"  first refusals: {refused[:3]}")


if __name__ == "__main__":
    main()

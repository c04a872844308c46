"""Find where every channel of every curated layer fires most on each shipped dataset (one pass
per model) and ship it beside the features, so every channel page opens at once.

    python scripts/build_peaks.py [--root precomputed]

Each model's peaks are stored with a digest of the features of the same images; the app uses
them only while those are unchanged (``Playground.channel_peaks``), else it computes them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convenet.data.store import atomic_write_bytes  # noqa: E402
from convenet.explain.peaks import PEAKS_FILE, save_peaks  # noqa: E402
from convenet.models.registry import MODELS  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402


def build(root: Path) -> None:
    pg = Playground(root)
    for dataset in pg.datasets():
        per_model, digests = {}, {}
        for spec in MODELS.values():
            if not pg.has_features(dataset, spec.key):
                continue
            start = time.perf_counter()
            per_model[spec.key] = pg.channel_peaks(dataset, spec.key)
            digests[spec.key] = pg.peaks_digest(dataset, spec.key)
            print(f"{dataset} {spec.key}: {time.perf_counter() - start:.1f} s", flush=True)
        if per_model:
            path = root / dataset / PEAKS_FILE
            atomic_write_bytes(path, save_peaks(per_model, digests))
            print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=PRECOMPUTED_DIR)
    build(parser.parse_args().root)


if __name__ == "__main__":
    main()

"""Every environment variable the app reads, in one place (the README's "Configuration" table).

The limits that protect a shared server are read once, at import (``SETTINGS``); the defaults
suit a 16 GB CPU Space. Where files live and which backends run are read when asked, so a test
or a script can change them for a while. Nothing here, nor anywhere in ``convenet``, sets an
environment variable: entry points (app.py, ``python -m convenet``, scripts) call
``quiet_tensorflow`` themselves.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
DEFAULT_HUB_REPO = "convenet/convnet-playground-features"
DEFAULT_HUB_REVISION = "main"
CACHE_ENV = "CONVENET_CACHE"
ONNX_ENV = "CONVENET_ONNX"
MODEL_CACHE_ENV = "CONVENET_MODEL_CACHE"
HUB_REPO_ENV = "CONVENET_HUB_REPO"
HUB_REVISION_ENV = "CONVENET_HUB_REVISION"
HUB_OFFLINE_ENV = "CONVENET_HUB_OFFLINE"
BACKGROUND_NICE_ENV = "CONVENET_BACKGROUND_NICE"
WEIGHTS_MIRROR_ENV = "CONVENET_WEIGHTS_MIRROR"
WARMUP_ENV = "CONVENET_WARMUP"
MAX_NICE = 19


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Limits on what one request or one client may cost the server."""

    max_file_mb: int = 40  # one uploaded file
    max_upload_mb: int = 48  # one upload request, all its files together
    max_body_kb: int = 256  # any other request body (JSON calls)
    max_decoded_mb: int = 128  # pixels x channels x bytes per sample of one decoded image
    heavy_decodes: int = 2  # large decodes at once, across all clients
    max_text_chars: int = 200  # any text a client sends
    client_requests: int = 6  # queued + running requests per browser session
    # per client address: a class behind one school address shares it (30 learners with a
    # view each and a few queued); round robin keeps one address's backlog from others
    address_requests: int = 64
    temp_ttl_s: int = 900  # uploads and generated files are deleted after this long
    temp_sweep_s: int = 60  # how often old temporary files are looked for
    trust_proxy: bool = bool(os.environ.get("SPACE_ID"))  # behind the Space's proxy
    own_max_images: int = 500  # images in one "use your own images" upload
    own_max_total_mb: int = 200  # their unpacked size, all together
    own_max_file_mb: int = 20  # one image among them (unpacked)
    own_max_entries: int = 2000  # entries in one zip, folders and skipped files included
    own_max_ratio: int = 100  # unpacked / packed size of one zip entry (zip bombs)
    own_sessions: int = 20  # sessions holding their own images at once
    own_per_address: int = 3  # of those, sessions from one client address
    own_idle_s: int = 600  # a session's own images are deleted after this long unused
    featurevis_cache_mb: int = 256  # on-demand feature pictures on disk (least recent go)
    cache_mb: int = 4096  # ONNX graphs and computed features on disk (least recent go)
    lean_sessions: bool = True  # a session computes a block's config when read (0: Gradio's)


def _parse(raw: str, like: object) -> object:
    if isinstance(like, bool):
        return raw.strip().lower() in TRUE_WORDS
    value = int(raw)
    if value < 1:
        raise ValueError
    return value


def read_settings(environ: dict[str, str] | os._Environ = os.environ) -> Settings:
    """``CONVENET_<NAME>`` overrides each field (for example CONVENET_MAX_FILE_MB=20)."""
    chosen = {}
    defaults = Settings()
    for field in fields(Settings):
        raw = environ.get(f"CONVENET_{field.name.upper()}")
        if raw is None:
            continue
        try:
            chosen[field.name] = _parse(raw, getattr(defaults, field.name))
        except ValueError:
            raise SystemExit(
                f"CONVENET_{field.name.upper()}={raw!r} is not a positive whole number"
            ) from None
    return Settings(**chosen)


def folder_datasets(environ: dict[str, str] | os._Environ = os.environ) -> list[tuple[str, str]]:
    """``CONVENET_IMAGES``: folders served as datasets, ``[NAME=]DIR`` separated by ``os.pathsep``
    (the Space's way of saying ``app.py --images DIR --name NAME``); (name or "", dir) pairs."""
    entries = [e.strip() for e in environ.get("CONVENET_IMAGES", "").split(os.pathsep)]
    return [
        (name, folder) if folder else ("", name)
        for name, _, folder in (e.partition("=") for e in entries if e)
    ]


def own_images_dir(environ: dict[str, str] | os._Environ = os.environ) -> Path:
    """Where sessions' own images live (``CONVENET_OWN_DIR``). Never inside Gradio's upload
    folder, which Gradio serves to anyone who names a path in it."""
    default = Path(tempfile.gettempdir()) / f"convenet-own-{os.getuid()}"
    return Path(environ.get("CONVENET_OWN_DIR") or default)


SETTINGS = read_settings()


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(_parse(raw, default))  # type: ignore[call-overload]
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a positive whole number") from None


def cache_root() -> Path:
    """Writable cache (converted weights, computed features, ONNX graphs): CONVENET_CACHE."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "convenet")


def keras_home() -> Path:
    """Where Keras keeps downloaded weights: its own KERAS_HOME, else ~/.keras."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def weights_mirror() -> str | None:
    """CONVENET_WEIGHTS_MIRROR: a base URL (http, https) or a folder that serves the Keras
    ImageNet weight files under their own names, with a SHA256SUMS list; None (the default)
    downloads them from their origin. For networks that cannot reach the origin."""
    return os.environ.get(WEIGHTS_MIRROR_ENV, "").strip() or None


def onnx_enabled() -> bool:
    """CONVENET_ONNX=0 computes every feature with Keras (slower; for comparisons)."""
    return os.environ.get(ONNX_ENV, "1").strip() != "0"


def warmup_models() -> list[str] | None:
    """What the app builds at start so that first uses cost what later ones do
    (CONVENET_WARMUP): None for every model that works offline (the default, ``1``), nothing
    for ``0`` (tests and benchmarks that share a warm cache or time the cold path), else the
    model keys it lists, separated by commas (a Space that wants only its default model warm).
    """
    raw = os.environ.get(WARMUP_ENV, "1").strip()
    if raw.lower() in TRUE_WORDS:
        return None
    if raw.lower() in {"0", "false", "no", "off"}:
        return []
    return [key.strip() for key in raw.split(",") if key.strip()]


def background_nice() -> int:
    """How much slow work raises its threads' nice value (CONVENET_BACKGROUND_NICE, 0..19,
    default 5; 0: slow work at the usual priority, for comparisons).

    5 rather than 10 (bench_load.py --priority-baseline, 2 cores): with other jobs running
    (load 11-25) nice 10 halved a search's median but lengthened its p95 (0.74-0.80x in three
    runs), likely as a starved slow thread held the interpreter lock, where nice 5 improved
    both (p95 1.4-2.7x); near idle (load 1-5) both halved the median, p95 1.0-1.5x.
    Not SCHED_IDLE either: near idle it cut a search's p95 under load from 48 to 27 ms, but with
    two CPU-bound processes beside the app a feature visualization got no CPU for a minute.
    """
    raw = os.environ.get(BACKGROUND_NICE_ENV, "5").strip()
    if not raw.isdigit() or int(raw) > MAX_NICE:
        raise SystemExit(f"{BACKGROUND_NICE_ENV}={raw!r} is not a whole number from 0 to 19")
    return int(raw)


def model_cache_size() -> int:
    """How many built models stay in memory (CONVENET_MODEL_CACHE, default 3)."""
    return _positive(MODEL_CACHE_ENV, 3)


def hub_config() -> tuple[str, str, bool]:
    """(repo id, revision, offline) of the Hub feature dataset: CONVENET_HUB_*."""
    return (
        os.environ.get(HUB_REPO_ENV) or DEFAULT_HUB_REPO,
        os.environ.get(HUB_REVISION_ENV) or DEFAULT_HUB_REVISION,
        os.environ.get(HUB_OFFLINE_ENV, "").strip().lower() in TRUE_WORDS,
    )


def quiet_tensorflow(environ: dict[str, str] | os._Environ = os.environ) -> None:
    """Hide TensorFlow's C++ start-up chatter; for entry points, before Keras is imported."""
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


PASSED_TO_WORKERS = ("CONVENET_", "KERAS_", "HF_")  # settings worker processes share with us


def worker_environment(
    code_dir: Path, environ: dict[str, str] | os._Environ = os.environ
) -> dict[str, str]:
    """What a worker on another process or node needs of our environment (Ray actors): our
    settings, and ``code_dir`` first on its PYTHONPATH so it imports this checkout."""
    env = {key: value for key, value in environ.items() if key.startswith(PASSED_TO_WORKERS)}
    path = environ.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{code_dir}{os.pathsep}{path}" if path else str(code_dir)
    return env

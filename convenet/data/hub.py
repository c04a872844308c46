"""Sync the feature store with a Hugging Face Hub dataset, falling back to the embedded copy.

Time bounds: the first request (the dataset's revision info) carries ``timeout`` for connect
and read, so a Hub that is down, blocked or silent is detected within ``timeout`` seconds and
the app starts on the embedded features. Once that answer arrives, the transfer runs under
huggingface_hub 2.4's own bounds, which ``timeout`` only partly reaches: per-file HEAD requests
use it (``etag_timeout``) but one that fails is retried with a 60 s limit, file bodies use
``HF_HUB_DOWNLOAD_TIMEOUT`` (10 s per read by default) with retries, and the tree listing has
no timeout. So a Hub that answers and then stalls mid-transfer can hold a pull much longer.
The endpoint is huggingface_hub's ``HF_ENDPOINT`` unless ``endpoint=`` is given; the token is
whatever huggingface_hub finds (``HF_TOKEN``, a login) unless ``token=`` is given, and it is
never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import (
    DatasetCard,
    DatasetCardData,
    HfApi,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.file_download import repo_folder_name

from convenet.data.datasets import DATASETS
from convenet.data.preview import viewer_configs, write_index
from convenet.data.store import (
    MANIFEST_NAME,
    atomic_write_bytes,
    load_manifest,
    verify_file,
    verify_root,
)
from convenet.models.registry import MODELS
from convenet.paths import PRECOMPUTED_DIR
from convenet.settings import (
    DEFAULT_HUB_REPO,
    DEFAULT_HUB_REVISION,
    HUB_OFFLINE_ENV,
    HUB_REPO_ENV,
    HUB_REVISION_ENV,
    hub_config,
)

DEFAULT_REPO_ID = DEFAULT_HUB_REPO
DEFAULT_REVISION = DEFAULT_HUB_REVISION
DEFAULT_TIMEOUT = 5.0
REPO_ENV = HUB_REPO_ENV
REVISION_ENV = HUB_REVISION_ENV
OFFLINE_ENV = HUB_OFFLINE_ENV
REPO_TYPE = "dataset"

log = logging.getLogger("convenet")

# Everything a failed fetch can raise: transport errors and timeouts (httpx2), HTTP status
# errors (HfHubHTTPError is both), offline mode and cache misses (OSError), bad JSON or a bad
# manifest (ValueError), and answers of the wrong shape (KeyError, TypeError while parsing).
_FETCH_ERRORS = (httpx2.HTTPError, OSError, ValueError, KeyError, TypeError)


class HubError(OSError):
    """The Hub dataset could not be fetched, or what it served failed verification."""


@dataclass
class FeatureSource:
    """Where the app reads features from, and a one-sentence note for the UI."""

    root: Path
    origin: str  # "hub" | "embedded"
    message: str


def hub_settings() -> tuple[str, str, bool]:
    """(repo id, revision, offline) from the CONVENET_HUB_* variables and HF_HUB_OFFLINE."""
    repo_id, revision, offline = hub_config()
    return repo_id, revision, offline or constants.is_offline_mode()


def _fetch_verified(
    repo_id: str, revision: str, cache_dir: Path | str | None, endpoint: str | None, timeout: float
) -> Path:
    where = f"Hub dataset {repo_id}@{revision}"
    info = HfApi(endpoint=endpoint).dataset_info(repo_id, revision=revision, timeout=timeout)
    if not info.sha:
        raise HubError(f"{where}: the Hub did not say which commit {revision!r} is.")
    # Pinning the commit skips a second, un-timed revision lookup inside snapshot_download.
    download = {
        "repo_type": REPO_TYPE,
        "revision": info.sha,
        "cache_dir": cache_dir,
        "endpoint": endpoint,
        "etag_timeout": timeout,
    }
    snapshot = Path(snapshot_download(repo_id, **download))
    if not (snapshot / MANIFEST_NAME).is_file():
        raise HubError(f"{where} has no {MANIFEST_NAME}; it is not a convenet feature store.")
    for relpath in load_manifest(snapshot)["files"]:
        if verify_file(snapshot, relpath):
            continue
        log.info("%s: %s failed its checksum; downloading it again.", where, relpath)
        hf_hub_download(repo_id, relpath, force_download=True, **download)
        if not verify_file(snapshot, relpath):
            raise HubError(f"{where}: {relpath} fails its sha256 check even after a re-download.")
    _remember_revision(repo_id, revision, info.sha, cache_dir)
    return snapshot


def _remember_revision(repo_id: str, revision: str, sha: str, cache_dir: Path | str | None) -> None:
    """Note which commit ``revision`` named, as huggingface_hub does for branch downloads, so
    that a later start without network finds this snapshot (we download by commit)."""
    if revision == sha:
        return
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    refs = cache / repo_folder_name(repo_id=repo_id, repo_type=REPO_TYPE) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(refs / revision, sha.encode())


def pull(
    repo_id: str,
    revision: str,
    *,
    cache_dir: Path | str | None = None,
    endpoint: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download a verified snapshot of the dataset into the HF cache; returns its folder.

    Every file in the manifest must match its sha256; a mismatch is downloaded once more and,
    if still wrong, raises HubError, so a bad file is never handed out.
    """
    try:
        return _fetch_verified(repo_id, revision, cache_dir, endpoint, timeout)
    except HubError:
        raise
    except _FETCH_ERRORS as exc:
        raise HubError(f"Hub dataset {repo_id}@{revision}: {type(exc).__name__}: {exc}") from exc


def preloaded(repo_id: str, revision: str, cache_dir: Path | str | None = None) -> Path | None:
    """A verified snapshot already in the HF cache (a Space's ``preload_from_hub`` puts one
    there at build time), found without any network; None if there is none or it fails."""
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                repo_type=REPO_TYPE,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=True,
            )
        )
        relpaths = list(load_manifest(snapshot)["files"])
    except _FETCH_ERRORS:
        return None
    if not relpaths or not all(verify_file(snapshot, relpath) for relpath in relpaths):
        return None
    return snapshot


def resolve_feature_source(
    embedded_root: Path = PRECOMPUTED_DIR,
    repo_id: str | None = None,
    revision: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    cache_dir: Path | str | None = None,
    endpoint: str | None = None,
) -> FeatureSource:
    """The Hub snapshot if it can be fetched and verified, else the embedded store; never raises
    for network problems (it logs one warning instead)."""
    default_repo, default_revision, offline = hub_settings()
    repo_id, revision = repo_id or default_repo, revision or default_revision
    if offline:
        return FeatureSource(
            Path(embedded_root),
            "embedded",
            "Using the features shipped with the app (Hub sync is off).",
        )
    try:
        root = pull(repo_id, revision, cache_dir=cache_dir, endpoint=endpoint, timeout=timeout)
    except OSError as exc:  # HubError, or a local disk problem in the cache
        cached = preloaded(repo_id, revision, cache_dir)
        if cached is not None:
            log.warning("Hub unreachable (%s); using its copy already on disk.", exc)
            return FeatureSource(
                cached,
                "hub",
                f"The Hugging Face Hub could not be reached, so the app uses the copy of "
                f"{repo_id} already on disk.",
            )
        log.warning("Using embedded features in %s: %s", embedded_root, exc)
        return FeatureSource(
            Path(embedded_root),
            "embedded",
            "The Hugging Face Hub could not be reached, so the app uses its built-in features.",
        )
    return FeatureSource(
        root, "hub", f"Features from the Hugging Face Hub dataset {repo_id} (revision {revision})."
    )


def registered_licences() -> dict[str, str]:
    """Licence and attribution of every shipped dataset, as the card lists them."""
    return {name: f"{spec.licence} ({spec.attribution})" for name, spec in DATASETS.items()}


def _card_body(
    repo_id: str,
    files: Mapping[str, Any],
    licences: Mapping[str, str],
    index: Mapping[str, str],
) -> str:
    rows = "\n".join(
        f"| `{relpath}` | {entry['dataset']} | {entry['model']} | {entry['n_images']} "
        f"| {len(entry['layers'])} | {entry['pooling']} |"
        for relpath, entry in sorted(files.items())
    )
    dataset_lines = "\n".join(
        f"- **{name}**: {licence}" for name, licence in sorted(licences.items())
    )
    models = sorted({entry["model"] for entry in files.values()})
    example = sorted(files)[0]
    previews = ", ".join(f"`{path}`" for _, path in sorted(index.items())) or "none"
    model_lines = "\n".join(
        f"- **{MODELS[key].title if key in MODELS else key}**: "
        f"{MODELS[key].licence if key in MODELS else 'see the model source'}"
        for key in models
    )
    return f"""
# ConvNet Playground features

Precomputed CNN layer activations for the ConvNet Playground image-retrieval demo: for each
dataset x model, one pooled feature vector per image for every curated layer, so the app can
rank similar images without running the network. Each vector is the global average of one
layer's feature maps for one image, computed by the pretrained ImageNet model after its own
preprocessing (file metadata below says which model, layers, pooling, preprocessing, input size
and code version made it).

## Load a feature file in three lines

```python
from huggingface_hub import hf_hub_download; from safetensors.numpy import load_file
features = load_file(hf_hub_download("{repo_id}", "{example}", repo_type="dataset"))
print({{layer: array.shape for layer, array in features.items()}})  # (n_images, dim) each
```

The dataset viewer shows every image with its class (one split per dataset), from the small
parquet index files {previews}.

## Files

- `<dataset>/images/<class>/<file>.jpg`: the dataset images.
- `<dataset>/features/<model>.safetensors`: one float16 tensor per layer, named by the layer,
  of shape (n_images, dim). The safetensors metadata key `convenet` holds JSON with the
  dataset, model, pooling, preprocessing, input size, the image paths (relative to
  `<dataset>/images`, same order as the rows), their class labels and the convenet version.
  safetensors files cannot run code when loaded.
- `{MANIFEST_NAME}`: for every feature file its sha256, size, layers and dimensions, pooling,
  preprocessing, image count and convenet version. Clients check the sha256 before use.

| file | dataset | model | images | layers | pooling |
|---|---|---|---|---|---|
{rows}

Load with `huggingface_hub.snapshot_download("{repo_id}", repo_type="dataset")` and
`safetensors.safe_open(path, framework="numpy")`.

## Licences

The images keep their original licences:

{dataset_lines}

The features are derived from these models' pretrained weights:

{model_lines}
"""


def dataset_card(
    repo_id: str,
    manifest: Mapping[str, Any],
    licences: Mapping[str, str] | None = None,
    index: Mapping[str, str] | None = None,
) -> str:
    """README.md for the Hub dataset; every dataset in the manifest needs a licence.

    ``licences`` maps dataset name to licence text; the shipped datasets' come from the registry.
    ``index`` maps dataset name to its parquet preview (see convenet.data.preview), for the viewer.
    """
    index = dict(index or {})
    licences = {**registered_licences(), **(licences or {})}
    datasets = {entry["dataset"] for entry in manifest["files"].values()}
    missing = sorted(datasets - set(licences))
    if missing:
        raise ValueError(
            f"No licence known for dataset(s) {', '.join(missing)}; pass licences={{name: text}}."
        )
    used = {name: licences[name] for name in datasets}
    data = DatasetCardData(
        license="other",
        license_name="per-dataset",
        license_details="; ".join(f"{name}: {text}" for name, text in sorted(used.items())),
        pretty_name="ConvNet Playground features",
        tags=["image-retrieval", "convnet", "features"],
        task_categories=["image-feature-extraction"],
        configs=viewer_configs(index) if index else None,
    )
    body = _card_body(repo_id, manifest["files"], used, index)
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return str(card)


def push(
    root: Path | str,
    repo_id: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = False,
    licences: Mapping[str, str] | None = None,
) -> str:
    """Publish a verified feature store (with a generated dataset card) as a Hub dataset.

    ``licences`` adds licence texts for datasets outside the registry. Returns the dataset URL.
    """
    root = Path(root)
    bad = verify_root(root)
    if bad:
        raise ValueError(f"Not pushing {root}: these files fail verification: {', '.join(bad)}.")
    manifest = load_manifest(root)
    if not manifest["files"]:
        raise ValueError(f"Not pushing {root}: its {MANIFEST_NAME} lists no feature files.")
    card = dataset_card(repo_id, manifest, licences, write_index(root, manifest))
    atomic_write_bytes(root / "README.md", card.encode("utf-8"))
    api = HfApi(endpoint=endpoint, token=token)
    url = api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type=REPO_TYPE,
        folder_path=root,
        commit_message="Update ConvNet Playground features",
        ignore_patterns=[".*", "*/.*"],  # temp and lock files
    )
    return str(url)

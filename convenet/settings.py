"""The limits that protect a shared server, read once from the environment.

Each is documented in the README's "Security" table; the defaults suit a 16 GB CPU Space.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path


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
    address_requests: int = 16  # queued + running requests per client address
    temp_ttl_s: int = 900  # uploads and generated files are deleted after this long
    temp_sweep_s: int = 60  # how often old temporary files are looked for
    trust_proxy: bool = bool(os.environ.get("SPACE_ID"))  # behind the Space's proxy
    own_max_images: int = 500  # images in one "use your own images" upload
    own_max_total_mb: int = 200  # their unpacked size, all together
    own_max_file_mb: int = 20  # one image among them (unpacked)
    own_max_entries: int = 2000  # entries in one zip, folders and skipped files included
    own_max_ratio: int = 100  # unpacked / packed size of one zip entry (zip bombs)
    own_sessions: int = 20  # sessions holding their own images at once
    own_idle_s: int = 1800  # a session's own images are deleted after this long unused


def _parse(raw: str, like: object) -> object:
    if isinstance(like, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
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

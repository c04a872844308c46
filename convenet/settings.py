"""The limits that protect a shared server, read once from the environment.

Each is documented in the README's "Security" table; the defaults suit a 16 GB CPU Space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


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


SETTINGS = read_settings()

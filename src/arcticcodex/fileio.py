"""Writing files so that readers see the old content or the new, never half of either."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a unique temporary file beside ``path``, fsync it, and rename it over ``path``.

    The temporary file is removed if anything fails, so an interrupted write leaves no debris.
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

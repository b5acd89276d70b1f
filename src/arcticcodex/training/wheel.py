"""A wheel of the arcticcodex that is running, to install on a rented GPU: the same code trains there.

Why build it from the running package rather than install ``arcticcodex`` from PyPI on the instance: the
remote run must be *this* version — the one whose settings, chat templates and receipt format the local side
checks the result against — including a checkout with changes not released anywhere.  And why by hand rather
than with ``pip wheel``/``build``: an installed arcticcodex has no source tree to build from, and a build needs
its backend (and often the network); a pure-Python wheel is only a zip of the package's files with its
metadata (PEP 427), so it is built the same way from a checkout, an editable install or a wheel install.

The metadata (``Requires-Dist``, with the ``train`` extra) is the installed distribution's own, so
``pip install 'arcticcodex-….whl[train]'`` on the instance brings TRL, PEFT and accelerate; torch, already in
the PyTorch image, satisfies the requirement and is kept (its CUDA build is the image's reason to exist).
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

from .. import __version__

__all__ = ["build_wheel"]

_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def build_wheel(into: Path) -> Path:
    """Write ``arcticcodex-VERSION-py3-none-any.whl`` of the running package into ``into``; return its path."""
    package = Path(__file__).resolve().parents[1]
    info = f"arcticcodex-{__version__}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if not path.is_file() or path.is_symlink() or _SKIPPED_DIRS & set(relative.parts):
            continue
        if path.suffix in _SKIPPED_SUFFIXES:
            continue
        files.append((f"arcticcodex/{relative.as_posix()}", path.read_bytes()))
    files.append((f"{info}/METADATA", _metadata().encode()))
    files.append((f"{info}/entry_points.txt", _entry_points().encode()))
    files.append(
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: arcticcodex\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    )
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files)
    record += f"{info}/RECORD,,\n"
    wheel = into / f"arcticcodex-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def _metadata() -> str:
    """The installed distribution's METADATA (its dependencies and extras); a minimal one if none is installed."""
    try:
        text = metadata.distribution("arcticcodex").read_text("METADATA")
    except metadata.PackageNotFoundError:
        text = None
    return text or f"Metadata-Version: 2.1\nName: arcticcodex\nVersion: {__version__}\n"


def _entry_points() -> str:
    """The console scripts (``arcticcodex``, ``acx``), as the installed distribution declares them."""
    try:
        text = metadata.distribution("arcticcodex").read_text("entry_points.txt")
    except metadata.PackageNotFoundError:
        text = None
    return text or "[console_scripts]\narcticcodex = arcticcodex.cli:main\n"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")

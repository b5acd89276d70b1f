"""Verification verdicts remembered per dataset folder, for pages that show them on every view.

Verifying 100k records takes seconds; the Studio shows a dataset's verdict each time its page is
opened.  A verdict is reused only while the folder is exactly as it was when it was verified: the
key is the manifest's SHA-256 plus, for every file the verdict depends on, its size, inode and
modification *and change* times (``st_ctime`` cannot be set back by a program, so a file rewritten
and re-dated with ``touch -r`` still looks different).  Trust is not cached: it is decided again from
the current key ring on every call, so ``keys trust`` or ``keys untrust`` shows at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ..errors import UnsafeFileError
from ..fileio import read_plain_file
from ..layout import CARD_FILE, MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from ..provenance.trust import KeyRing
from .verify import MAX_MANIFEST_BYTES, VerificationReport, verify_dataset

__all__ = ["VerdictCache"]

_Stamp = tuple[str, int, int, int, int] | tuple[str, None, None, None, None]


class VerdictCache:
    """Integrity verdicts by folder state (thread-safe); the newest ``max_entries`` are kept."""

    def __init__(self, max_entries: int = 32) -> None:
        self.max_entries = max_entries
        self._reports: OrderedDict[tuple[object, ...], VerificationReport] = OrderedDict()
        self._lock = threading.Lock()
        self.verifications = 0  # how many full verifications ran (the rest were served from the cache)

    def verify(self, directory: str | Path, *, keyring: KeyRing, workers: int = 1) -> VerificationReport:
        """The report for ``directory`` as it is now: cached integrity, trust decided afresh."""
        folder = Path(directory).resolve()
        key = _state(folder)
        with self._lock:
            cached = self._reports.get(key)
            if cached is not None:
                self._reports.move_to_end(key)
        if cached is None:
            cached = verify_dataset(folder, keyring=keyring, workers=workers)
            with self._lock:
                self.verifications += 1
                if cached.records_checked:  # a verdict reached without a usable key depends on the key ring
                    self._reports[key] = cached
                    while len(self._reports) > self.max_entries:
                        self._reports.popitem(last=False)
            return cached
        if not cached.key_id:
            return cached
        signer = keyring.signer(cached.key_id, cached.algorithm)
        return dataclasses.replace(cached, trusted_as=signer.trusted_as, trust_note=signer.note)


def _state(folder: Path) -> tuple[object, ...]:
    """What the verdict depends on: the manifest's digest and every relevant file's identity and times."""
    names = [MANIFEST_FILE, TRAIN_FILE, VALIDATION_FILE, REJECTED_FILE, CARD_FILE]
    keys = folder / "keys"
    if keys.is_dir() and not keys.is_symlink():
        names += sorted(f"keys/{entry.name}" for entry in os.scandir(keys))
    stamps: list[_Stamp] = []
    for name in names:
        try:
            info = os.lstat(folder / name)
        except OSError:
            stamps.append((name, None, None, None, None))
            continue
        stamps.append((name, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns))
    try:  # never follows a link, never waits on a FIFO: a hostile manifest is verify's to report
        manifest = hashlib.sha256(read_plain_file(folder / MANIFEST_FILE, limit=MAX_MANIFEST_BYTES)).hexdigest()
    except (OSError, UnsafeFileError):
        manifest = None
    return (str(folder), manifest, tuple(stamps))

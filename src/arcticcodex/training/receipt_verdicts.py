"""Receipt verdicts remembered per model folder, for pages that show them on every view.

Checking a receipt hashes every file of the model (a full 7B model is gigabytes); the Studio's Models
page shows each model's verdicts whenever it is opened.  As for datasets
(:class:`~arcticcodex.dataset.verdicts.VerdictCache`), a verdict is reused only while the folder is
exactly as it was when checked: the key is every file the check reads — ``receipt.json`` and every file
outside the run's working folders, including ones added since (an unaccounted-for weight file) — by
size, inode, and modification *and change* times (``st_ctime`` cannot be set back by a program, so a
file rewritten and re-dated with ``touch -r`` still looks different).  Trust is not cached: it is
decided from the current key ring on every call, so ``keys trust`` or ``keys untrust`` shows at once.
A verdict reached without a usable key (an HMAC receipt whose key is not held) depends on the key
ring, so it is never kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ..layout import MANIFEST_FILE
from ..provenance.trust import KeyRing
from .receipt import RECEIPT_FILE, ReceiptReport

__all__ = ["ReceiptVerdicts"]

# folders of a run the check never reads (the receipt skips them too): checkpoints can be gigabytes
_WORKING_FOLDERS = frozenset({"checkpoints", "data", "logs"})
_Stamp = tuple[str, int, int, int, int]


class ReceiptVerdicts:
    """Receipt reports by folder state (thread-safe); the newest ``max_entries`` are kept."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._reports: OrderedDict[tuple[object, ...], tuple[ReceiptReport, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.checks = 0  # how many full checks ran (the rest were served from the cache)

    def check(self, folder: str | Path, *, keyring: KeyRing, dataset: Path | None = None) -> ReceiptReport:
        """The report for the model in ``folder`` as it is now (and, given ``dataset``, whether it is the one
        the receipt names): cached integrity, trust decided afresh."""
        directory = Path(folder).resolve()
        key = (_state(directory), _manifest_stamp(dataset))
        with self._lock:
            cached = self._reports.get(key)
            if cached is not None:
                self._reports.move_to_end(key)
        if cached is None:
            report = ReceiptReport.check(directory, keyring=keyring, dataset=dataset)
            algorithm = _algorithm(directory) if report.receipt else ""  # read only once the check found a plain file
            with self._lock:
                self.checks += 1
                if report.receipt and algorithm and not _needed_a_key(report):
                    self._reports[key] = (report, algorithm)
                    while len(self._reports) > self.max_entries:
                        self._reports.popitem(last=False)
            return report
        report, algorithm = cached
        signer = keyring.signer(report.key_id, algorithm)
        return dataclasses.replace(
            report, trusted_as=signer.trusted_as, trust_note=signer.note, problems=[*report.problems]
        )


def _needed_a_key(report: ReceiptReport) -> bool:
    """The signature could not be checked for want of a key: a verdict that changes with the key ring."""
    return any(problem.startswith(f"{RECEIPT_FILE}: signed with key") for problem in report.problems)


def _algorithm(directory: Path) -> str:
    """The receipt's signing algorithm ("" when it cannot be read: such a verdict is not kept)."""
    try:
        data = json.loads((directory / RECEIPT_FILE).read_bytes())
        return str(data["signature"]["algorithm"])
    except (OSError, ValueError, TypeError, KeyError):
        return ""


def _manifest_stamp(dataset: Path | None) -> tuple[object, ...] | None:
    """The dataset's side of the check: its manifest (all ``dataset_identity`` reads), by identity and times."""
    if dataset is None:
        return None
    try:
        info = os.lstat(dataset / MANIFEST_FILE)
    except OSError:
        return (str(dataset), None)
    return (str(dataset), info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)


def _state(directory: Path) -> tuple[object, ...]:
    """Every file the check reads, with its identity and times; a missing receipt is part of the state."""
    stamps: list[_Stamp] = []
    for current, folders, files in os.walk(directory):
        relative = Path(current).relative_to(directory)
        if relative == Path("."):
            folders[:] = [name for name in folders if name not in _WORKING_FOLDERS]
        folders.sort()
        for name in sorted(files):
            try:
                info = os.lstat(Path(current) / name)
            except OSError:
                continue
            stamps.append(((relative / name).as_posix(), info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns))
    return (str(directory), tuple(stamps))

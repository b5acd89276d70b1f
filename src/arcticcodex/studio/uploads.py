"""The Studio's uploads folder: a file is kept there only when the vault imported it.

An uploaded file is written to ``uploads/`` in the workspace folder and imported from there like
``arcticcodex vault import`` would (so its source, ``uploads/NAME``, and its citations name a file
that exists).  The folder is not in the data folder ``.arcticcodex/``, from which nothing is ever
imported; like it, it is private (0700, files 0600).  When the import fails or does not happen — the
loader cannot read the file, the model fails, the import skips it — the file is removed again and a
previous upload of the same name is put back, so the folder holds exactly the files the vault was
built from.  Uploads are imported one at a time, so two of the same name cannot interleave their
writes and restores.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path, PurePath

from ..errors import UserError
from ..fileio import write_atomically
from ..vault.ingest import ImportReport, import_paths
from ..vault.loaders import SUPPORTED_SUFFIXES
from ..vault.store import Vault
from ..workspace import Workspace


def upload_name(filename: str) -> str:
    """The file name to keep an upload under: the last part of what the browser sent, checked."""
    name = PurePath(filename.replace("\\", "/")).name  # never a path from the browser
    kinds = " ".join(sorted(SUPPORTED_SUFFIXES))
    if not name or name.startswith(".") or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise UserError(f"{name!r} is not a file name the Studio keeps; rename the file and import it again")
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UserError(f"{name!r} is not a file the vault imports; use {kinds}")
    return name


class UploadFolder:
    """``uploads/`` of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.path = workspace.root / "uploads"
        self._one_at_a_time = threading.Lock()

    def import_file(self, vault: Vault, name: str, data: bytes) -> ImportReport:
        """Keep ``data`` as ``name`` and import it; on any failure leave the folder as it was."""
        with self._one_at_a_time:
            self.path.mkdir(mode=0o700, exist_ok=True)
            target = self.path / name
            previous = self.path / f".{name}.{uuid.uuid4().hex}.previous"
            had_previous = target.exists()
            if had_previous:  # moved aside, not copied: put back as it was if the new one is not imported
                os.replace(target, previous)
            try:
                write_atomically(target, data, mode=0o600)
                report = import_paths(vault, [target])
                _check_imported(name, report)
            except BaseException:
                target.unlink(missing_ok=True)
                if had_previous:
                    os.replace(previous, target)
                raise
            if had_previous:
                previous.unlink()
            return report


def _check_imported(name: str, report: ImportReport) -> None:
    """Raise unless the import took the file in (added, updated, or the same as before)."""
    if report.failed:
        raise UserError(f"{name} could not be imported: {report.failed[0][1]}")
    if report.forgotten:
        raise UserError(
            f"{name} is not imported again: its document was forgotten on purpose; to bring it back, run "
            f"`arcticcodex vault import --force uploads/{name}` in the workspace"
        )
    if not (report.added or report.updated or report.unchanged):
        why = report.skipped[0][1] if report.skipped else "the import left it out"
        raise UserError(f"{name} was not imported: {why}")

"""Exporting a dataset from its page: the file ``arcticcodex dataset export`` writes, downloaded.

The same library call as the command line (:func:`~arcticcodex.dataset.export.export_dataset`, the
user's trusted keys, its default view), so the bytes are the command's bytes.  It runs on a worker
thread into a temporary file in the workspace's cache; the file is opened, unlinked (nothing is left
behind, even if the download is cut off) and streamed from the open handle a chunk at a time, each
read off the event loop.  A dataset that is not intact is refused, and one whose signer is not
trusted unless the form's "export anyway" box is ticked (``--allow-untrusted``): the library's
refusal is shown beside the form.  The ``raft`` format and ``--with-evidence`` need the vault's
passages and stay on the command line.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..dataset.export import SPLITS, export_dataset
from ..errors import TrustError, UserError
from .datasets import EXPORT_FORMATS, VERIFY_WORKERS

if TYPE_CHECKING:
    from .datasets import DatasetPages

__all__ = ["DatasetExport", "export_file_name"]

CHUNK_BYTES = 1 << 20
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "fn": "text/plain; charset=utf-8"}


def export_file_name(dataset_name: str, export_format: str, split: str) -> str:
    """The download's name, as the command line names its default output (``export-FORMAT[-SPLIT].jsonl``)."""
    suffix = {"fn": ".fn", "parquet": ".parquet"}.get(export_format, ".jsonl")
    named = "" if split == "train" else f"-{split}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("._") or "dataset"
    return f"{safe}-{export_format}{named}{suffix}"


class DatasetExport:
    """``POST /datasets/{run_id}/export``: format, split and ``allow_untrusted`` from the page's form."""

    def __init__(self, pages: DatasetPages) -> None:
        self.pages = pages

    async def export(self, request: Request) -> Response:
        form = await request.form()
        export_format, split = str(form.get("format", "")), str(form.get("split", "train"))
        allow_untrusted = form.get("allow_untrusted") == "1"
        if export_format not in EXPORT_FORMATS:
            raise UserError(f"choose an export format: one of {', '.join(EXPORT_FORMATS)}", parameters=["format"])
        if split not in SPLITS:
            raise UserError(f"choose which records to export: one of {', '.join(SPLITS)}", parameters=["split"])
        run_id = request.path_params["run_id"]
        handle, name = await self.pages.workers.run(self._write, run_id, export_format, split, allow_untrusted)
        media_type = MEDIA_TYPES.get(export_format, "application/x-ndjson")
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(_chunks(handle), media_type=media_type, headers=headers)

    def _write(self, run_id: str, export_format: str, split: str, allow_untrusted: bool) -> tuple[IO[bytes], str]:
        """Export into a temporary file; return it open (its name already gone) and the download's name."""
        dataset = self.pages.find(run_id)
        name = export_file_name(dataset["name"], export_format, split)
        report = self.pages.verdicts.verify(dataset["out"], keyring=self.pages.keyring, workers=VERIFY_WORKERS)
        if report.ok and not report.trusted and not allow_untrusted:  # the page's words; the library checks again
            raise TrustError(
                f"the dataset {dataset['name']} is intact, but its signer is NOT trusted ({report.trust_note}); "
                "tick “export anyway” to export it all the same, or trust its key with `arcticcodex keys trust FILE`",
                parameters=["allow_untrusted"],
            )
        folder = self.pages.cache / "exports"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=folder))
        try:
            target = scratch / name
            export_dataset(
                dataset["out"],
                target,
                export_format,
                keyring=self.pages.keyring,
                allow_untrusted=allow_untrusted,
                workers=VERIFY_WORKERS,
                split=split,
            )
            return target.open("rb"), name
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # the open handle keeps the bytes until it is closed


async def _chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await anyio.to_thread.run_sync(handle.read, CHUNK_BYTES):
            yield chunk
    finally:
        await anyio.to_thread.run_sync(handle.close)

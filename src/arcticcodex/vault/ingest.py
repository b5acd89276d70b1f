"""Importing files and folders into the vault.

Which files: :mod:`.walk` decides, and reports what it skipped and why (symlinks leading outside the
folder, special files, hidden files, the workspace's own data folder, dataset folders).  Files are
opened with ``O_NOFOLLOW`` and ``O_NONBLOCK`` and read only if they are still plain files.

Files are read, hashed, loaded, chunked and gathered into batches; each batch's new texts are
embedded in one call (the model is the slow part, and it is fastest on large batches), then the
batch's documents, chunks and vectors are written in one transaction.  A text or Markdown file of
:data:`STREAM_FROM_BYTES` or more is streamed instead (:mod:`.streamed`): read, chunked, embedded
and written a batch at a time in a transaction of its own, so memory stays bounded by a batch
however large the file.  Consequences:

* re-importing an unchanged file costs one hash: it is skipped before it is even parsed;
* a changed file replaces its chunks, and only text the vault has never embedded is embedded (what is
  embedded is a chunk's heading path, then its text: a renamed heading re-embeds the chunks under it);
* a crash or a kill between batches leaves every committed batch whole and nothing else, so running
  the same import again finishes the job;
* a file that cannot be read or parsed is reported with the reason and skipped; the batch goes on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fileio import FileIdentity, open_plain_file
from .chunker import chunk_text, embedding_text
from .entities import sha256_text
from .loaders import load_document, media_type_of
from .store import PreparedChunk, PreparedDocument, Vault
from .streamed import STREAMED_MEDIA_TYPES, StreamedImport, file_digest, import_streamed
from .vector_index import refresh_index
from .walk import discover

DEFAULT_BATCH_CHUNKS = 512
STREAM_FROM_BYTES = 4 * 1024 * 1024
MAX_WHOLE_FILE_BYTES = 256 * 1024 * 1024  # .html, .pdf, .jsonl are read whole: a 20 GB one must not be


@dataclass
class ImportReport:
    """What an import did, file by file (also the progress callback's argument)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # skipped: forgotten on purpose, not re-imported
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why): never read, see walk.py
    decoded: list[tuple[str, str]] = field(default_factory=list)  # (source, encoding): not UTF-8, see loaders.py
    chunks: int = 0
    embedded: int = 0  # texts sent to the model
    reused: int = 0  # chunk texts whose vector the vault already had
    batches: int = 0

    @property
    def files_done(self) -> int:
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.failed) + len(self.forgotten)

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": [{"source": source, "reason": reason} for source, reason in self.failed],
            "forgotten": self.forgotten,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "decoded": [{"source": source, "encoding": encoding} for source, encoding in self.decoded],
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
        }


def discover_files(
    paths: Iterable[Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    include_hidden: bool = False,
    data_dir: Path | None = None,
) -> list[Path]:
    """The files an import of ``paths`` reads (see :func:`.walk.discover`, which also says what it skips)."""
    return discover(paths, include=include, exclude=exclude, include_hidden=include_hidden, data_dir=data_dir).files


def source_name(path: Path, workspace_root: Path) -> str:
    """How a file is named in the vault: relative to the workspace when inside it, else absolute.

    ``path`` is the real path the walk found; it is not resolved again, so a symlink swapped in since
    cannot rename the document after wherever it points.
    """
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(workspace_root).as_posix()
    except ValueError:
        return absolute.as_posix()


def import_paths(
    vault: Vault,
    paths: Iterable[Path | str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    include_hidden: bool = False,
    batch_chunks: int = DEFAULT_BATCH_CHUNKS,
    on_file: Callable[[ImportReport, Path], None] | None = None,
    after_batch: Callable[[ImportReport], None] | None = None,
    force: bool = False,
) -> ImportReport:
    """Import files and folders (see the module docstring); ``on_file`` drives a progress bar.

    A file whose document was forgotten is skipped (listed in ``report.forgotten``): forgetting is
    a decision, and importing the same folder again must not silently undo it.  ``force`` imports it.
    """
    discovery = discover(
        [Path(p) for p in paths],
        include=include,
        exclude=exclude,
        include_hidden=include_hidden,
        data_dir=vault.workspace.data_dir,
    )
    report = ImportReport(skipped=discovery.skipped)
    pending: list[PreparedDocument] = []
    pending_chunks = 0
    forgotten = {} if force else vault.forgotten_sources()
    for path in discovery.files:
        source = source_name(path, vault.workspace.root)
        if source in forgotten:
            report.forgotten.append(source)
            if on_file is not None:
                on_file(report, path)
            continue
        try:
            prepared, changed = _prepare(vault, path, source, discovery.identities.get(path), report.decoded)
            if isinstance(prepared, _Streamable):
                if pending:  # keep the report's order of commits: what came before is written first
                    _commit(vault, pending, report, after_batch)
                    pending, pending_chunks = [], 0
                _stream(vault, prepared, report, batch_chunks, on_file, after_batch)
        except (OSError, UserError) as error:
            report.failed.append((source, _reason(error)))
        else:
            if prepared is None:
                report.unchanged.append(source)
            elif isinstance(prepared, PreparedDocument):
                pending.append(prepared)
                pending_chunks += len(prepared.chunks)
            if prepared is not None:
                (report.updated if changed else report.added).append(source)
        if pending_chunks >= batch_chunks:
            _commit(vault, pending, report, after_batch)
            pending, pending_chunks = [], 0
        if on_file is not None:
            on_file(report, path)
    if pending:
        _commit(vault, pending, report, after_batch)
    if report.added or report.updated:
        refresh_index(vault.conn, vault.workspace.database_path, vault.model_name)
    return report


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot read it: {error.strerror or error}"
    return str(error)


@dataclass(frozen=True)
class _Streamable:
    """A large text file that changed: it is streamed into the vault rather than loaded whole."""

    path: Path
    source: str
    digest: str
    size: int
    media_type: str
    modified: str
    identity: FileIdentity | None


def _prepare(
    vault: Vault, path: Path, source: str, identity: FileIdentity | None, decoded: list[tuple[str, str]]
) -> tuple[PreparedDocument | _Streamable | None, bool]:
    """Load and chunk a file; (None, False) when the vault already has exactly this file.

    ``identity`` is the file the walk found: a file whose path now leads elsewhere is refused.  A file
    that was not UTF-8 is added to ``decoded`` with the encoding it was read as.
    """
    media_type = media_type_of(path)
    with open_plain_file(path, identity=identity) as handle:
        info = os.fstat(handle.fileno())
        streamed = media_type in STREAMED_MEDIA_TYPES and info.st_size >= STREAM_FROM_BYTES
        too_big = not streamed and info.st_size > MAX_WHOLE_FILE_BYTES  # refused before a byte is read
        data = b"" if streamed or too_big else handle.read(MAX_WHOLE_FILE_BYTES + 1)
    if too_big or len(data) > MAX_WHOLE_FILE_BYTES:
        raise UserError(
            f"{path} is over {MAX_WHOLE_FILE_BYTES:,} bytes, the limit for {path.suffix or 'such'} files, which are "
            "read whole; split it, or convert it to .txt or .md, which are streamed at any size"
        )
    digest, size = file_digest(path, identity) if streamed else (hashlib.sha256(data).hexdigest(), len(data))
    existing = vault.conn.execute("SELECT source_sha256 FROM documents WHERE source = ?", (source,)).fetchone()
    if existing is not None and existing[0] == digest:
        return None, False
    modified = datetime.fromtimestamp(info.st_mtime, UTC).isoformat().replace("+00:00", "Z")
    if streamed and media_type is not None:
        return _Streamable(path, source, digest, size, media_type, modified, identity), existing is not None
    loaded = load_document(path, data)
    if loaded.encoding not in ("utf-8", "utf-8-sig"):
        decoded.append((source, loaded.encoding))
    spans = chunk_text(
        loaded.text, max_chars=vault.chunk_chars, overlap_chars=vault.overlap_chars, headings=loaded.headings
    )
    chunks = tuple(
        PreparedChunk(
            index,
            span.start_byte,
            span.end_byte,
            span.heading,
            loaded.text[span.start : span.end],
            span.heading_path,
        )
        for index, span in enumerate(spans)
    )
    document = PreparedDocument(
        source=source,
        title=loaded.title,
        media_type=loaded.media_type,
        source_sha256=digest,
        text=loaded.text,
        size_bytes=len(data),
        source_modified_at=modified,
        chunks=chunks,
        conversations=loaded.conversations,
    )
    return document, existing is not None


def _stream(
    vault: Vault,
    file: _Streamable,
    report: ImportReport,
    batch_chunks: int,
    on_file: Callable[[ImportReport, Path], None] | None,
    after_batch: Callable[[ImportReport], None] | None,
) -> None:
    """Stream one large file in (its own transaction); progress is reported batch by batch."""
    start = (report.chunks, report.embedded, report.reused)

    def progress(counts: StreamedImport) -> None:
        report.chunks, report.embedded, report.reused = (
            start[0] + counts.chunks,
            start[1] + counts.embedded,
            start[2] + counts.reused,
        )
        if on_file is not None:
            on_file(report, file.path)

    try:
        import_streamed(
            vault,
            file.path,
            source=file.source,
            digest=file.digest,
            size=file.size,
            media_type=file.media_type,
            modified=file.modified,
            batch_chunks=batch_chunks,
            on_batch=progress,
            identity=file.identity,
        )
    except BaseException:
        report.chunks, report.embedded, report.reused = start  # rolled back: none of it was written
        raise
    report.batches += 1
    if after_batch is not None:
        after_batch(report)


def _commit(
    vault: Vault,
    documents: list[PreparedDocument],
    report: ImportReport,
    after_batch: Callable[[ImportReport], None] | None,
) -> None:
    texts: dict[str, tuple[str | None, str]] = {}  # text hash -> (heading path, text): what is embedded
    for document in documents:
        for chunk in document.chunks:
            texts.setdefault(sha256_text(chunk.text), (chunk.heading_path, chunk.text))
    missing = vault.missing_embeddings(list(texts), [path for path, _ in texts.values()])
    order = [digest for digest in texts if digest in missing]
    vectors: dict[str, np.ndarray] = {}
    if order:
        matrix = vault.embedder.embed([embedding_text(*texts[digest]) for digest in order])
        vectors = dict(zip(order, matrix, strict=True))
    vault.write_documents(documents, vectors)
    report.chunks += sum(len(document.chunks) for document in documents)
    report.embedded += len(order)
    report.reused += len(texts) - len(order)
    report.batches += 1
    if after_batch is not None:
        after_batch(report)

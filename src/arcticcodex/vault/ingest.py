"""Importing files and folders into the vault.

Files are read, hashed, loaded, chunked and gathered into batches; each batch's new texts are
embedded in one call (the model is the slow part, and it is fastest on large batches), then the
batch's documents, chunks and vectors are written in one transaction.  Consequences:

* re-importing an unchanged file costs one hash: it is skipped before it is even parsed;
* a changed file replaces its chunks, and only text the vault has never embedded is embedded;
* a crash or a kill between batches leaves every committed batch whole and nothing else, so running
  the same import again finishes the job;
* a file that cannot be read or parsed is reported with the reason and skipped; the batch goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from ..errors import UserError
from .chunker import chunk_text
from .loaders import SUPPORTED_SUFFIXES, load_document
from .records import sha256_text
from .store import PreparedChunk, PreparedDocument, Vault

DEFAULT_BATCH_CHUNKS = 512
_SKIPPED_DIRECTORIES = frozenset({".git", ".hg", ".svn", ".arcticcodex", "__pycache__", "node_modules", ".venv"})


@dataclass
class ImportReport:
    """What an import did, file by file (also the progress callback's argument)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # skipped: forgotten on purpose, not re-imported
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
            "chunks": self.chunks,
            "embedded": self.embedded,
            "reused": self.reused,
        }


def discover_files(paths: Iterable[Path], *, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Path]:
    """Files to import: the paths given, and supported files under the folders given, sorted.

    ``include``/``exclude`` are glob patterns matched against the path relative to the folder given
    (``docs/*.md``, ``**/drafts/*``) and against the file name.  A file named explicitly is always
    taken (and fails later if its type is unsupported); hidden and tool folders are skipped.
    """
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UserError(f"{path} does not exist; check the path (it is relative to {Path.cwd()})")
        if path.is_file():
            found.append(path)
            continue
        for candidate in sorted(path.rglob("*")):
            relative = candidate.relative_to(path)
            if any(part in _SKIPPED_DIRECTORIES or part.startswith(".") for part in relative.parts[:-1]):
                continue
            if not candidate.is_file() or candidate.suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            text = relative.as_posix()
            if include and not any(_matches(text, pattern) for pattern in include):
                continue
            if any(_matches(text, pattern) for pattern in exclude):
                continue
            found.append(candidate)
    return list(dict.fromkeys(found))


def _matches(relative: str, pattern: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return fnmatchcase(relative, pattern) or fnmatchcase(name, pattern) or fnmatchcase(relative, pattern.lstrip("*/"))


def source_name(path: Path, workspace_root: Path) -> str:
    """How a file is named in the vault: relative to the workspace when inside it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(workspace_root).as_posix()
    except ValueError:
        return resolved.as_posix()


def import_paths(
    vault: Vault,
    paths: Iterable[Path | str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    batch_chunks: int = DEFAULT_BATCH_CHUNKS,
    on_file: Callable[[ImportReport, Path], None] | None = None,
    after_batch: Callable[[ImportReport], None] | None = None,
    force: bool = False,
) -> ImportReport:
    """Import files and folders (see the module docstring); ``on_file`` drives a progress bar.

    A file whose document was forgotten is skipped (listed in ``report.forgotten``): forgetting is
    a decision, and importing the same folder again must not silently undo it.  ``force`` imports it.
    """
    files = discover_files([Path(p) for p in paths], include=include, exclude=exclude)
    report = ImportReport()
    pending: list[PreparedDocument] = []
    pending_chunks = 0
    forgotten = {} if force else vault.forgotten_sources()
    for path in files:
        source = source_name(path, vault.workspace.root)
        if source in forgotten:
            report.forgotten.append(source)
            if on_file is not None:
                on_file(report, path)
            continue
        try:
            prepared, changed = _prepare(vault, path, source)
        except (OSError, UserError) as error:
            report.failed.append((source, _reason(error)))
        else:
            if prepared is None:
                report.unchanged.append(source)
            else:
                pending.append(prepared)
                pending_chunks += len(prepared.chunks)
                (report.updated if changed else report.added).append(source)
        if pending_chunks >= batch_chunks:
            _commit(vault, pending, report, after_batch)
            pending, pending_chunks = [], 0
        if on_file is not None:
            on_file(report, path)
    if pending:
        _commit(vault, pending, report, after_batch)
    return report


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot read it: {error.strerror or error}"
    return str(error)


def _prepare(vault: Vault, path: Path, source: str) -> tuple[PreparedDocument | None, bool]:
    """Load and chunk a file; (None, False) when the vault already has exactly this file."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    existing = vault.find_document(source)
    if existing is not None and existing.source_sha256 == digest:
        return None, False
    loaded = load_document(path, data)
    spans = chunk_text(loaded.text, max_chars=vault.chunk_chars, overlap_chars=vault.overlap_chars)
    chunks = tuple(
        PreparedChunk(index, span.start_byte, span.end_byte, span.heading, loaded.text[span.start : span.end])
        for index, span in enumerate(spans)
    )
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat().replace("+00:00", "Z")
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


def _commit(
    vault: Vault,
    documents: list[PreparedDocument],
    report: ImportReport,
    after_batch: Callable[[ImportReport], None] | None,
) -> None:
    texts: dict[str, str] = {}
    for document in documents:
        for chunk in document.chunks:
            texts.setdefault(sha256_text(chunk.text), chunk.text)
    missing = vault.missing_embeddings(list(texts))
    order = [digest for digest in texts if digest in missing]
    vectors: dict[str, np.ndarray] = {}
    if order:
        matrix = vault.embedder.embed([texts[digest] for digest in order])
        vectors = dict(zip(order, matrix, strict=True))
    vault.write_documents(documents, vectors)
    report.chunks += sum(len(document.chunks) for document in documents)
    report.embedded += len(order)
    report.reused += len(texts) - len(order)
    report.batches += 1
    if after_batch is not None:
        after_batch(report)

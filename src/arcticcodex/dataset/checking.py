"""Checking record lines: one line on its own, and a whole file in parallel across processes.

What a line can show by itself — it parses, it is a well-formed record, its signature verifies
against its frame and body — is checked here, line by line, in worker processes when the file is
large (an Ed25519 verification costs ~120 µs, so one core tops out near 3,000 records/s).  What needs
the whole file — order (``index``), duplicates, the Merkle root, the file digest — is checked by
:mod:`.verify` from the per-line results, which come back in file order.

The file is cut into byte ranges at line boundaries; each worker reads its own range, so nothing but
the results (id, index, leaf digest, problems: ~150 bytes a line) crosses between processes.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import ArcticCodexError, DatasetError
from ..fileio import open_plain_file
from ..provenance.record_signing import RecordSignature, verify_record
from ..provenance.signing import Ed25519Verifier, HmacSigner, Verifier
from .record import TrainingPair, canonical_json

__all__ = ["LineResult", "check_file_lines", "line_ranges"]

PARALLEL_FROM_BYTES = 16 << 20  # below this a pool costs more to start than it saves
RANGE_BYTES = 4 << 20
MAX_LINE_BYTES = 64 << 20  # a record is text; a longer line is damage (or an attempt to exhaust memory)


@dataclass(slots=True)
class LineResult:
    """What one line showed: its record's id, index and accepted flag, its Merkle leaf, its problems."""

    line: int
    record_id: str | None = None
    index: int | None = None
    accepted: bool | None = None
    leaf: bytes | None = None
    problems: list[str] = field(default_factory=list)
    cut_short: bool = False


def check_line(raw: bytes, line: int, verifier: Verifier) -> LineResult:
    """Everything one line shows by itself; a hostile line becomes problems, never an exception."""
    result = LineResult(line, cut_short=not raw.endswith(b"\n"))
    try:
        record = orjson.loads(raw)
        if not isinstance(record, dict):
            raise DatasetError("a record must be a JSON object")
        result.record_id = _printable_id(record.get("id"))
        pair = TrainingPair.from_json(record)
        signature = _signature(record.get("integrity"))
        body = {key: value for key, value in record.items() if key != "integrity"}
        frame_bytes = pair.frame(signature.key_id).to_bytes()
        body_bytes = canonical_json(body)
    except orjson.JSONDecodeError as exc:
        result.problems.append(f"not valid JSON ({exc})")
        return result
    except (ArcticCodexError, ValueError, TypeError) as exc:
        # a frame that breaks its schema (index -1, a newline in signer_id, an empty teacher name),
        # or a value JSON holds and a record cannot (an integer past 64 bits)
        result.problems.append(f"not a valid record: {exc}")
        return result
    result.index, result.accepted = pair.index, pair.accepted
    result.leaf = bytes.fromhex(signature.frame_sha256) + bytes.fromhex(signature.body_sha256)
    failure = verify_record(verifier, frame_bytes, signature, body_bytes)
    if failure:
        result.problems.append(failure)
    content_id = pair.content_id
    if pair.id != content_id:
        result.problems.append(
            f"id {pair.id[:40]!r} is not the record's content id {content_id} (recomputed from its instruction, "
            "completion and evidence): duplicates could hide under a made-up id"
        )
    return result


def _printable_id(value: Any) -> str | None:
    """A record id fit to print in a report: a string, without control characters, cut at 80 characters."""
    if not isinstance(value, str):
        return None
    cleaned = "".join(char if char.isprintable() else "?" for char in value[:80])
    return cleaned + ("…" if len(value) > 80 else "")


def check_file_lines(
    path: Path,
    verifier: Verifier,
    *,
    workers: int = 1,
    parallel_from_bytes: int | None = None,
    range_bytes: int | None = None,
    digest: Any = None,
    stop_at: int | None = None,
) -> Iterator[LineResult]:
    """Every line of ``path`` checked, in order; in ``workers`` processes when there are several and the file
    is large (a script passing ``workers`` needs the ``if __name__ == "__main__":`` guard, see
    :meth:`DatasetWriter.add_many`).  ``digest`` (a hashlib object), when given, is fed every byte of the
    file in order, so the file is read once for its SHA-256 and its lines.  ``stop_at`` ends the reading
    there (about: the line it falls in is finished, if it is not over-long), for a file far larger than
    its manifest says — a hostile sparse file of a terabyte is not read to its end.  ``parallel_from_bytes``
    and ``range_bytes`` default to :data:`PARALLEL_FROM_BYTES` and :data:`RANGE_BYTES` as they are then."""
    parallel_from_bytes = PARALLEL_FROM_BYTES if parallel_from_bytes is None else parallel_from_bytes
    range_bytes = RANGE_BYTES if range_bytes is None else range_bytes
    size = path.stat().st_size if stop_at is None else min(path.stat().st_size, stop_at)
    count = workers
    spec = _verifier_spec(verifier)
    if count <= 1 or size < parallel_from_bytes or spec is None:
        yield from _check_range(path, 0, size, 1, verifier, digest)
        return
    # forkserver: workers start clean (no inherited threads or open databases) and import only this module
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        pending: deque[Future[list[LineResult]]] = deque()
        for start, end, first in line_ranges(path, size, range_bytes, digest):  # a window in flight: flat memory
            pending.append(pool.submit(_check_range_job, str(path), start, end, first, spec))
            if len(pending) >= 2 * count:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def line_ranges(path: Path, size: int, range_bytes: int, digest: Any) -> Iterator[tuple[int, int, int]]:
    """(start, end, first line number) of byte ranges of about ``range_bytes`` that end at a line end.

    Every read is bounded (1 MiB), so a hostile file made of one enormous line costs no memory here.
    """
    block_bytes = 1 << 20
    with open_plain_file(path, what="a record file") as handle:
        start, line = 0, 1
        while start < size:
            handle.seek(min(start + range_bytes, size))
            while handle.tell() < size:  # on to the end of the line the cut fell in (or to the size read)
                piece = handle.readline(block_bytes)
                if not piece or piece.endswith(b"\n"):
                    break
            end = min(handle.tell(), size)
            handle.seek(start)
            newlines, remaining = 0, end - start
            while remaining:
                block = handle.read(min(remaining, block_bytes))
                if not block:
                    break
                if digest is not None:
                    digest.update(block)
                newlines += block.count(b"\n")
                remaining -= len(block)
            yield start, end, line
            line += newlines
            start = end


def _check_range(
    path: Path, start: int, end: int, first_line: int, verifier: Verifier, digest: Any = None
) -> Iterator[LineResult]:
    with open_plain_file(path, what="a record file") as handle:
        handle.seek(start)
        line = first_line
        while handle.tell() < end:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            if digest is not None:
                digest.update(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                yield _overlong_line(handle, line, digest, end)
            else:
                yield check_line(raw, line, verifier)
            line += 1


def _overlong_line(handle: Any, line: int, digest: Any, end: int) -> LineResult:
    """Skip the rest of a line past :data:`MAX_LINE_BYTES` (still digested), reading it in bounded blocks,
    at most up to ``end``."""
    size = MAX_LINE_BYTES
    while handle.tell() < end:
        block = handle.readline(1 << 20)
        if digest is not None:
            digest.update(block)
        size += len(block)
        if not block or block.endswith(b"\n"):
            break
    return LineResult(line, problems=[f"the line is over {size:,} bytes, past the {MAX_LINE_BYTES:,}-byte limit"])


def _check_range_job(path: str, start: int, end: int, first_line: int, spec: tuple[str, bytes]) -> list[LineResult]:
    return list(_check_range(Path(path), start, end, first_line, _verifier_from(spec)))


def _verifier_spec(verifier: Verifier) -> tuple[str, bytes] | None:
    """What a worker needs to rebuild ``verifier`` (key objects do not cross processes); None: stay serial."""
    if isinstance(verifier, Ed25519Verifier):
        return "ed25519", verifier.public_bytes()
    if isinstance(verifier, HmacSigner):
        return "hmac", verifier.secret_bytes()  # to our own worker, over a pipe; never written anywhere
    return None


def _verifier_from(spec: tuple[str, bytes]) -> Verifier:
    kind, material = spec
    return Ed25519Verifier.from_public_bytes(material) if kind == "ed25519" else HmacSigner(material)


def _signature(integrity: Any) -> RecordSignature:
    if not isinstance(integrity, dict):
        raise DatasetError("the record has no 'integrity' object: it was never signed")
    fields = ("alg", "key_id", "frame_sha256", "body_sha256", "sig")
    if not all(isinstance(integrity.get(key), str) for key in fields):
        raise DatasetError(f"'integrity' needs the strings {', '.join(fields)}")
    for key in ("key_id", "frame_sha256", "body_sha256"):
        try:
            if len(bytes.fromhex(integrity[key])) != 32 or integrity[key] != integrity[key].lower():
                raise ValueError
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise DatasetError(f"integrity.{key} is not a SHA-256 in lowercase hex") from None
    return RecordSignature.from_json(integrity)

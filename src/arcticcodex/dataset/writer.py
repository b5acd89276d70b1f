"""Writing a signed dataset folder, one record at a time, so that it is either complete or absent.

Records stream to ``train.jsonl.partial`` and ``rejected.jsonl.partial`` while the file digests and
the Merkle trees grow beside them (memory stays flat: a 100k-pair dataset is never held).  Closing
flushes and fsyncs both, renames them into place, writes the public key, and writes the signed
``manifest.json`` last, through a temporary file and a rename: a folder whose manifest exists is a
complete dataset, and a crash at any instant leaves either the previous state or the new one.

Each Merkle leaf is ``frame_sha256 ‖ body_sha256`` of a record (both digests its signature covers),
so the root binds every record's content and position; the per-file SHA-256 lets ``dataset verify``
name a truncated or extended file before reading a line of it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import multiprocessing
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from ..errors import DatasetError
from ..fileio import NEW_FILE_MODE, AtomicFile, write_atomically
from ..forge.record_frames import utc_timestamp
from ..layout import CARD_FILE, FORMAT, MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from ..provenance.merkle import MerkleAccumulator
from ..provenance.signing import Signer
from .card import CardInfo, dataset_card
from .id_set import IdSet
from .quality import QUALITY_BUCKETS, quality_bucket
from .record import TrainingPair, canonical_json, json_line
from .signing_pool import sign_batch, signed_line, signer_spec, start_worker
from .split import RunningSplit, Split

__all__ = ["MANIFEST_CONTEXT", "DatasetWriter", "sign_manifest"]

MANIFEST_CONTEXT = b"ArcticCodex-MANIFEST-v1\n"
PARALLEL_FROM = 2000  # pairs signed in this process before a worker pool is worth starting
SIGNING_BATCH = 256
MERKLE_LEAF_RULE = "RFC 6962: leaf sha256(0x00 || frame_sha256 || body_sha256), node sha256(0x01 || left || right)"
CANONICALIZATION = "TRAIN_PAIR frame (ForgeNumerics-S canonical bytes); body: JSON, sorted keys, no spaces, UTF-8"


class _RecordFile:
    """One JSONL file being written: its handle, running digest, Merkle tree and count."""

    def __init__(self, final_path: Path) -> None:
        self.final_path = final_path
        partial = final_path.with_name(final_path.name + ".partial")  # what vault/walk.py takes for a dataset
        self.file = AtomicFile(final_path, mode=NEW_FILE_MODE, temporary=partial)
        self.handle: IO[bytes] = self.file.handle
        self.digest = hashlib.sha256()
        self.tree = MerkleAccumulator()
        self.size = 0
        self.placed = 0  # records given an index; appended (tree.count) may lag behind in add_many

    def append(self, line: bytes, leaf: bytes) -> None:
        self.handle.write(line)
        self.digest.update(line)
        self.tree.add(leaf)
        self.size += len(line)

    def commit(self) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.tree.count,
            "merkle_root": self.tree.root().hex(),
            "sha256": self.digest.hexdigest(),
            "bytes": self.size,
        }


class DatasetWriter:
    """Write accepted and rejected pairs into a new dataset folder; use as a context manager.

    ``recipe`` is how the data was made (teachers without secrets, thresholds, rounds, template
    hashes); it is stored in the signed manifest.  Indexes are assigned here, in write order.
    ``validation_fraction`` of the accepted pairs are held out in ``validation.jsonl``, whole source
    documents at a time: ``split`` is the plan a caller made beforehand (see :mod:`.split`), else the
    writer decides as pairs arrive.  ``name`` is the card's title (default: the folder's name).
    """

    def __init__(
        self,
        directory: str | Path,
        signer: Signer,
        *,
        recipe: dict[str, Any] | None = None,
        validation_fraction: float = 0.0,
        split: Split | None = None,
        card: bool = True,
        name: str | None = None,
        card_info: CardInfo | None = None,
    ) -> None:
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), not {validation_fraction}")
        self.directory = Path(directory)
        self.name = name or self.directory.name
        """The dataset's name, the card's title (a run writes into a temporary folder named otherwise)."""
        self.signer = signer
        self.recipe = dict(recipe or {})
        self.validation_fraction = validation_fraction
        self.split = split or (RunningSplit(validation_fraction) if validation_fraction else None)
        """Which accepted pairs are held out (see :mod:`.split`); a run passes the one it planned."""
        self.card = card
        self.card_info = card_info
        """The card's license, languages and teachers' models (:class:`.card.CardInfo`; None: its defaults)."""
        self._teachers: set[str] = set()  # every teacher a written pair names, for the card
        self.notes: dict[str, Any] = {}
        """Counts the caller adds to the manifest (near-duplicates removed, …)."""
        if self.directory.exists() and any(self.directory.iterdir()):
            raise DatasetError(f"{self.directory} is not empty; write a new dataset into a new or empty folder")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._train = _RecordFile(self.directory / TRAIN_FILE)
        self._rejected = _RecordFile(self.directory / REJECTED_FILE)
        self._validation = _RecordFile(self.directory / VALIDATION_FILE) if self.split is not None else None
        self._qualities = dict.fromkeys(QUALITY_BUCKETS, 0)  # accepted pairs per bucket, for the card
        self._closed = False
        self._ids = IdSet()  # ~16 bytes an id, not a set's ~125: flat at 1M pairs (id_set.py)
        self.duplicates_removed = 0

    @property
    def accepted_count(self) -> int:
        return self._train.tree.count + (self._validation.tree.count if self._validation else 0)

    @property
    def validation_count(self) -> int:
        return self._validation.tree.count if self._validation else 0

    @property
    def rejected_count(self) -> int:
        return self._rejected.tree.count

    def add(self, pair: TrainingPair) -> TrainingPair | None:
        """Sign and append ``pair`` to ``train.jsonl`` (accepted) or ``rejected.jsonl``; return it as written.

        A pair whose id was already written (ids are content hashes: the same question, answer and
        evidence) is an exact duplicate: it is counted in ``duplicates_removed`` and None is returned.
        """
        placed = self._place(pair)
        if placed is None:
            return None
        target, index = placed
        pair = replace(pair, index=index)
        target.append(*signed_line(pair.body(), self.signer))
        return pair

    def add_many(self, pairs: Iterable[TrainingPair], *, workers: int = 1, parallel_from: int = PARALLEL_FROM) -> int:
        """Add ``pairs`` in order, as :meth:`add` would; return how many were written (not duplicates).

        With ``workers`` > 1, past the first ``parallel_from`` pairs the signing moves to that many
        worker processes, a window of batches at a time, so memory stays flat; the files are byte for
        byte those :meth:`add` would write.  Worker processes re-import a script's main module, so a
        script that passes ``workers`` needs the ``if __name__ == "__main__":`` guard (the
        command line has it).
        """
        count = workers
        spec = signer_spec(self.signer)
        iterator = iter(pairs)
        written = sum(self.add(pair) is not None for pair in itertools.islice(iterator, parallel_from))
        batch = list(itertools.islice(iterator, SIGNING_BATCH))
        if not batch:
            return written
        if count <= 1 or spec is None:
            return written + sum(self.add(pair) is not None for pair in itertools.chain(batch, iterator))
        context = multiprocessing.get_context("forkserver")
        pending: deque[tuple[list[_RecordFile], Future[list[tuple[bytes, bytes]]]]] = deque()
        with ProcessPoolExecutor(count, mp_context=context, initializer=start_worker, initargs=(spec,)) as pool:
            while batch or pending:
                while batch and len(pending) < 2 * count:
                    targets, bodies = [], []
                    for pair in batch:
                        placed = self._place(pair)
                        if placed is not None:
                            targets.append(placed[0])
                            bodies.append(orjson.dumps({**pair.body(), "index": placed[1]}))
                    written += len(targets)
                    pending.append((targets, pool.submit(sign_batch, bodies)))
                    batch = list(itertools.islice(iterator, SIGNING_BATCH))
                targets, job = pending.popleft()
                for target, (line, leaf) in zip(targets, job.result(), strict=True):
                    target.append(line, leaf)
        return written

    def _place(self, pair: TrainingPair) -> tuple[_RecordFile, int] | None:
        """Decide a pair's file and index (everything that depends on order), or None for a duplicate."""
        if self._closed:
            raise DatasetError(f"the dataset in {self.directory} is already closed; open a new writer to add pairs")
        if pair.id != pair.content_id:
            raise DatasetError(
                f"pair {pair.id[:40]!r} ({pair.instruction[:60]!r}) does not carry its content id {pair.content_id}: "
                "ids are pair_id_for(instruction, completion, evidence), so that duplicates collide and "
                "`dataset verify` can recompute them"
            )
        if pair.id in self._ids:
            self.duplicates_removed += 1
            return None
        self._ids.add(pair.id)
        self._teachers.update(pair.teachers)
        target = self._rejected
        if pair.accepted:
            target = self._train
            if self._validation is not None and self.split is not None and self.split.holds_out(pair):
                target = self._validation
            self._qualities[quality_bucket(float(pair.quality))] += 1
        target.placed += 1
        return target, target.placed - 1

    def close(self) -> dict[str, Any]:
        """Commit both files and write the signed manifest; return the manifest."""
        if self._closed:
            raise DatasetError(f"the dataset in {self.directory} is already closed")
        self._closed = True
        files = [self._train, *([self._validation] if self._validation else []), self._rejected]
        for record_file in files:
            record_file.commit()
        public_key = self._write_public_key()
        card = self._write_card() if self.card else None
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "generator": f"arcticcodex {version('arcticcodex')}",
            "created_at": utc_timestamp(datetime.now(UTC)),
            "record_count": self._train.tree.count,
            "rejected_count": self._rejected.tree.count,
            "validation_count": self.validation_count,
            "duplicates_removed": self.duplicates_removed,
            **self.notes,
            "merkle_root": self._train.tree.root().hex(),
            "merkle_leaf": MERKLE_LEAF_RULE,
            "canonicalization": CANONICALIZATION,
            "files": {record_file.final_path.name: record_file.summary() for record_file in files},
            "card": card,
            "algorithm": self.signer.algorithm,
            "key_id": self.signer.key_id,
            "public_key": public_key,
            "recipe": self.recipe,
        }
        manifest = sign_manifest(self.signer, manifest)
        write_atomically(self.directory / MANIFEST_FILE, json_line(manifest, indent=True))
        return manifest

    def abort(self) -> None:
        """Remove what this writer started; the folder is left as it was found."""
        if not self._closed:
            self._closed = True
            for record_file in (self._train, self._validation, self._rejected):
                if record_file is not None:
                    record_file.discard()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            if not self._closed:
                self.close()
        else:
            self.abort()

    def _write_public_key(self) -> str | None:
        """Ship the Ed25519 public key so verification needs nothing else; HMAC secrets never leave."""
        public_pem = getattr(self.signer, "public_pem", None)
        if public_pem is None:
            return None
        relative = f"keys/{self.signer.key_id}.pub"
        (self.directory / "keys").mkdir(exist_ok=True)
        write_atomically(self.directory / relative, public_pem())
        return relative

    def _write_card(self) -> dict[str, str]:
        """The dataset card (README.md): what is in the folder and how to check it; its digest is signed."""
        text = dataset_card(
            directory_name=self.name,
            accepted=self._train.tree.count,
            validation=self.validation_count,
            rejected=self._rejected.tree.count,
            duplicates_removed=self.duplicates_removed,
            quality_buckets=self._qualities,
            algorithm=self.signer.algorithm,
            key_id=self.signer.key_id,
            recipe=self.recipe,
            notes=self.notes,
            merkle_root=self._train.tree.root().hex(),
            teachers=sorted(self._teachers),
            info=self.card_info,
        ).encode("utf-8")
        write_atomically(self.directory / CARD_FILE, text)
        return {"file": CARD_FILE, "sha256": hashlib.sha256(text).hexdigest()}


def sign_manifest(signer: Signer, manifest: dict[str, Any]) -> dict[str, Any]:
    """Return ``manifest`` with a ``signature`` over its canonical JSON (domain-tagged)."""
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    signature = signer.sign(MANIFEST_CONTEXT + canonical_json(unsigned))
    return {**unsigned, "signature": base64.b64encode(signature).decode("ascii")}

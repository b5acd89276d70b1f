"""Exports: the accepted pairs of a dataset in the shape each trainer reads, streamed to one file.

One internal record, one small function per consumer (formats-signing-retrieval.md §1):

- ``messages`` — TRL SFTTrainer, Axolotl ``chat_template``: ``{"id", "messages"}``
- ``openai``   — OpenAI fine-tuning: ``{"messages"}`` only (the API refuses unknown keys)
- ``alpaca``   — ``{"instruction", "input", "output"}``
- ``sharegpt`` — ``{"conversations": [{"from": "human"|"gpt", "value"}]}`` (role *values* mapped,
  which TRL's own conversion does not do)
- ``dpo``      — TRL DPOTrainer, conversational preference: the accepted text is ``chosen`` and the
  first draft ``rejected``, only where the teachers' score improved by at least ``margin``
- ``raft``     — citation-aware ``messages`` rows: the evidence shuffled among distractor chunks of the
  vault, the answer citing its new place (:mod:`.raft`; needs ``raft=``, the vault's passages)
- ``fn``       — the canonical TRAIN_PAIR frames the signatures cover, one per line
- ``parquet``  — the ``messages`` rows (or, with ``parquet_rows="dpo"``, the ``dpo`` rows) as Parquet,
  written a row group at a time (needs ``pyarrow``: ``pip install 'arcticcodex[parquet]'``)

Multi-turn pairs keep their earlier turns (``messages``, ``sharegpt``, the DPO prompt; ``alpaca``
puts them in ``input`` as a transcript).  ``[n]`` citation markers are removed from the answers,
unless the export adds the evidence they point to, or adds a system prompt (see
:mod:`.citations`): ``view``.

``split`` chooses the records: ``train`` (the default), ``validation`` (the held-out pairs of a run
made with ``--validation``) or ``all`` (train, then validation); rejected pairs are never exported
(they are not training data).  The dataset is verified
first: a folder that is not intact is refused, and so is one whose signer is not trusted unless
``allow_untrusted`` (a trainer must not learn from data nobody can vouch for by accident).  The
output is written to a temporary file and renamed, so an interrupted export leaves no half file
under the target name.  With ``workers`` > 1, a dataset over 16 MB is converted in that many
processes, a window of line-aligned ranges at a time, and written in order: the bytes one process
would write, in flat memory at any size (except where the view needs this workspace: evidence
texts, ``raft``; and Parquet, written a row group at a time here).
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import DatasetError
from ..fileio import NEW_FILE_MODE, atomic_write, open_plain_file
from ..layout import TRAIN_FILE, VALIDATION_FILE
from ..provenance.trust import KeyRing
from . import checking
from .citations import TrainingView
from .record import TrainingPair
from .verify import require_verified

if TYPE_CHECKING:
    from .raft import RaftExamples

__all__ = ["EXPORT_FORMATS", "SPLITS", "export_dataset", "split_files"]

DEFAULT_DPO_MARGIN = 0.1


def _messages(pair: TrainingPair, key_id: str) -> dict[str, Any] | None:
    return {"id": pair.id, "messages": pair.messages}


def _openai(pair: TrainingPair, key_id: str) -> dict[str, Any] | None:
    return {"messages": pair.messages}


def _alpaca(pair: TrainingPair, key_id: str) -> dict[str, Any] | None:
    context = "\n\n".join(f"{turn.role.capitalize()}: {turn.content}" for turn in pair.context)
    return {"instruction": pair.instruction, "input": context, "output": pair.completion}


SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def _sharegpt(pair: TrainingPair, key_id: str) -> dict[str, Any] | None:
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in pair.messages]}


EXPORT_FORMATS: dict[str, Callable[[TrainingPair, str], dict[str, Any] | None]] = {
    "messages": _messages,
    "openai": _openai,
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
}
FORMAT_NAMES = (*EXPORT_FORMATS, "dpo", "raft", "fn", "parquet")
PARQUET_ROWS = ("messages", "dpo")
SPLITS = ("train", "validation", "all")
ROW_GROUP = 1000


def dpo_row(pair: TrainingPair, margin: float = DEFAULT_DPO_MARGIN) -> dict[str, Any] | None:
    """A preference pair from the revision history, or None when there is no clear improvement."""
    if len(pair.revisions) < 2:
        return None
    first = pair.revisions[0]
    if first.text.strip() == pair.completion.strip() or float(pair.quality) - first.score < margin:
        return None
    return {
        "id": pair.id,
        "prompt": pair.messages[:-1],
        "chosen": [{"role": "assistant", "content": pair.completion}],
        "rejected": [{"role": "assistant", "content": first.text}],
        "score_chosen": float(pair.quality),
        "score_rejected": first.score,
    }


def export_dataset(
    directory: str | Path,
    output: str | Path,
    export_format: str,
    *,
    dpo_margin: float = DEFAULT_DPO_MARGIN,
    parquet_rows: str = "messages",
    keyring: KeyRing | None = None,
    allow_untrusted: bool = False,
    workers: int = 1,
    view: TrainingView | None = None,
    split: str = "train",
    raft: RaftExamples | None = None,
) -> int:
    """Write the accepted pairs of ``directory`` to ``output`` in ``export_format``; return the rows written.

    ``keyring`` says whose signatures are trusted (default: nobody's, so only ``allow_untrusted``
    lets the export through); the command line passes the user's trusted keys.  ``view`` shows each
    pair to the trainer (default: citation markers removed; see :class:`TrainingView`).  The ``raft``
    format shows each pair through ``raft`` instead (its evidence among distractors).  ``workers``
    processes verify the dataset and then convert it (the command line passes one a core); a script
    passing ``workers`` needs the ``if __name__ == "__main__":`` guard, as for ``verify_dataset``.
    """
    view = view or TrainingView()
    if export_format not in FORMAT_NAMES:
        raise DatasetError(f"unknown export format {export_format!r}; choose one of {', '.join(FORMAT_NAMES)}")
    if export_format == "parquet" and parquet_rows not in PARQUET_ROWS:
        raise DatasetError(f"Parquet rows must be one of {', '.join(PARQUET_ROWS)}, not {parquet_rows!r}")
    if export_format == "raft" and raft is None:
        raise DatasetError(
            "the raft format shows each pair's evidence among distractor chunks of a vault: pass raft, "
            "a RaftExamples over the vault of the workspace that made the dataset",
            parameters=["raft"],
        )
    require_verified(directory, keyring=keyring, allow_untrusted=allow_untrusted, workers=workers)
    sources = split_files(Path(directory), split)
    if export_format == "parquet":
        return _export_parquet(sources, Path(output), parquet_rows, dpo_margin, view)
    rows = _Rows(export_format, dpo_margin, view, raft)
    with atomic_write(Path(output), mode=NEW_FILE_MODE) as handle:  # the old file stays until the new one is whole
        if (
            workers > 1
            and rows.portable
            and sum(path.stat().st_size for path in sources) >= checking.PARALLEL_FROM_BYTES
        ):
            return _write_in_parallel(handle, sources, rows, workers)
        written = 0
        for path in sources:
            for line in _range_lines(path, 0, path.stat().st_size, 1, rows):
                handle.write(line)
                written += 1
        return written


@dataclass(frozen=True)
class _Rows:
    """How each pair becomes its line of the export (or none: a pair with no preference, for ``dpo``).

    One definition for both paths, so the worker processes write exactly the bytes the serial path
    writes.  It crosses to a worker when it is :attr:`portable`: a view without evidence texts (those
    are looked up in the workspace's database) and not ``raft`` (its distractors come from the vault).
    """

    export_format: str
    dpo_margin: float
    view: TrainingView
    raft: RaftExamples | None = None

    @property
    def portable(self) -> bool:
        return self.view.evidence_texts is None and self.raft is None and self.export_format != "raft"

    def line(self, where: str, pair: TrainingPair, key_id: str) -> bytes | None:
        if self.export_format == "fn":
            return (pair.frame(key_id).to_frame().to_text() + "\n").encode("utf-8")
        if self.raft is not None and self.export_format == "raft":
            row = self.raft.row(pair, where)  # its own view: the evidence among distractors, markers renumbered
        elif self.export_format == "dpo":
            row = dpo_row(self.view.apply(pair, where), self.dpo_margin)
        else:
            convert = EXPORT_FORMATS.get(self.export_format)
            row = convert(self.view.apply(pair, where), key_id) if convert is not None else None
        return None if row is None else (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _write_in_parallel(handle: Any, sources: list[Path], rows: _Rows, workers: int) -> int:
    """Convert line-aligned ranges of ``sources`` in ``workers`` processes and write their lines in order.

    A window of ``2 × workers`` ranges (4 MB each) is in flight, so memory stays flat whatever the size;
    the ranges are cut as ``dataset verify`` cuts them (:func:`~.checking.line_ranges`).
    """
    written = 0
    context = multiprocessing.get_context("forkserver")  # clean workers, as verify's (see checking.py)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[tuple[bytes, int]]] = deque()

        def write_oldest() -> None:
            nonlocal written
            lines, count = pending.popleft().result()
            handle.write(lines)
            written += count

        for path in sources:
            for start, end, first in checking.line_ranges(path, path.stat().st_size, checking.RANGE_BYTES, None):
                pending.append(pool.submit(_convert_range, str(path), start, end, first, rows))
                if len(pending) >= 2 * workers:
                    write_oldest()
        while pending:
            write_oldest()
    return written


def _convert_range(path: str, start: int, end: int, first_line: int, rows: _Rows) -> tuple[bytes, int]:
    lines = list(_range_lines(Path(path), start, end, first_line, rows))
    return b"".join(lines), len(lines)


def _range_lines(path: Path, start: int, end: int, first_line: int, rows: _Rows) -> Iterator[bytes]:
    for where, pair, key_id in _range_pairs(path, start, end, first_line):
        line = rows.line(where, pair, key_id)
        if line is not None:
            yield line


def split_files(directory: Path, split: str) -> list[Path]:
    """The record files of ``split`` (``train``, ``validation`` or ``all``) in a dataset folder."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    train, validation = directory / TRAIN_FILE, directory / VALIDATION_FILE
    if not train.is_file():
        raise DatasetError(f"{directory} has no {TRAIN_FILE}: it is not a dataset folder")
    if split == "train" or (split == "all" and not validation.is_file()):
        return [train]
    if not validation.is_file():
        raise DatasetError(
            f"{directory} has no validation file ({VALIDATION_FILE}): it was written with no pairs held out. "
            "Export split 'train', or distill with a validation fraction to hold pairs out "
            "(`arcticcodex distill … --validation 0.1`)",
            parameters=["split"],
        )
    return [validation] if split == "validation" else [train, validation]


def _pairs(*paths: Path) -> Iterator[tuple[str, TrainingPair, str]]:
    """Each pair with its ``file:line`` and the key id it was signed under (the ``fn`` frames bind it)."""
    for path in paths:
        yield from _range_pairs(path, 0, path.stat().st_size, 1)


def _range_pairs(path: Path, start: int, end: int, first_line: int) -> Iterator[tuple[str, TrainingPair, str]]:
    """The pairs of the lines that start in bytes ``start``–``end`` of ``path`` (the first is line ``first_line``),
    read strictly, one line at a time (the file was verified just before: every line is a signed record)."""
    with open_plain_file(path, what="a record file") as handle:
        handle.seek(start)
        line_number = first_line
        while handle.tell() < end:
            line = handle.readline()
            if not line:
                return
            where = f"{path.name}:{line_number}"
            line_number += 1
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON ({exc.msg}); run `arcticcodex dataset verify`") from exc
            pair = TrainingPair.from_json(record, where=where)
            integrity = record.get("integrity")
            key_id = integrity.get("key_id") if isinstance(integrity, dict) else None
            if not isinstance(key_id, str):
                raise DatasetError(f"{where}: the record has no integrity.key_id; it was never signed")
            yield where, pair, key_id


def _export_parquet(sources: list[Path], output: Path, rows_of: str, dpo_margin: float, view: TrainingView) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        # from None: the ImportError adds nothing the message does not already say
        raise DatasetError(
            "Parquet export needs pyarrow: pip install 'arcticcodex[parquet]' "
            "(or export JSONL, which every trainer reads)"
        ) from None
    turn = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    if rows_of == "messages":
        schema = pa.schema([("id", pa.string()), ("messages", turn)])
    else:
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("prompt", turn),
                ("chosen", turn),
                ("rejected", turn),
                ("score_chosen", pa.float64()),
                ("score_rejected", pa.float64()),
            ]
        )
    written = 0
    batch: list[dict[str, Any]] = []
    with atomic_write(output, mode=NEW_FILE_MODE) as handle, pq.ParquetWriter(handle, schema) as writer:
        for where, signed, key_id in _pairs(*sources):
            pair = view.apply(signed, where)
            row = _messages(pair, key_id) if rows_of == "messages" else dpo_row(pair, dpo_margin)
            if row is None:
                continue
            batch.append(row)
            if len(batch) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written += len(batch)
                batch = []
        if batch or not written:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            written += len(batch)
    return written

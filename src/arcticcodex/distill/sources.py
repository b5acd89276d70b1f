"""Prompt sources for a distillation run: a prompts file read one record at a time.

A prompts file is JSONL (one object per line) or CSV (a header row, then one record per row) with the
fields ``instruction`` (required), ``evidence`` (optional: one text, or a list of texts) and
``reference`` (optional: an answer the teachers may compare against).  Other fields are kept as
``metadata`` and travel with the pair, except names that look like a misspelling of a known field
(``instuction``), which are refused: a silently ignored typo would lose the evidence of every record.

The file is streamed, never loaded whole, so a million-prompt file costs no more memory than a short
one; every problem is reported with the file, the line the record starts on, the field and the fix.
Each prompt gets a ``key``: a digest of its content, so that a resumed run recognises prompts it has
already handled even if the file was reordered, and two identical prompts are one prompt.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dataset.record import content_digest
from ..errors import PromptFileError

__all__ = ["PromptItem", "read_prompts"]

KNOWN_FIELDS = ("instruction", "evidence", "reference")
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One prompt to distil: what to ask, the evidence to answer from, and where it came from."""

    instruction: str
    evidence: tuple[str, ...] = ()
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    """``file:line`` of the record, for messages and provenance."""

    @property
    def key(self) -> str:
        """A stable content id: the same instruction, evidence and reference always give the same key."""
        return "p-" + content_digest((self.instruction, *self.evidence, "\x1e", self.reference or ""))[:32]


def read_prompts(path: str | Path) -> Iterator[PromptItem]:
    """Yield the prompts in ``path`` (JSONL or CSV, chosen by suffix), raising on the first bad record.

    Raises :class:`~arcticcodex.errors.PromptFileError` naming the file, line and field.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in JSONL_SUFFIXES | CSV_SUFFIXES:
        raise PromptFileError(
            f"unknown prompts file type {path.suffix or '(no suffix)'!r}; "
            "name the file *.jsonl (one JSON object per line) or *.csv (header row with an 'instruction' column)",
            path=str(path),
        )
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise PromptFileError(f"cannot open the prompts file: {exc.strerror or exc}", path=str(path)) from exc
    with handle:
        try:
            if suffix in JSONL_SUFFIXES:
                yield from _read_jsonl(handle, str(path))
            else:
                yield from _read_csv(handle, str(path), delimiter="\t" if suffix == ".tsv" else ",")
        except UnicodeDecodeError as exc:
            raise PromptFileError(
                f"the file is not UTF-8 text ({exc.reason} at byte {exc.start} of a read block); re-save it as UTF-8",
                path=str(path),
            ) from exc


def _read_jsonl(lines: Iterator[str], path: str) -> Iterator[PromptItem]:
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(
                f"not valid JSON ({exc.msg} at column {exc.colno}); each line must be one JSON object "
                'such as {"instruction": "...", "evidence": ["..."]}',
                path=path,
                line=line_number,
            ) from exc
        if not isinstance(record, dict):
            raise PromptFileError(
                f"expected a JSON object, found {_json_type(record)}; each line must be one object "
                'such as {"instruction": "..."}',
                path=path,
                line=line_number,
            )
        yield _prompt_from_record(record, path=path, line=line_number, evidence_is_cell=False)


def _read_csv(handle: Any, path: str, *, delimiter: str) -> Iterator[PromptItem]:
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise PromptFileError(f"the header row is not valid CSV ({exc})", path=path, line=1) from exc
    columns = [name.strip() for name in header]
    _check_field_names(columns, path=path, line=1)
    if "instruction" not in columns:
        raise PromptFileError(
            f"the header row has no 'instruction' column (it has {', '.join(map(repr, columns)) or 'none'}); "
            "add one, with 'evidence' and 'reference' as optional columns",
            path=path,
            line=1,
            field="instruction",
        )
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise PromptFileError(
            f"the header row names {', '.join(map(repr, duplicated))} more than once; give each column one name",
            path=path,
            line=1,
        )
    record_start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise PromptFileError(
                f"not valid CSV ({exc}); check the quoting of this record", path=path, line=record_start
            ) from exc
        line_number, record_start = record_start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise PromptFileError(
                f"this row has {len(row)} cells but the header has {len(columns)} columns; "
                "quote cells that contain the delimiter or a line break",
                path=path,
                line=line_number,
            )
        record = {name: cell for name, cell in zip(columns, row, strict=True) if cell != "" or name == "instruction"}
        yield _prompt_from_record(record, path=path, line=line_number, evidence_is_cell=True)


def _prompt_from_record(record: dict[str, Any], *, path: str, line: int, evidence_is_cell: bool) -> PromptItem:
    _check_field_names(record, path=path, line=line)
    instruction = record.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        found = "missing" if instruction is None else f"{_json_type(instruction)} {instruction!r}"[:80]
        raise PromptFileError(
            f"'instruction' must be a non-empty text, found {found}; give every record the question to ask",
            path=path,
            line=line,
            field="instruction",
        )
    evidence = _evidence(record.get("evidence"), path=path, line=line, from_cell=evidence_is_cell)
    reference = record.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise PromptFileError(
            f"'reference' must be a text, found {_json_type(reference)}; give the reference answer as a string",
            path=path,
            line=line,
            field="reference",
        )
    metadata = {name: value for name, value in record.items() if name not in KNOWN_FIELDS}
    return PromptItem(
        instruction=instruction.strip(),
        evidence=evidence,
        reference=reference.strip() or None if reference is not None else None,
        metadata=metadata,
        origin=f"{path}:{line}",
    )


def _evidence(value: Any, *, path: str, line: int, from_cell: bool) -> tuple[str, ...]:
    """Normalise ``evidence``: absent, one text, or a list of texts (in CSV, a JSON list in the cell)."""
    if value is None:
        return ()
    if from_cell and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise PromptFileError(
                f"the 'evidence' cell starts with '[' but is not a JSON list ({exc.msg}); write several texts "
                'as ["first", "second"], or one text without a leading [',
                path=path,
                line=line,
                field="evidence",
            ) from exc
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, list):
        texts: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise PromptFileError(
                    f"'evidence' item {index} is {_json_type(item)}, not a text; evidence is a text or a list of texts",
                    path=path,
                    line=line,
                    field="evidence",
                )
            if item.strip():
                texts.append(item.strip())
        return tuple(texts)
    raise PromptFileError(
        f"'evidence' must be a text or a list of texts, found {_json_type(value)}",
        path=path,
        line=line,
        field="evidence",
    )


def _check_field_names(names: Any, *, path: str, line: int) -> None:
    """Refuse field names that are near-misses of a known field: a typo would silently drop data."""
    for name in names:
        if name in KNOWN_FIELDS or not isinstance(name, str):
            continue
        close = difflib.get_close_matches(name.lower(), KNOWN_FIELDS, n=1, cutoff=0.75)
        if close:
            raise PromptFileError(
                f"unknown field {name!r}; did you mean {close[0]!r}? (known fields: {', '.join(KNOWN_FIELDS)}; "
                "other fields are kept as metadata)",
                path=path,
                line=line,
                field=name,
            )


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a text", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)

"""The evidence a pair waiting for review rests on: each item's text, with the passages the answer cites marked.

A pair binds its evidence by reference (chunk, document, SHA-256), not by text.  The texts are where
the run found them: evidence given with a prompt is in the task's JSON in the run journal; evidence
retrieved from the vault is a vault chunk (found by id, or by hash when the document was
re-imported).  A text is shown only if its SHA-256 is the one the pair was judged against, so an
edited chunk is never passed off as the pair's evidence.

**Marked** passages: the sentences of an item the answer repeats (most of their words, at least
three, are in the answer; a shorter one only when quoted whole) are marked.  An item is *cited*
when the answer names it as ``[n]`` (its number among the pair's evidence, as the teachers saw it)
or repeats one of its sentences; an item the answer names but repeats no sentence of is marked
whole.  The marks are (text, marked) segments, so a page draws
them as ``<mark>`` elements without putting markup into the data.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import RecordNotFoundError
from ..vault.store import Vault
from .journal import RunJournal

__all__ = ["ShownEvidence", "cited_segments", "pair_evidence"]

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_WORD = re.compile(r"\w+")
REPEATED_SHARE = 0.6  # a sentence is repeated when this share of its words is in the answer …
MIN_WORDS = 3  # … and it has this many words (a shorter one, a heading, only when quoted whole)


@dataclass(frozen=True, slots=True)
class ShownEvidence:
    """One evidence item of a pair, as a reviewer sees it."""

    number: int
    source: str
    chunk_id: str
    text: str | None  # None: the text is no longer in the workspace (or no longer the one judged)
    cited: bool
    segments: tuple[tuple[str, bool], ...]  # (text, marked) pieces of ``text``


def pair_evidence(
    journal: RunJournal, vault: Vault, run_id: str, position: int, pair: Mapping[str, Any]
) -> list[ShownEvidence]:
    """The pair's evidence items in order, with their texts and marks (see the module docstring)."""
    row = journal.conn.execute(
        "SELECT task FROM distill_tasks WHERE run_id = ? AND position = ?", (run_id, position)
    ).fetchone()
    given = {
        str(item.get("sha256")): str(item["text"])
        for item in (json.loads(row[0]).get("evidence") or [] if row is not None else [])
        if isinstance(item, dict) and "text" in item
    }
    answer = str(pair.get("completion", ""))
    shown = []
    for number, ref in enumerate(pair.get("evidence") or [], 1):
        sha256 = str(ref.get("sha256", ""))
        text = given.get(sha256) or _vault_text(vault, str(ref.get("chunk_id", "")), sha256)
        named = f"[{number}]" in answer
        segments = cited_segments(text, answer) if text else ()
        if named and text and not any(marked for _, marked in segments):
            segments = ((text, True),)
        cited = named or any(marked for _, marked in segments)
        shown.append(
            ShownEvidence(
                number,
                str(ref.get("source") or ref.get("doc_id") or ""),
                str(ref.get("chunk_id", "")),
                text,
                cited,
                tuple(segments),
            )
        )
    return shown


def cited_segments(text: str, answer: str) -> tuple[tuple[str, bool], ...]:
    """``text`` as (piece, marked) segments, the sentences ``answer`` repeats marked."""
    said = {word.lower() for word in _WORD.findall(answer)}
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        words = [word.lower() for word in _WORD.findall(sentence)]
        repeated = len(words) >= MIN_WORDS and sum(word in said for word in words) / len(words) >= REPEATED_SHARE
        if words and (repeated or sentence in answer):
            start = match.start() + len(match.group()) - len(match.group().lstrip())
            end = match.start() + len(match.group().rstrip())
            segments += [(text[position:start], False), (text[start:end], True)]
            position = end
    segments.append((text[position:], False))
    return tuple((piece, marked) for piece, marked in segments if piece)


def _vault_text(vault: Vault, chunk_id: str, sha256: str) -> str | None:
    try:
        text: str | None = vault.get_chunk(chunk_id).text
    except RecordNotFoundError:
        text = None
    if text is None or _sha256(text) != sha256:
        row = vault.conn.execute("SELECT text FROM chunks WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
        text = str(row[0]) if row is not None else None
    return text if text is not None and _sha256(text) == sha256 else None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

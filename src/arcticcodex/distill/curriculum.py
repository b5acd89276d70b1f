"""A curriculum: questions about the vault's chunks, written offline or by a teacher (``--from-vault``).

Which chunks: all of them, in an order that spreads over the vault — a round over the documents
(one chunk of each), then another, and within a document first its start, then its middle, then its
quarters, and so on (see :func:`sampled_chunks`).  So ``--limit 20`` over forty documents asks about
twenty documents, not about the first twenty chunks of the first one.  The order is fixed, so the
same command asks the same questions again (and a teacher's replies come from the request cache).

Who writes them: offline, from each chunk's headings and defining sentences
(:func:`curriculum_questions`); or a configured teacher (``--questions-by``), asked about only as
many chunks as the questions still needed call for, a batch of at most its concurrency at a time.
Its calls go through the run's ledger (the budget applies, the cost becomes the run's first spend).
A chunk the teacher writes no usable question about becomes a failed task with the reason, and the
run goes on without it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from ..dataset.record import content_digest
from ..errors import BudgetExceededError, TeacherError
from ..teachers.passages import evidence_sentences
from ..teachers.replicas import ApiTeacher
from ..vault.entities import Chunk, Document
from ..vault.store import Vault
from .tasks import Task, chunk_evidence

__all__ = ["curriculum_questions", "curriculum_task", "curriculum_tasks", "sampled_chunks", "teacher_curriculum_tasks"]

_DEFINITION = re.compile(r"^([A-Z][\w\-./`]*(?: [\w\-./`]+){0,4}) (is|are|means|holds|stores) ")


def sampled_chunks(vault: Vault) -> Iterator[tuple[Document, Chunk]]:
    """Every chunk of the vault once, spread over documents and over each document (module docstring)."""
    ranges = {
        document_id: (first, last)
        for document_id, first, last in vault.conn.execute(
            "SELECT document_id, min(sequence), max(sequence) FROM chunks GROUP BY document_id"
        )
    }
    orders = [(document, _spread(*ranges[document.id])) for document in vault.list_documents() if document.id in ranges]
    while orders:
        still = []
        for document, order in orders:
            for sequence in order:
                row = vault.conn.execute(
                    "SELECT * FROM chunks WHERE document_id = ? AND sequence = ?", (document.id, sequence)
                ).fetchone()
                if row is not None:
                    yield document, Chunk.from_row(row)
                    still.append((document, order))
                    break
        orders = still


def _spread(first: int, last: int) -> Iterator[int]:
    """``first``…``last`` in van der Corput order: 0, ½, ¼, ¾, ⅛ … of the range, each position once."""
    count = last - first + 1
    bits = max(1, (count - 1).bit_length())
    for index in range(1 << bits):
        position = int(f"{index:0{bits}b}"[::-1], 2)
        if position < count:
            yield first + position


def curriculum_tasks(vault: Vault, *, limit: int | None = None, per_chunk: int = 1) -> Iterator[Task]:
    """Questions written offline from each chunk's heading and key sentences, the chunk as evidence."""
    made = 0
    asked: set[tuple[str, str]] = set()  # overlapping chunks share headings: ask about a section once
    for document, chunk in sampled_chunks(vault):
        fresh = [q for q in curriculum_questions(chunk, document) if (document.id, q) not in asked]
        for question in fresh[:per_chunk]:
            if limit is not None and made >= limit:
                return
            made += 1
            asked.add((document.id, question))
            yield curriculum_task(question, chunk, document, author="offline")


def curriculum_task(question: str, chunk: Chunk, document: Document, *, author: str) -> Task:
    key = "q-" + content_digest((chunk.id, question))[:32]
    return Task(
        key,
        {
            "instruction": question,
            "evidence": [chunk_evidence(chunk, document)],
            "reference": None,
            "draft": None,
            "retrieve": False,
            "source": {"kind": "curriculum", "ref": f"{chunk.id} ({author})"},
            "metadata": {},
        },
    )


def unasked_chunk_task(chunk: Chunk, document: Document, *, author: str, reason: str) -> Task:
    """A chunk the teacher wrote no usable question about: a task that fails with the reason."""
    key = "qf-" + content_digest((chunk.id, author))[:32]
    return Task(
        key,
        {
            "instruction": f"(questions about {chunk.id})",
            "evidence": [chunk_evidence(chunk, document)],
            "reference": None,
            "draft": None,
            "retrieve": False,
            "failure": f"{author} wrote no usable question about chunk {chunk.id} of {document.source}: {reason}",
            "source": {"kind": "curriculum", "ref": f"{chunk.id} ({author})"},
            "metadata": {},
        },
    )


def curriculum_questions(chunk: Chunk, document: Document) -> list[str]:
    """Offline questions: one per section heading in the chunk, then one per defining sentence.

    "## Hybrid search" in the guide titled "The vault" gives "What does The vault say about hybrid
    search?"; "The manifest is the file that …" gives "What is the manifest?".  A chunk with neither
    gets one question about its opening words, so every chunk with prose is asked about.
    """
    questions: list[str] = []
    title = document.title or Path(document.source).stem
    headings = [chunk.heading or ""] + [line for line in chunk.text.splitlines() if line.lstrip().startswith("#")]
    for raw in headings:
        heading = raw.strip().lstrip("#").strip()
        if heading and heading.lower() != title.lower():
            _add(questions, f"What does {title} say about {_lower_first(heading)}?")
    for sentence in evidence_sentences(chunk.text):
        match = _DEFINITION.match(sentence.lstrip("#").strip())
        if match:
            subject, verb = _lower_first(match.group(1)), match.group(2)
            _add(questions, f"What {verb} {subject}?" if verb in ("is", "are") else f"What does {subject} {verb[:-1]}?")
    if not questions and evidence_sentences(chunk.text):
        questions.append(f"What does {title} explain in the part that begins “{_opening(chunk.text)}”?")
    return questions


def _add(questions: list[str], question: str) -> None:
    if question not in questions:
        questions.append(question)


def _lower_first(phrase: str) -> str:
    """ "Hybrid search" → "hybrid search", but "ForgeNumerics-S" and "BM25" keep their capitals."""
    first = phrase.split(" ", 1)[0]
    if first in ("A", "An", "The") or (len(first) > 1 and first[1:].islower()):
        return phrase[0].lower() + phrase[1:]
    return phrase


def _opening(text: str) -> str:
    return " ".join(word for word in text.split() if not word.startswith("#"))[:60].rsplit(" ", 1)[0] + "…"


async def teacher_curriculum_tasks(
    vault: Vault, teacher: ApiTeacher, *, limit: int | None = None, per_chunk: int = 1
) -> list[Task]:
    """Questions a configured teacher writes (``limit`` in all), plus a failed task per chunk it could not do.

    Only as many chunks are asked about as ``limit`` still needs (``per_chunk`` questions each), at
    most the teacher's concurrency at a time; a spent budget (the teacher's ledger) stops it with
    :class:`BudgetExceededError`.
    """
    tasks: list[Task] = []
    written = 0
    chunks = sampled_chunks(vault)
    concurrency = max(1, teacher.config.concurrency)
    while limit is None or written < limit:
        wanted = concurrency if limit is None else min(concurrency, -(-(limit - written) // per_chunk))
        batch = list(itertools.islice(chunks, wanted))
        if not batch:
            break
        replies = await asyncio.gather(
            *(teacher.questions(chunk.text, source=document.source, count=per_chunk) for document, chunk in batch),
            return_exceptions=True,
        )
        for (document, chunk), reply in zip(batch, replies, strict=True):
            if isinstance(reply, BudgetExceededError):
                raise reply
            if isinstance(reply, TeacherError):  # no usable reply, even after a re-ask: this chunk fails
                tasks.append(unasked_chunk_task(chunk, document, author=teacher.name, reason=str(reply)))
                continue
            if isinstance(reply, BaseException):
                raise reply
            for question in reply.questions:
                if limit is None or written < limit:
                    tasks.append(curriculum_task(question, chunk, document, author=teacher.name))
                    written += 1
    return tasks

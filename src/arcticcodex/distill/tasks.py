"""What a run works on: one task per prompt, from a prompts file, vault conversations or vault chunks.

A task is plain JSON (it is stored in the run journal, so a resumed run needs neither the prompts
file nor the vault as it was)::

    {"instruction": "...", "evidence": [{"text", "chunk_id", "doc_id", "sha256", "span", "source"}],
     "reference": null, "draft": null, "retrieve": false, "source": {"kind", "ref"}}

``retrieve`` asks the run to fetch evidence from the vault (a prompt given without evidence);
``draft`` is an answer that already exists (an assistant turn of a conversation) and is judged
instead of drafting one.  Evidence given as free text in a prompts file has no vault chunk, so it is
bound into the pair by its SHA-256 under a ``prompt-evidence:`` id.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..dataset.record import content_digest
from ..errors import RecordNotFoundError, UserError
from ..forge.records import EvidenceRef
from ..teachers.local_judge import evidence_sentences
from ..teachers.models import EvidenceItem
from ..teachers.replicas import ApiTeacher
from ..vault.records import Chunk, Document
from ..vault.store import Vault
from .sources import read_prompts

__all__ = [
    "Task",
    "conversation_tasks",
    "curriculum_questions",
    "curriculum_tasks",
    "evidence_from_json",
    "prompt_tasks",
    "teacher_curriculum_tasks",
]

Task = tuple[str, dict[str, Any]]
"""(key, task JSON): the key identifies the task within its run (the same key twice is one task)."""

_DEFINITION = re.compile(r"^([A-Z][\w\-./`]*(?: [\w\-./`]+){0,4}) (is|are|means|holds|stores) ")


def prompt_tasks(path: str | Path) -> Iterator[Task]:
    """One task per prompt in a JSONL/CSV prompts file (see :func:`read_prompts` for its format)."""
    for item in read_prompts(path):
        evidence = [_free_text_evidence(text, Path(path).name, n) for n, text in enumerate(item.evidence, 1)]
        yield (
            item.key,
            {
                "instruction": item.instruction,
                "evidence": evidence,
                "reference": item.reference,
                "draft": None,
                "retrieve": not evidence,
                "source": {"kind": "prompts", "ref": item.origin},
                "metadata": item.metadata,
            },
        )


def conversation_tasks(vault: Vault, conversation_ids: Sequence[str] = ()) -> Iterator[Task]:
    """One task per user turn with its assistant answer (the draft) and the chunks the answer cited.

    A turn whose answer cited nothing is judged against evidence retrieved for the question; a
    cited chunk that was forgotten since is left out (its text may no longer be used).
    """
    ids = list(conversation_ids) or [conversation.id for conversation in vault.list_conversations()]
    for conversation_id in ids:
        vault.get_conversation(conversation_id)  # RecordNotFoundError names an unknown id
        for user, assistant in vault.iter_turns(conversation_id):
            evidence = []
            for chunk_id in assistant.citations:
                try:
                    chunk = vault.get_chunk(chunk_id)
                except RecordNotFoundError:
                    continue
                evidence.append(chunk_evidence(chunk, vault.get_document(chunk.document_id)))
            key = "c-" + content_digest((conversation_id, user.id))[:32]
            yield (
                key,
                {
                    "instruction": user.content,
                    "evidence": evidence,
                    "reference": None,
                    "draft": assistant.content,
                    "retrieve": not evidence,
                    "source": {"kind": "conversation", "ref": f"{conversation_id}#{user.id}"},
                    "metadata": {},
                },
            )


def curriculum_tasks(vault: Vault, *, limit: int | None = None, per_chunk: int = 1) -> Iterator[Task]:
    """Questions written offline from each chunk's heading and key sentences, the chunk as evidence."""
    made = 0
    asked: set[tuple[str, str]] = set()  # overlapping chunks share headings: ask about a section once
    for document, chunk in iter_chunks(vault):
        fresh = [q for q in curriculum_questions(chunk, document) if (document.id, q) not in asked]
        for question in fresh[:per_chunk]:
            if limit is not None and made >= limit:
                return
            made += 1
            asked.add((document.id, question))
            yield curriculum_task(question, chunk, document, author="offline")


def curriculum_task(question: str, chunk: Chunk, document: Document, *, author: str) -> Task:
    key = "q-" + content_digest((chunk.id, question))[:32]
    return key, {
        "instruction": question,
        "evidence": [chunk_evidence(chunk, document)],
        "reference": None,
        "draft": None,
        "retrieve": False,
        "source": {"kind": "curriculum", "ref": f"{chunk.id} ({author})"},
        "metadata": {},
    }


def iter_chunks(vault: Vault) -> Iterator[tuple[Document, Chunk]]:
    for document in vault.list_documents():
        for chunk in vault.chunks_of(document.id):
            yield document, chunk


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


def chunk_evidence(chunk: Chunk, document: Document) -> dict[str, Any]:
    return {
        "text": chunk.text,
        "chunk_id": chunk.id,
        "doc_id": chunk.document_id,
        "sha256": chunk.sha256,
        "span": [chunk.start_byte, chunk.end_byte],
        "source": document.source,
    }


def evidence_from_json(items: Iterable[dict[str, Any]]) -> tuple[list[EvidenceItem], tuple[EvidenceRef, ...]]:
    """A task's evidence as numbered items for the teachers and as the references bound into the pair."""
    numbered: list[EvidenceItem] = []
    refs: list[EvidenceRef] = []
    for number, item in enumerate(items, 1):
        numbered.append(
            EvidenceItem(number=number, text=item["text"], source=item.get("source") or "", chunk_id=item["chunk_id"])
        )
        span = item.get("span")
        refs.append(
            EvidenceRef(
                chunk_id=item["chunk_id"],
                doc_id=item["doc_id"],
                sha256=item["sha256"],
                span=(span[0], span[1]) if span else None,
                source=item.get("source"),
            )
        )
    return numbered, tuple(refs)


def _free_text_evidence(text: str, file_name: str, number: int) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {
        "text": text,
        "chunk_id": f"prompt-evidence:{digest[:16]}",
        "doc_id": f"prompts:{file_name}",
        "sha256": digest,
        "span": None,
        "source": f"{file_name} (evidence {number})",
    }


def _opening(text: str, words: int = 6) -> str:
    return " ".join(word for word in text.split() if not word.startswith("#"))[:60].rsplit(" ", 1)[0] + "…"


def require_sources(**chosen: object) -> str:
    """The one source a run was given; naming none or several is a usage error."""
    named = [name for name, value in chosen.items() if value]
    if len(named) != 1:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in chosen)
        raise UserError(f"give exactly one source: {options}" + (f" (got {', '.join(named)})" if named else ""))
    return named[0]


async def teacher_curriculum_tasks(
    vault: Vault, teacher: ApiTeacher, *, limit: int | None = None, per_chunk: int = 1
) -> list[Task]:
    """Questions a configured teacher writes about each chunk (in chunk order, ``limit`` in all).

    Chunks are asked about a batch at a time (the teacher's concurrency); the replies are cached,
    so starting the same run again after a failure pays for no question twice.
    """
    tasks: list[Task] = []
    chunks = iter_chunks(vault)
    batch_size = max(1, teacher.config.concurrency)
    while limit is None or len(tasks) < limit:
        batch = list(itertools.islice(chunks, batch_size))
        if not batch:
            break
        replies = await asyncio.gather(
            *(teacher.questions(chunk.text, source=document.source, count=per_chunk) for document, chunk in batch)
        )
        for (document, chunk), reply in zip(batch, replies, strict=True):
            for question in reply.questions:
                tasks.append(curriculum_task(question, chunk, document, author=teacher.name))
    return tasks if limit is None else tasks[:limit]

"""What a run works on: one task per prompt, from a prompts file, vault conversations or vault chunks.

A task is plain JSON (it is stored in the run journal, so a resumed run needs neither the prompts
file nor the vault as it was)::

    {"instruction": "...", "evidence": [{"text", "chunk_id", "doc_id", "sha256", "span", "source"}],
     "reference": null, "draft": null, "retrieve": false, "source": {"kind", "ref"}}

``retrieve`` asks the run to fetch evidence from the vault (a prompt given without evidence);
``draft`` is an answer that already exists (an assistant turn of a conversation) and is judged
instead of drafting one; ``context`` holds a conversation's turns before the question (the pair
keeps them: a multi-turn example); ``failure`` marks a task that fails as it starts, with its
reason (a chunk a teacher wrote no question about).  Curricula of vault questions are in
:mod:`.curriculum`.  Evidence given as free text in a prompts file has no vault chunk, so it is
bound into the pair by its SHA-256 under a ``prompt-evidence:`` id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..dataset.record import TURN_ROLES, content_digest
from ..errors import RecordNotFoundError, UserError
from ..forge.record_frames import EvidenceRef
from ..teachers.results import EvidenceItem
from ..vault.entities import Chunk, Document, StoredMessage
from ..vault.store import Vault
from .sources import read_prompts

__all__ = [
    "Task",
    "chunk_evidence",
    "conversation_tasks",
    "evidence_from_json",
    "prompt_tasks",
    "require_sources",
    "retrieval_query",
    "teacher_instruction",
]


class Task(NamedTuple):
    """One unit of a run's work, as the journal stores it."""

    key: str  # identifies the task within its run: the same key twice is one task
    spec: dict[str, Any]  # the task's JSON: instruction, evidence, source, context (see the journal)


CONTEXT_TURNS = 6


def prompt_tasks(path: str | Path) -> Iterator[Task]:
    """One task per prompt in a JSONL/CSV prompts file (see :func:`read_prompts` for its format)."""
    for item in read_prompts(path):
        evidence = [_free_text_evidence(text, Path(path).name, n) for n, text in enumerate(item.evidence, 1)]
        yield Task(
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
    """One task per user turn with its assistant answer (the draft), the chunks the answer cited and
    the turns before it (the pair keeps them, so a follow-up question is trained with its conversation).

    A turn whose answer cited nothing is judged against evidence retrieved for the question; a
    cited chunk that was forgotten since is left out (its text may no longer be used).
    """
    ids = list(conversation_ids) or [conversation.id for conversation in vault.list_conversations()]
    for conversation_id in ids:
        messages = vault.get_conversation(conversation_id).messages  # RecordNotFoundError names an unknown id
        earlier: list[dict[str, str]] = []
        for position, message in enumerate(messages):
            answer = messages[position + 1] if position + 1 < len(messages) else None
            if message.role == "user" and answer is not None and answer.role == "assistant":
                yield _turn_task(vault, conversation_id, message, answer, list(earlier))
            if message.role in TURN_ROLES:
                earlier.append({"role": message.role, "content": message.content})


def _turn_task(
    vault: Vault, conversation_id: str, user: StoredMessage, assistant: StoredMessage, context: list[dict[str, str]]
) -> Task:
    evidence = []
    for chunk_id in assistant.citations:
        try:
            chunk = vault.get_chunk(chunk_id)
        except RecordNotFoundError:
            continue
        evidence.append(chunk_evidence(chunk, vault.get_document(chunk.document_id)))
    key = "c-" + content_digest((conversation_id, user.id))[:32]
    return Task(
        key,
        {
            "instruction": user.content,
            "evidence": evidence,
            "reference": None,
            "draft": assistant.content,
            "retrieve": not evidence,
            "source": {"kind": "conversation", "ref": f"{conversation_id}#{user.id}"},
            "metadata": {},
            "context": context,
        },
    )


def teacher_instruction(task: dict[str, Any]) -> str:
    """What the teachers are asked to judge an answer to: the question, after the conversation so far.

    A follow-up ("And crabs?") cannot be judged alone; the last few earlier turns come with it.
    """
    instruction: str = task["instruction"]
    context = task.get("context") or []
    if not context:
        return instruction
    shown = [f"{turn['role'].capitalize()}: {_cut(turn['content'])}" for turn in context[-CONTEXT_TURNS:]]
    return "Earlier in this conversation:\n" + "\n".join(shown) + f"\n\nThe question now: {instruction}"


def retrieval_query(task: dict[str, Any]) -> str:
    """What to search the vault for: the question, with the previous question of its conversation."""
    earlier = [turn["content"] for turn in task.get("context") or [] if turn["role"] == "user"]
    return f"{earlier[-1]} {task['instruction']}" if earlier else str(task["instruction"])


def _cut(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


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


def require_sources(**chosen: object) -> str:
    """The one source a run was given; naming none or several is a usage error."""
    named = [name for name, value in chosen.items() if value]
    if len(named) != 1:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in chosen)
        raise UserError(f"give exactly one source: {options}" + (f" (got {', '.join(named)})" if named else ""))
    return named[0]

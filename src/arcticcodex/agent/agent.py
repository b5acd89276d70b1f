"""The agent: answers a question from the vault's evidence, with numbered citations, in a conversation.

Every answer is built on an evidence pack (hybrid search over the vault) and cites it as ``[n]``;
each citation resolves to a chunk (id, document, byte span, SHA-256), and a number the evidence does
not have is dropped and reported rather than shown.  Conversations live in the vault, so a chat
continues where it stopped and earlier turns inform the search and the model.

Two ways to write the answer:

* **offline** (no model configured): the extractive drafter — evidence sentences only, ranked by
  overlap with the question — with the numbers of the evidence it used; nothing is invented, and
  "nothing in the vault answers this" is said as such;
* **a model** (any OpenAI-compatible teacher entry): the evidence goes into the prompt with the rule to
  cite it by number; the reply is checked the same way.

An answer can go straight into the teacher loop and the dataset writer: :meth:`AgentAnswer.evidence_items`
is the evidence the teachers judge it against, bound to the chunks it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._sync import run_sync
from ..errors import TeacherResponseError, ToolError, UserError
from ..teachers.entries import TeacherConfig
from ..teachers.openai_compat import OpenAICompatibleTeacher
from ..teachers.results import EvidenceItem, evidence_from_hits
from ..vault.search import Searcher, SearchResult
from ..vault.store import Vault
from .drafting import ExtractiveDrafter
from .tools import ToolCallRecord, ToolRegistry

NOTHING_FOUND = "I found nothing in the vault that answers this."
_MARKER = re.compile(r"\[(\d{1,3})\]")
_SYSTEM = (
    "You answer questions using only the numbered evidence below. Cite every claim with the number of the "
    "evidence that supports it, like [1] or [2][3]. If the evidence does not answer the question, say so "
    "plainly. Do not invent facts, sources or numbers.\n\nEVIDENCE:\n{evidence}"
)


@dataclass(frozen=True)
class Citation:
    """One ``[n]`` of an answer, resolved to the chunk it names."""

    number: int
    chunk_id: str
    doc_id: str
    source: str
    start_byte: int
    end_byte: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class AgentAnswer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    evidence: tuple[SearchResult, ...]
    conversation_id: str
    answered_by: str
    unresolved: tuple[int, ...] = ()  # [n] markers the evidence has no item for (dropped from the text)
    notes: tuple[str, ...] = field(default_factory=tuple)
    tool_calls: tuple[ToolCallRecord, ...] = ()

    @property
    def used_chunks(self) -> tuple[SearchResult, ...]:
        cited = {c.chunk_id for c in self.citations}
        return tuple(item for item in self.evidence if item.chunk_id in cited)

    def evidence_items(self) -> list[EvidenceItem]:
        """The evidence as the teacher loop takes it (numbers as cited, bound to their chunks)."""
        return evidence_from_hits(self.evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "citations": [c.to_json() for c in self.citations],
            "evidence": [{"number": n, **item.to_json()} for n, item in enumerate(self.evidence, 1)],
            "conversation_id": self.conversation_id,
            "answered_by": self.answered_by,
            "unresolved": list(self.unresolved),
            "notes": list(self.notes),
            "tool_calls": [call.to_json() for call in self.tool_calls],
        }


class Agent:
    """Answers from one vault (see the module docstring); ``model`` is a teacher entry, or None for offline."""

    def __init__(
        self,
        vault: Vault,
        *,
        model: TeacherConfig | None = None,
        searcher: Searcher | None = None,
        k: int = 5,
        history_turns: int = 3,
        environ: Mapping[str, str] | None = None,
        tools: ToolRegistry | None = None,
        max_tool_rounds: int = 4,
    ) -> None:
        self.vault = vault
        self.tools = tools
        self.max_tool_rounds = max_tool_rounds
        self.searcher = searcher or Searcher(vault)
        self.k = k
        self.history_turns = history_turns
        self.model = (
            OpenAICompatibleTeacher(replace(model, response_format="none"), environ=environ)  # answers are prose
            if model is not None and model.preset != "local"
            else None
        )
        self.drafter = ExtractiveDrafter()

    def respond_sync(
        self, question: str, conversation_id: str | None = None, *, on_text: Callable[[str], None] | None = None
    ) -> AgentAnswer:
        """:meth:`respond` from synchronous code (the CLI, a Studio worker, a script)."""
        return run_sync(self.respond(question, conversation_id, on_text=on_text))

    async def respond(
        self, question: str, conversation_id: str | None = None, *, on_text: Callable[[str], None] | None = None
    ) -> AgentAnswer:
        """Answer ``question`` (continuing ``conversation_id`` when given) and store both turns.

        With ``on_text`` and a model, the model's reply is streamed: each piece goes to ``on_text`` as it
        arrives (the returned answer is checked in full, citations resolved, as always).  The vault is
        read and written on the caller's thread: one agent serves one conversation at a time.
        """
        question = question.strip()
        if not question:
            raise UserError("ask a question: the text is empty")
        calls_before = len(self.tools.calls) if self.tools is not None else 0
        history = self._history(conversation_id)
        earlier = [content for role, content in history if role == "user"][-1:]  # "and in 2020?" needs its topic
        context = " ".join([*earlier, question])
        pack = self.searcher.evidence_pack(context, k=self.k)
        items = evidence_from_hits(pack.items)
        if self.model is None:
            draft = self.drafter.draft(question, items)
            text = NOTHING_FOUND if draft is None else draft.text + " " + "".join(f"[{n}]" for n in draft.evidence_used)
            answered_by = self.drafter.name
        else:
            text = await self._ask_model(question, history, pack.to_prompt(), on_text)
            answered_by = f"{self.model.name} ({self.model.model})"
        text, citations, unresolved = _resolve(text, pack.items)
        conversation = conversation_id or self.vault.create_conversation(question[:80])
        self.vault.append_message(conversation, "user", question)
        self.vault.append_message(conversation, "assistant", text, citations=[c.chunk_id for c in citations])
        notes = (f"dropped citations with no evidence: {list(unresolved)}",) if unresolved else ()
        calls = tuple(self.tools.calls[calls_before:]) if self.tools is not None else ()
        return AgentAnswer(question, text, citations, pack.items, conversation, answered_by, unresolved, notes, calls)

    def _history(self, conversation_id: str | None) -> list[tuple[str, str]]:
        if conversation_id is None:
            return []
        messages = self.vault.get_conversation(conversation_id).messages
        return [(m.role, m.content) for m in messages[-2 * self.history_turns :] if m.role in ("user", "assistant")]

    async def _ask_model(
        self, question: str, history: list[tuple[str, str]], evidence: str, on_text: Callable[[str], None] | None
    ) -> str:
        if self.model is None:  # pragma: no cover - guarded by the caller
            raise ValueError("no model configured")
        messages = [{"role": "system", "content": _SYSTEM.format(evidence=evidence or "(none found)")}]
        messages += [{"role": role, "content": content} for role, content in history]
        messages.append({"role": "user", "content": question})
        body = {
            "model": self.model.model,
            "messages": messages,
            "temperature": self.model.config.temperature,
            "max_tokens": self.model.config.max_tokens,
        }
        try:
            if self.tools is not None and self.tools.tools:
                content = await self._tool_loop(body)
            elif on_text is not None:
                content = await self.model.stream_text(body, on_text)
            else:
                content, *_ = await self.model.complete(body)
        finally:
            await self.model.aclose()
        return content.strip()

    async def _tool_loop(self, body: dict[str, Any]) -> str:
        """Let the model call tools (each checked, bounded and recorded by the registry) until it answers."""
        if self.model is None or self.tools is None:  # pragma: no cover - guarded by the caller
            raise ValueError("no model or tools")
        messages: list[dict[str, Any]] = list(body["messages"])
        for _ in range(self.max_tool_rounds):
            message = await self.model.chat_message({**body, "messages": messages, "tools": self.tools.schemas()})
            calls = message.get("tool_calls") or []
            if not calls:
                return str(message.get("content") or "")
            messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
            for call in calls:
                function = call.get("function", {})
                try:
                    result = self.tools.call(str(function.get("name")), function.get("arguments") or "{}")
                except ToolError as error:
                    result = f"error: {error}"  # the model sees why, and may try again differently
                messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": result})
        raise TeacherResponseError(
            f"{self.model.name} was still calling tools after {self.max_tool_rounds} rounds; no answer",
            teacher=self.model.name,
        )


def _resolve(text: str, evidence: tuple[SearchResult, ...]) -> tuple[str, tuple[Citation, ...], tuple[int, ...]]:
    """Citations for the ``[n]`` markers that name evidence; markers that do not are removed from the text."""
    cited: dict[int, Citation] = {}
    unresolved: list[int] = []

    def keep(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if 1 <= number <= len(evidence):
            item = evidence[number - 1]
            cited.setdefault(
                number,
                Citation(number, item.chunk_id, item.doc_id, item.source, item.start_byte, item.end_byte, item.sha256),
            )
            return match.group(0)
        unresolved.append(number)
        return ""

    cleaned = _MARKER.sub(keep, text)
    return cleaned, tuple(sorted(cited.values(), key=lambda c: c.number)), tuple(dict.fromkeys(unresolved))

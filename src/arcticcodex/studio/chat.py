"""The Studio's chat: answers from the vault with citations, offline or by a configured teacher model.

The visitor chooses who answers: the offline answerer (sentences of the evidence, nothing leaves the
machine) or one of the teachers the user trusts (see ``teachers trust``); the client refuses any other
before a key is read, so a name typed into the form cannot reach one.  The choice stays in the address
of every page of the conversation.  With a model, the visitor may let it use the agent's tools — vault
search, arithmetic, and ``propose_fact``, whose facts wait in the review queue until a person approves
them (no tool that writes files is offered).

Two ways to ask, one answer: the form posts to ``/chat`` and is redirected to the conversation (no
script needed); ``static/chat.js`` posts the same form to ``/chat/stream`` instead and shows the
model's reply as it is written (:mod:`.answer_stream`).  Each answer can become a fact proposal
("propose fact"), with one of the answer's citations kept as its source chunk, for a person to decide
on in Review.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .._sync import run_sync
from ..agent import Agent, default_tools
from ..errors import ArcticCodexError, UserError
from ..teachers.entries import TeacherConfig, load_teachers
from ..vault.entities import StoredMessage
from ..vault.proposals import ReviewItem, ReviewQueue
from ..workspace import Workspace
from .answer_stream import AnswerStream, VisitorLeftError, event
from .pages import page, without_paths
from .workers import VaultWorkers

__all__ = ["ChatPage"]

OFFLINE = ""
_log = logging.getLogger(__name__)
_STREAM_HEADERS = {"x-accel-buffering": "no"}  # a proxy in front must pass each event on at once


@dataclass(frozen=True)
class _Question:
    """What the ask form sent."""

    text: str
    conversation: str | None
    model: str
    tools: bool

    @classmethod
    def of(cls, form: FormData) -> _Question:
        return cls(
            str(form.get("question", "")),
            str(form.get("conversation", "")) or None,
            str(form.get("model", OFFLINE)),
            form.get("tools") == "on",
        )

    def address(self, conversation: str, **extra: str) -> str:
        """The conversation's page, with the visitor's choice of model kept."""
        query = {
            "conversation": conversation,
            **({"model": self.model} if self.model else {}),
            **({"tools": "on"} if self.tools else {}),
            **extra,
        }
        return "/chat?" + urlencode(query)


class ChatPage:
    """``/chat``: the conversation so far and the form to ask the next question."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers
        self._streaming: set[asyncio.Task[None]] = set()  # answers still running (kept from the collector)

    def routes(self) -> list[Route]:
        return [
            Route("/chat", self.chat, methods=["GET", "POST"]),
            Route("/chat/stream", self.stream, methods=["POST"]),
            Route("/chat/messages/{message_id}/propose", self.propose, methods=["POST"]),
        ]

    async def chat(self, request: Request) -> Response:
        if request.method == "POST":
            async with request.form() as form:
                question = _Question.of(form)
            answered, proposed = await self.workers.run(self._answer, question)
            extra = {"proposed": str(proposed)} if proposed else {}
            return RedirectResponse(question.address(answered, **extra), status_code=303)
        params = request.query_params
        return await self.workers.run(
            self._page,
            params.get("conversation") or None,
            params.get("model", OFFLINE),
            params.get("tools") == "on",
            params.get("proposed", ""),
            params.get("fact", ""),
        )

    async def stream(self, request: Request) -> Response:
        """The answer as server-sent events: ``token`` pieces as the model writes, then ``done`` or ``error``."""
        async with request.form() as form:
            question = _Question.of(form)
        try:
            model = await self.workers.run(self._chosen, question)
        except ArcticCodexError as error:  # refused before anything is asked of any model
            return Response(
                event("error", {"message": without_paths(str(error), self.workspace.root)}),
                status_code=error.http_status,
                media_type="text/event-stream",
            )
        answer = AnswerStream()
        task = asyncio.create_task(self._stream_answer(question, model, answer))
        self._streaming.add(task)
        task.add_done_callback(self._streaming.discard)
        return StreamingResponse(answer.events(), media_type="text/event-stream", headers=_STREAM_HEADERS)

    async def propose(self, request: Request) -> Response:
        """A fact from an answer, into the review queue (pending until a person decides)."""
        async with request.form() as form:
            fields = {name: str(form.get(name, "")) for name in ("subject", "predicate", "object", "source")}
            question = _Question.of(form)
        if question.conversation is None:
            raise UserError("the form names no conversation; open the answer from the chat page and try again")
        conversation = question.conversation
        item = await self.workers.run(self._propose, conversation, request.path_params["message_id"], fields)
        address = question.address(conversation, fact=item.id)
        return RedirectResponse(f"{address}#{request.path_params['message_id']}", status_code=303)

    async def _stream_answer(self, question: _Question, model: TeacherConfig | None, answer: AnswerStream) -> None:
        """Answer on a worker, then send the last event (after every piece the model wrote)."""
        try:
            done = await self.workers.run(self._answer_streamed, question, model, answer)
        except VisitorLeftError:
            return  # nobody is listening; nothing was stored
        except ArcticCodexError as error:
            answer.finish("error", {"message": without_paths(str(error), self.workspace.root)})
        except Exception:
            _log.exception("a streamed chat answer failed")
            answer.finish("error", {"message": "The Studio hit an unexpected error; the server log has details."})
        else:
            answer.finish("done", done)

    # -- in a worker --------------------------------------------------------------------------------

    def _models(self) -> list[TeacherConfig]:
        """The teachers that may answer: configured, trusted, and not the offline local judge."""
        teachers, _ = load_teachers(self.workspace.config)
        return [teacher for teacher in teachers if teacher.trusted and teacher.preset != "local"]

    def _chosen(self, question: _Question) -> TeacherConfig | None:
        """The model the visitor chose (None: offline); refused unless it is a trusted teacher."""
        config = None
        if question.model != OFFLINE:
            config = next((teacher for teacher in self._models() if teacher.name == question.model), None)
            if config is None:
                names = ", ".join(teacher.name for teacher in self._models()) or "none is configured and trusted"
                raise UserError(
                    f"{question.model!r} is not a trusted teacher of this workspace (teachers: {names})",
                    parameters=["model"],
                )
        if question.tools and config is None:
            raise UserError(
                "tools need a model: choose a teacher to answer; the offline answerer calls no tools",
                parameters=["tools"],
            )
        return config

    def _agent(self, question: _Question, config: TeacherConfig | None) -> Agent:
        vault, searcher = self.workers.vault, self.workers.searcher
        tools = default_tools(searcher=searcher, review=ReviewQueue(vault)) if question.tools else None
        return Agent(vault, searcher=searcher, model=config, tools=tools)

    def _answer(self, question: _Question) -> tuple[str, int]:
        """Answer and store the turn; return the conversation and how many facts the model proposed."""
        agent = self._agent(question, self._chosen(question))
        answer = agent.respond_sync(question.text, question.conversation)
        proposed = sum(call.name == "propose_fact" and call.error is None for call in answer.tool_calls)
        return answer.conversation_id, proposed

    def _answer_streamed(
        self, question: _Question, config: TeacherConfig | None, stream: AnswerStream
    ) -> dict[str, Any]:
        """Answer with the model's pieces going to ``stream``; the ``done`` event's data."""
        agent = self._agent(question, config)
        answer = run_sync(stream.run(agent.respond(question.text, question.conversation, on_text=stream.on_text)))
        messages = self.workers.vault.get_conversation(answer.conversation_id).messages
        stored = next(message for message in reversed(messages) if message.role == "assistant")
        return {
            "message": stored.id,
            "conversation": answer.conversation_id,
            "text": stored.content,
            "answered_by": answer.answered_by,
            "citations": [
                {"number": c.number, "chunk_id": c.chunk_id, "source": c.source, "href": f"/vault/chunks/{c.chunk_id}"}
                for c in answer.citations
            ],
            "proposed": sum(call.name == "propose_fact" and call.error is None for call in answer.tool_calls),
            "address": question.address(answer.conversation_id),
        }

    def _propose(self, conversation: str, message_id: str, fields: dict[str, str]) -> ReviewItem:
        vault = self.workers.vault
        message = _answer_in(vault.get_conversation(conversation).messages, conversation, message_id)
        source = fields["source"] or None
        if source is not None and source not in message.citations:
            raise UserError(
                f"{source!r} is not one of the chunks answer {message_id} cites "
                f"({', '.join(message.citations) or 'it cites none'}); choose one of them",
                parameters=["source"],
            )
        return ReviewQueue(vault).propose_fact(
            fields["subject"],
            fields["predicate"],
            fields["object"],
            source_chunk_id=source,
            proposed_by="user (chat)",
            conversation_id=conversation,
        )

    def _page(self, conversation: str | None, model: str, use_tools: bool, proposed: str, fact: str) -> Response:
        messages = self.workers.vault.get_conversation(conversation).messages if conversation else ()
        return page(
            "chat.html",
            "Chat",
            "Chat",
            messages=messages,
            conversation=conversation,
            models=[teacher.name for teacher in self._models()],
            model=model,
            tools=use_tools,
            proposed=int(proposed) if proposed.isdigit() else 0,
            fact=self._proposed_fact(fact),
        )

    def _proposed_fact(self, fact_id: str) -> ReviewItem | None:
        """The fact just proposed from an answer, to confirm it (an unknown id shows nothing)."""
        if not fact_id.startswith("fact-"):
            return None
        try:
            return ReviewQueue(self.workers.vault).get(fact_id)
        except ArcticCodexError:
            return None


def _answer_in(messages: tuple[StoredMessage, ...], conversation: str, message_id: str) -> StoredMessage:
    """The assistant message ``message_id`` of the conversation (what a fact may be proposed from)."""
    message = next((message for message in messages if message.id == message_id), None)
    if message is None or message.role != "assistant":
        raise UserError(
            f"{message_id!r} is not an answer in conversation {conversation}; propose a fact from one of its answers",
            parameters=["message_id"],
        )
    return message

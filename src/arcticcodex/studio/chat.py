"""The Studio's chat: answers from the vault with citations, offline or by a configured teacher model.

With a model, the visitor may let it use the agent's tools — vault search, arithmetic, and
``propose_fact``, whose facts wait in the review queue until a person approves them (no tool that
writes files is offered).  Only teachers the user trusts are offered (see ``teachers trust``); the
client refuses any other before a key is read, so a name typed into the form cannot reach one.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..agent import Agent, default_tools
from ..errors import UserError
from ..teachers.entries import TeacherConfig, load_teachers
from ..vault.proposals import ReviewQueue
from ..workspace import Workspace
from .pages import page
from .workers import VaultWorkers

__all__ = ["ChatPage"]

OFFLINE = ""


class ChatPage:
    """``/chat``: the conversation so far and the form to ask the next question."""

    def __init__(self, workspace: Workspace, workers: VaultWorkers) -> None:
        self.workspace = workspace
        self.workers = workers

    def routes(self) -> list[Route]:
        return [Route("/chat", self.chat, methods=["GET", "POST"])]

    async def chat(self, request: Request) -> Response:
        if request.method == "POST":
            async with request.form() as form:
                question = str(form.get("question", ""))
                conversation = str(form.get("conversation", "")) or None
                model = str(form.get("model", OFFLINE))
                tools = form.get("tools") == "on"
            answered, proposed = await self.workers.run(self._answer, question, conversation, model, tools)
            query = {
                "conversation": answered,
                **({"model": model} if model else {}),
                **({"tools": "on"} if tools else {}),
            }
            if proposed:
                query["proposed"] = str(proposed)
            return RedirectResponse("/chat?" + urlencode(query), status_code=303)
        params = request.query_params
        return await self.workers.run(
            self._page,
            params.get("conversation") or None,
            params.get("model", OFFLINE),
            params.get("tools") == "on",
            params.get("proposed", ""),
        )

    # -- in a worker --------------------------------------------------------------------------------

    def _models(self) -> list[TeacherConfig]:
        """The teachers that may answer: configured, trusted, and not the offline local judge."""
        teachers, _ = load_teachers(self.workspace.config)
        return [teacher for teacher in teachers if teacher.trusted and teacher.preset != "local"]

    def _answer(self, question: str, conversation: str | None, model: str, use_tools: bool) -> tuple[str, int]:
        """Answer and store the turn; return the conversation and how many facts the model proposed."""
        vault, searcher = self.workers.vault, self.workers.searcher
        config = None
        if model != OFFLINE:
            config = next((teacher for teacher in self._models() if teacher.name == model), None)
            if config is None:
                names = ", ".join(teacher.name for teacher in self._models()) or "none is configured and trusted"
                raise UserError(f"{model!r} is not a trusted teacher of this workspace (teachers: {names})")
        if use_tools and config is None:
            raise UserError("tools need a model: choose a teacher to answer; the offline answerer calls no tools")
        tools = default_tools(searcher=searcher, review=ReviewQueue(vault)) if use_tools else None
        answer = Agent(vault, searcher=searcher, model=config, tools=tools).respond_sync(question, conversation)
        proposed = sum(call.name == "propose_fact" and call.error is None for call in answer.tool_calls)
        return answer.conversation_id, proposed

    def _page(self, conversation: str | None, model: str, use_tools: bool, proposed: str) -> Response:
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
        )

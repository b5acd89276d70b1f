"""The Studio's chat (issue 16, item 3): a streamed answer from the chosen model, stored in full with its
citations; refusals before any model is asked; "propose fact" from an answer into the review queue.

The model is the fake OpenAI-compatible server, which streams a reply a word at a time and can hold its
last piece back (``stream_gate``): a token seen by the Studio's client while that piece is still held
was sent before the model finished — shown by order, never by a clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest

from arcticcodex._sync import run_sync
from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.entities import Fact, StoredMessage
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root
from test_studio import SCRIPT, form_token, get, serve
from test_studio_chat_trust import CLONED_ENTRY

REPLY = f"Otters eat mostly fish [1]. They also eat crabs [1]. A note said {SCRIPT} once [7]."
STORED = f"Otters eat mostly fish [1]. They also eat crabs [1]. A note said {SCRIPT} once ."  # [7]: no evidence


@pytest.fixture
def root(acx: Acx, tmp_path: Path, server: FakeOpenAIServer) -> Path:
    root = make_root(acx, tmp_path, server)  # teacher "gpu", trusted, at the fake
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish. They also eat crabs.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    return root


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events of a streamed response, as they arrive: (kind, data)."""
    kind, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


def parsed(body: str) -> list[tuple[str, dict[str, Any]]]:
    """The events of a whole (buffered) event-stream body."""
    return [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
        for block in body.strip().split("\n\n")
    ]


def chunk_of(root: Path) -> str:
    with Vault(Workspace.open(root)) as vault:
        document = next(d for d in vault.list_documents() if d.source.endswith("otters.md"))
        return vault.chunks_of(document.id)[0].id


def test_tokens_stream_before_the_model_is_done_and_the_whole_answer_is_stored(
    root: Path, server: FakeOpenAIServer
) -> None:
    server.script("generic", [REPLY])
    server.stream_gate = threading.Event()  # the model's last piece waits until the test says so
    with serve(create_app(Workspace.open(root))) as url, httpx.Client(base_url=url, timeout=60) as client:
        token = form_token(client.get("/chat").text)
        form = {"question": "What do otters eat?", "model": "gpu"}
        with client.stream("POST", "/chat/stream", data=form, headers={"X-CSRF-Token": token}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            early = [next(stream) for _ in range(4)]
            assert [kind for kind, _ in early] == ["token"] * 4
            assert not server.last_piece_sent.is_set()  # four pieces shown while the model was still writing
            server.stream_gate.set()
            rest = list(stream)
    *tokens, (last, done) = early + rest
    assert {kind for kind, _ in tokens} == {"token"} and last == "done"
    assert "".join(data["text"] for _, data in tokens) == REPLY  # the hostile text travels as data, unchanged
    chunk = chunk_of(root)
    assert done["citations"] == [{"number": 1, "chunk_id": chunk, "source": done["citations"][0]["source"],
                                  "href": f"/vault/chunks/{chunk}"}]  # fmt: skip
    assert done["citations"][0]["source"].endswith("otters.md")
    assert done["text"] == STORED and done["answered_by"] == "gpu (fake-model)"
    assert done["address"] == f"/chat?conversation={done['conversation']}&model=gpu"
    with Vault(Workspace.open(root)) as vault:
        question, answer = vault.get_conversation(done["conversation"]).messages
    assert (question.role, question.content) == ("user", "What do otters eat?")
    assert (answer.id, answer.role, answer.content, answer.citations) == (
        done["message"],
        "assistant",
        STORED,
        (chunk,),
    )
    (request,) = server.requests
    assert request.body["stream"] is True
    page = get(create_app(Workspace.open(root)), done["address"]).text
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page and SCRIPT not in page
    assert f'<a class="citation" href="/vault/chunks/{chunk}">[1] {chunk}</a>' in page
    assert '<option value="gpu" selected>gpu</option>' in page  # the choice stays for the next question


def test_the_offline_answerer_answers_in_one_event_without_any_model(root: Path, server: FakeOpenAIServer) -> None:
    answered = get(create_app(Workspace.open(root)), "/chat/stream", method="POST", data={"question": "otters?"})
    ((kind, done),) = parsed(answered.text)
    assert kind == "done" and done["answered_by"] == "extractive-drafter/v2 (offline, no LLM)"
    assert "Otters eat mostly fish." in done["text"] and done["citations"][0]["chunk_id"] == chunk_of(root)
    assert server.requests == []


def test_an_untrusted_or_unknown_model_is_refused_before_any_request(
    root: Path, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    with FakeOpenAIServer(model="fake-model") as attacker:
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + CLONED_ENTRY.format(url=attacker.base_url))
        app = create_app(Workspace.open(root))
        for model, tools in (("cloned", {}), ("cloned", {"tools": "on"}), ("nobody", {})):
            refused = get(app, "/chat/stream", method="POST", data={"question": "otters?", "model": model} | tools)
            assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/event-stream")
            ((kind, data),) = parsed(refused.text)
            assert kind == "error"
            assert data["message"] == f"{model!r} is not a trusted teacher of this workspace (teachers: gpu)"
        offline_tools = get(app, "/chat/stream", method="POST", data={"question": "otters?", "tools": "on"})
        assert parsed(offline_tools.text)[0][1]["message"].startswith("tools need a model")
        assert attacker.requests == [] and server.requests == []  # no prompt, no key, to anyone
    with Vault(Workspace.open(root)) as vault:
        assert vault.list_conversations() == []


def test_a_teacher_that_is_down_arrives_as_an_error_event_and_nothing_is_stored(
    root: Path, server: FakeOpenAIServer
) -> None:
    server.inject(*["503"] * 8)
    down = get(create_app(Workspace.open(root)), "/chat/stream", method="POST",
               data={"question": "What do otters eat?", "model": "gpu"})  # fmt: skip
    ((kind, data),) = parsed(down.text)
    assert kind == "error" and data["message"].startswith("teacher gpu (fake-model)"), data
    with Vault(Workspace.open(root)) as vault:
        assert vault.list_conversations() == []


def test_a_visitor_who_leaves_mid_answer_frees_the_worker(root: Path, server: FakeOpenAIServer) -> None:
    """The model stalls after its first piece (and would keep the connection open until its 60 s timeout);
    the visitor leaves; the only worker must be free for the next page at once, with nothing stored."""
    server.inject("stall")
    with (
        serve(create_app(Workspace.open(root), workers=1)) as url,
        httpx.Client(base_url=url, timeout=30) as client,  # 30 s: trips only if the worker waited for the model
    ):
        token = form_token(client.get("/chat").text)
        form = {"question": "What do otters eat?", "model": "gpu"}
        with client.stream("POST", "/chat/stream", data=form, headers={"X-CSRF-Token": token}) as response:
            kind, _ = next(events(response))
            assert kind == "token"
        # the connection is closed; the next page needs the one worker
        assert client.get("/chat").status_code == 200
    with Vault(Workspace.open(root)) as vault:
        assert vault.list_conversations() == []


async def _ask_then(app: object, steps: list[tuple[str, str, dict[str, str]]]) -> list[httpx.Response]:
    """One browser session: each step a GET or a form POST (with the token, and the page before as Referer)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        token = form_token((await client.get("/chat")).text)
        for method, path, data in steps:
            if method == "GET":  # no path: follow the redirect the step before answered
                answers.append(await client.get(path or answers[-1].headers["location"]))
            else:
                referer = str(answers[-1].url) if answers else "http://127.0.0.1/chat"
                answers.append(
                    await client.post(path, data={"csrf_token": token, **data}, headers={"referer": referer})
                )
    return answers


def asked(app: object, root: Path) -> tuple[str, StoredMessage]:
    """Ask the offline answerer through the form: the conversation, and its stored answer."""
    sent = get(app, "/chat", method="POST", data={"question": "What do otters eat?"})
    conversation = parse_qs(urlsplit(sent.headers["location"]).query)["conversation"][0]
    with Vault(Workspace.open(root)) as vault:
        return conversation, vault.get_conversation(conversation).messages[1]


def test_propose_a_fact_from_an_answer_into_the_review_queue(root: Path) -> None:
    app = create_app(Workspace.open(root))
    conversation, answer = asked(app, root)
    action = f"/chat/messages/{answer.id}/propose"
    fact = {"conversation": conversation, "subject": "otters", "predicate": "eat", "object": "fish",
            "source": answer.citations[0]}  # fmt: skip
    page, proposed = run_sync(_ask_then(app, [("GET", f"/chat?conversation={conversation}", {}),
                                              ("POST", action, fact)]))  # fmt: skip
    assert f'action="{action}"' in page.text and f'<label for="subject-{answer.id}">Subject</label>' in page.text
    assert proposed.status_code == 303
    with Vault(Workspace.open(root)) as vault:
        (item,) = ReviewQueue(vault).list()
    assert (item.kind, item.status, item.text) == ("fact", "pending", "otters — eat — fish")
    fact_record = item.record
    assert isinstance(fact_record, Fact) and fact_record.source_chunk_id == answer.citations[0]
    assert fact_record.conversation_id == conversation and fact_record.metadata["proposed_by"] == "user (chat)"
    assert proposed.headers["location"] == f"/chat?conversation={conversation}&fact={item.id}#{answer.id}"
    shown = get(app, proposed.headers["location"]).text
    assert "Proposed: <strong>otters — eat — fish</strong> (pending)" in shown
    assert item.id in get(app, "/review").text


def test_a_failed_proposal_is_shown_beside_its_form_with_what_was_typed(root: Path) -> None:
    app = create_app(Workspace.open(root))
    conversation, answer = asked(app, root)
    action = f"/chat/messages/{answer.id}/propose"
    chat = f"/chat?conversation={conversation}"
    blank = {"conversation": conversation, "subject": "otters <b>", "predicate": " ", "object": "fish"}
    elsewhere = {**blank, "predicate": "eat", "source": "chunk-from-another-answer"}
    steps = [("GET", chat, {}), ("POST", action, blank), ("GET", "", {}), ("POST", action, elsewhere), ("GET", "", {})]
    answers = run_sync(_ask_then(app, steps))
    _, refused, shown, refused_again, shown_again = answers
    assert refused.status_code == refused_again.status_code == 303
    assert refused.headers["location"].startswith(chat + "&form_error=")
    assert '<p class="form-error" role="alert">a fact needs a non-empty predicate</p>' in shown.text
    assert 'value="otters &lt;b&gt;"' in shown.text and '<details class="propose" open>' in shown.text
    assert "&#39;chunk-from-another-answer&#39; is not one of the chunks answer" in shown_again.text
    with Vault(Workspace.open(root)) as vault:
        assert ReviewQueue(vault).list() == []


def test_a_proposal_or_question_without_the_form_token_is_refused_and_nothing_is_stored(
    root: Path, server: FakeOpenAIServer
) -> None:
    app = create_app(Workspace.open(root))
    conversation, answer = asked(app, root)

    async def without_token() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await client.get("/chat")  # a session, but its token is not sent
            fact = {"conversation": conversation, "subject": "otters", "predicate": "eat", "object": "fish"}
            return [
                await client.post(f"/chat/messages/{answer.id}/propose", data=fact),
                await client.post("/chat/stream", data={"question": "otters?", "model": "gpu"}),
            ]

    for refused in run_sync(without_token()):
        assert refused.status_code == 403 and "nothing was done" in refused.text
    with Vault(Workspace.open(root)) as vault:
        assert ReviewQueue(vault).list() == [] and len(vault.list_conversations()) == 1
    assert server.requests == []


def test_without_a_script_a_refused_question_is_shown_beside_the_ask_form(root: Path, server: FakeOpenAIServer) -> None:
    question = {"question": "What do <b>otters</b> eat?", "model": "nobody"}
    _, refused, shown = run_sync(_ask_then(create_app(Workspace.open(root)), [("GET", "/chat", {}),
                                                                              ("POST", "/chat", question),
                                                                              ("GET", "", {})]))  # fmt: skip
    assert refused.status_code == 303 and refused.headers["location"].startswith("/chat?form_error=")
    error = "&#39;nobody&#39; is not a trusted teacher of this workspace (teachers: gpu)"
    assert f'<div id="ask-error"><p class="form-error" role="alert">{error}</p></div>' in shown.text
    assert 'name="question" required autofocus value="What do &lt;b&gt;otters&lt;/b&gt; eat?"' in shown.text
    assert server.requests == []

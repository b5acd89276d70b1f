"""The chat in a real browser (Debian's Chromium): choose a model, watch its answer being written, open a
citation's chunk, propose a fact from an answer and find it in Review; a model's error shown beside the
form; the page accessible (axe-core) at desktop and phone width, with no script refused by the CSP.

The fake model holds its last piece back until the test opens ``stream_gate``: text on the page before
then was streamed, not delivered with the whole answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from studio_browser import PHONE, assert_accessible, chromium, screenshot
from test_studio import SCRIPT, serve

pytestmark = pytest.mark.slow
FIRST = f"Beavers build dams from branches and mud [1]. A page once said {SCRIPT} about them [1]. That is all [1]."
SECOND = "They also build lodges [1]."


@pytest.fixture
def studio(acx: Acx, tmp_path: Path) -> Iterator[tuple[str, Path, FakeOpenAIServer]]:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    (tmp_path / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.\n")
    acx("-w", workspace.root, "vault", "import", tmp_path / "beavers.md")
    with FakeOpenAIServer(model="m") as server:
        acx.add_teacher(workspace.root, server, name="fake", model="m")
        with serve(create_app(Workspace.open(workspace.root))) as url:
            yield url, workspace.root, server


def no_favicon(page: Any) -> None:
    """Chromium asks every site for /favicon.ico, which the Studio does not serve (a 404 in the console
    that is no problem of the chat's): answered here with "no content"."""
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))


def test_a_streamed_answer_its_citation_and_a_proposed_fact(studio: tuple[str, Path, FakeOpenAIServer]) -> None:
    from playwright.sync_api import expect

    url, root, server = studio
    server.script("generic", [FIRST, SECOND])
    server.stream_gate = threading.Event()
    with chromium() as page:
        alerts: list[str] = []

        def alerted(dialog: Any) -> None:
            alerts.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", alerted)
        no_favicon(page)
        page.goto(f"{url}/chat")
        assert_accessible(page, "/chat")
        labels = page.eval_on_selector_all("#model optgroup", "groups => groups.map(g => g.label)")
        assert labels == ["Offline: nothing leaves this machine", "Trusted teachers of this workspace"]
        page.select_option("#model", "fake")
        page.fill("#question", "What do beavers build?")
        page.click("#ask-button")

        answer = page.locator(".message.assistant .text")
        expect(answer).to_contain_text("Beavers build dams from branches")  # on the page while ...
        assert not server.last_piece_sent.is_set()  # ... the model still holds its last piece
        assert page.locator("a.citation").count() == 0
        screenshot(page, "chat-streaming")
        server.stream_gate.set()

        expect(page.locator("#chat-status")).to_have_text("Answered by fake (m).")
        assert answer.inner_text() == FIRST  # the <script> a model wrote is text on the page
        assert alerts == [] and page.locator(".message.assistant script").count() == 0
        with Vault(Workspace.open(root)) as vault:
            (conversation,) = vault.list_conversations()
            chunk = conversation.messages[1].citations[0]
        assert f"conversation={conversation.id}&model=fake" in page.url  # a reload keeps the conversation
        screenshot(page, "chat-answered")
        citation = page.locator(".message.assistant a.citation").first
        assert citation.get_attribute("href") == f"/vault/chunks/{chunk}"
        citation.click()
        assert "Beavers build dams from branches and mud." in page.inner_text("#chunk-text")
        page.go_back()  # the conversation, as the Studio stored it, with the model still chosen

        assert page.locator(".message.assistant").count() == 1
        assert page.eval_on_selector("#model", "select => select.value") == "fake"
        page.fill("#question", "And what else?")
        page.click("#ask-button")  # continues the conversation
        expect(page.locator(".message.assistant .text").nth(1)).to_have_text(SECOND)
        second = page.locator(".message.assistant").nth(1)
        second.locator("summary").click()  # the proposal form the script built for the new answer
        second.get_by_label("Subject").fill("beavers")
        second.get_by_label("Predicate").fill("build")
        second.get_by_label("Object").fill("lodges")
        assert second.get_by_label("Evidence (a chunk this answer cites)").input_value() == chunk
        screenshot(page, "chat-propose")
        second.get_by_role("button", name="Propose for review").click()

        expect(page.locator("#proposed-fact")).to_contain_text("Proposed: beavers — build — lodges (pending)")
        assert_accessible(page, "/chat with a conversation")
        page.click("#proposed-fact a")
        assert "beavers — build — lodges" in page.inner_text(".proposal")
        assert page.problems == []
    with Vault(Workspace.open(root)) as vault:
        (item,) = ReviewQueue(vault).list()
        (conversation,) = vault.list_conversations()
    assert item.text == "beavers — build — lodges" and item.record.conversation_id == conversation.id
    assert [m.role for m in conversation.messages] == ["user", "assistant", "user", "assistant"]

    with chromium(PHONE) as phone:
        no_favicon(phone)
        phone.goto(f"{url}/chat?conversation={conversation.id}&model=fake")
        phone.locator(".message.assistant summary").first.click()
        assert_accessible(phone, "/chat at phone width")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the chat is {width} px wide on a {PHONE['width']} px phone"
        screenshot(phone, "chat-phone")
        assert phone.problems == []


def test_a_model_that_is_down_is_shown_beside_the_form(studio: tuple[str, Path, FakeOpenAIServer]) -> None:
    from playwright.sync_api import expect

    url, root, server = studio
    server.inject(*["503"] * 8)
    with chromium() as page:
        no_favicon(page)
        page.goto(f"{url}/chat")
        page.select_option("#model", "fake")
        page.fill("#question", "What do beavers build?")
        page.click("#ask-button")
        error = page.locator("#ask-error .form-error")
        expect(error).to_contain_text("teacher fake (m)")
        assert page.locator(".message").count() == 0  # nothing was stored, nothing is shown as said
        assert page.input_value("#question") == "What do beavers build?"  # ready to ask again
        assert_accessible(page, "/chat with an error")
        screenshot(page, "chat-error")
        assert page.problems == []
    with Vault(Workspace.open(root)) as vault:
        assert vault.list_conversations() == []

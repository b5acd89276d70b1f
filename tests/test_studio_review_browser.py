"""Reviewing pairs with the keyboard in Debian's Chromium (issue 16, item 2): j moves to the next pair, a
approves it, r puts the keyboard in its reason field (typing a reason with an "a" in it approves nothing; Enter
rejects), e opens its edit form; ? shows the shortcuts.  The decisions are checked as stored.  /review (and a
pair's own page) passes axe-core at desktop and phone width, fits a phone's screen, and is kept as
test-artifacts/studio/review-*.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from arcticcodex.human_review import HumanReview, ReviewedPair
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from studio_browser import PHONE, assert_accessible, chromium, screenshot, watch
from test_studio import serve
from test_studio_review import reviewed_workspace

pytestmark = pytest.mark.slow


def stored(root: Path, item_id: str) -> ReviewedPair:
    with HumanReview(Workspace.open(root), by="test") as review:
        pair = review.get(item_id)
    assert isinstance(pair, ReviewedPair)
    return pair


def test_pairs_are_reviewed_with_keyboard_shortcuts(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root, lakes, otters = reviewed_workspace(acx, tmp_path, server)
    with serve(create_app(Workspace.open(root))) as url, chromium() as page:
        problems = watch(page)
        page.goto(f"{url}/review")
        assert page.locator("#shortcuts summary").is_visible()  # the hint is on the page
        assert_accessible(page, "/review")
        screenshot(page, "review-desktop")
        page.keyboard.press("j")
        page.keyboard.press("j")
        second = page.locator(".card.pair.current")
        assert second.get_attribute("id") == f"pair:{lakes}:1"
        assert page.evaluate("() => document.activeElement.id") == f"pair:{lakes}:1"
        with page.expect_navigation():
            page.keyboard.press("a")
        assert stored(root, f"pair:{lakes}:1").status == "approved"

        page.keyboard.press("j")  # the first pending pair: Alpha
        page.keyboard.press("r")
        assert page.evaluate("() => document.activeElement.name") == "reason"
        page.keyboard.type("a vague answer")  # "a" typed into the field approves nothing
        assert stored(root, f"pair:{lakes}:0").status == "pending"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        alpha = stored(root, f"pair:{lakes}:0")
        assert (alpha.status, alpha.reason, alpha.decided_by) == ("rejected", "a vague answer", "studio")

        page.keyboard.press("j")  # Charlie
        page.keyboard.press("e")
        assert page.locator(f'[id="pair:{lakes}:2"] details.edit').get_attribute("open") is not None
        assert page.evaluate("() => document.activeElement.name") == "completion"
        page.keyboard.press("Control+a")
        page.keyboard.type("Lake Charlie is 30 m deep [1].")
        page.keyboard.press("Tab")  # to Save
        with page.expect_navigation():
            page.keyboard.press("Enter")
        charlie = stored(root, f"pair:{lakes}:2")
        assert charlie.status == "pending" and charlie.edit is not None and charlie.edit.by == "studio"
        assert charlie.pair["completion"] == "Lake Charlie is 30 m deep [1]."

        page.keyboard.press("?")
        assert page.locator("#shortcuts dl").is_visible()
        screenshot(page, "review-shortcuts")
        page.goto(f"{url}/review?teacher=second")
        assert page.locator("#match-count").inner_text().startswith("1 pair matches")
        assert_accessible(page, "/review?teacher=second")
        screenshot(page, "review-bulk-preview")
        with page.expect_navigation():
            page.get_by_role("button", name="Approve 1 pair").click()
        assert stored(root, f"pair:{otters}:0").status == "approved"
        assert stored(root, f"pair:{lakes}:3").status == "pending"
        assert page.locator("#agreement tbody tr").count() == 2  # gpu and second, each with its n
        screenshot(page, "review-agreement")
        page.goto(f"{url}/review/pair:{lakes}:2")  # the edited pair, on a page of its own
        assert page.locator(".card.pair mark").first.inner_text() == "Lake Charlie is 30 m deep."
        assert_accessible(page, "/review/PAIR")
        screenshot(page, "review-pair")
        assert not problems, problems

    with serve(create_app(Workspace.open(root))) as url, chromium(PHONE) as phone:
        problems = watch(phone)
        phone.goto(f"{url}/review")
        assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        assert_accessible(phone, "/review at phone width")
        screenshot(phone, "review-phone")
        assert not problems, problems

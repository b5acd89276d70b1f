"""Every Studio page passes axe-core's WCAG A/AA rules with no serious or critical violation, and can be
used with the keyboard alone (issue 16, item 6 and its acceptance).

axe-core runs inside Debian's Chromium (``tests/studio_browser.py``) on each page of a workspace filled
with a first hour's data (the phone test's workspace: documents, a conversation, a reviewed run's
pending pair, datasets, a proposal), with every ``<details>`` opened so the forms inside are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from studio_browser import DESKTOP, assert_accessible, chromium, screenshot
from test_studio_phone import NAMES, studio

pytestmark = pytest.mark.slow
__all__ = ["studio"]  # the phone test's workspace, served (a fixture)


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Any]:
    with chromium(DESKTOP) as page:
        yield page


@pytest.mark.parametrize("name", NAMES)
def test_no_serious_accessibility_violation(name: str, studio: tuple[str, dict[str, str]], browser_page: Any) -> None:
    url, pages = studio
    browser_page.goto(url + pages[name])
    browser_page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert_accessible(browser_page, pages[name])


def test_the_keyboard_reaches_every_section_and_skips_to_the_content(
    studio: tuple[str, dict[str, str]], browser_page: Any
) -> None:
    url, pages = studio
    browser_page.goto(url + pages["home"])
    browser_page.keyboard.press("Tab")
    assert browser_page.evaluate("document.activeElement.textContent") == "Skip to content"
    screenshot(browser_page, "keyboard-skip-link")
    reached = []
    for _ in range(12):
        browser_page.keyboard.press("Tab")
        reached.append(browser_page.evaluate("document.activeElement.textContent"))
    for section in ("Home", "Chat", "Vault", "Review", "Datasets", "Models", "Runs", "GPUs"):
        assert section in reached, f"Tab never reached {section!r} in the navigation: {reached}"
    browser_page.goto(url + pages["home"])
    browser_page.keyboard.press("Tab")
    browser_page.keyboard.press("Enter")  # the skip link: the keyboard lands in the page's content
    assert browser_page.evaluate("[location.hash, document.activeElement.id]") == ["#main", "main"]
    browser_page.keyboard.press("Tab")  # the next stop is inside the content, not back in the navigation
    assert browser_page.evaluate("document.activeElement.closest('main') !== null")

"""What the Studio's browser tests share: Debian's Chromium through Playwright, screenshots kept in
``test-artifacts/studio/``, and an accessibility check by axe-core run in the same browser.

axe-core comes from the npm registry (``scripts/fetch-axe``, run by ``scripts/setup``: the pinned
release, checked against the registry's sha512).  It is evaluated through the DevTools protocol, which
the Studio's Content-Security-Policy does not govern, so the page under test keeps its real policy:
a script of the Studio's that the policy would refuse still fails its test.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "studio"
AXE = next(iter(sorted((ROOT / ".venv" / "share").glob("axe-core-*/axe.min.js"))), None)
SERIOUS = ("serious", "critical")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 900}


@contextmanager
def chromium(viewport: dict[str, int] | None = None, **options: Any) -> Iterator[Any]:
    """A fresh headless Chromium page (a Playwright ``Page``; ``options`` go to ``new_page``); console errors
    and refused scripts are collected on ``page.problems`` (a CSP refusal shows up there)."""
    if CHROMIUM is None:
        pytest.fail("Chromium is missing: scripts/setup installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=viewport or DESKTOP, **options)  # type: ignore[arg-type]
            page.problems = watch(page)  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def watch(page: Any) -> list[str]:
    """The page's console errors and script failures from now on (a CSP refusal is one), each with where
    it happened; the browser's own favicon request is left out (a request the page never made)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error" and not str(message.location.get("url", "")).endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def screenshot(page: Any, name: str) -> Path:
    """The whole page as ``test-artifacts/studio/NAME.png`` (kept for a person to look at)."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2.x A and AA rules)."""
    if AXE is None:
        pytest.fail("axe-core is missing: scripts/setup fetches it from the npm registry (scripts/fetch-axe)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]}});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
        }"""
    )
    return [violation for violation in found if violation["impact"] in SERIOUS]


def assert_accessible(page: Any, where: str) -> None:
    """No serious or critical accessibility violation on the page (axe-core), named with ``where``."""
    found = serious_violations(page)
    assert not found, f"{where}: " + json.dumps(found, indent=1)

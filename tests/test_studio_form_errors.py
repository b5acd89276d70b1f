"""A failed form's error is shown beside the form, on the page it was sent from (issue 16, item 6).

The error is kept by the Studio under a random name for the session that caused it; the page it
redirects back to shows it next to the form whose action failed.  A name made up by someone else, or
another session's, shows nothing: a link cannot make the Studio say what it did not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from arcticcodex._sync import run_sync
from arcticcodex.studio import create_app
from arcticcodex.studio.form_errors import FormError, FormErrors, form_value, submitted_fields
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_studio import form_token, make_root

ERROR = re.compile(r'<p class="form-error" role="alert">([^<]*)</p>')


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("form-errors")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))
        yield make_root(acx, base)


def _client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def _failed_import(client: httpx.AsyncClient, *, referer: str | None) -> httpx.Response:
    token = form_token((await client.get("/vault")).text)
    headers = {"referer": referer} if referer else {}
    files = {"file": ("", b"", "text/plain")}  # no file chosen
    sent = await client.post("/vault/import", data={"csrf_token": token}, files=files, headers=headers)
    return sent


def test_the_error_is_shown_beside_the_form_it_came_from(root: Path) -> None:
    app = create_app(Workspace.open(root))

    async def scenario() -> None:
        async with _client(app) as client:
            sent = await _failed_import(client, referer="http://127.0.0.1/vault?q=otters")
            assert sent.status_code == 303
            back = sent.headers["location"]
            assert back.startswith("/vault?q=otters&form_error=")  # the page it was on, its query kept
            page = (await client.get(back)).text
            shown = ERROR.findall(page)
            assert shown == ["choose a file to import (.md, .txt, .html, .pdf or .jsonl)"]
            form = re.search(r'<form class="card" action="/vault/import".*?</form>', page, flags=re.S)
            assert form is not None and 'class="form-error"' in form.group(0)  # inside the import form
            assert "Results for" in page  # the rest of the page is as it was

            # a name nobody kept, and the same name in another session, show nothing
            name = back.rsplit("=", 1)[1]
            assert ERROR.findall((await client.get("/vault?form_error=made-up")).text) == []
            async with _client(app) as stranger:
                assert ERROR.findall((await stranger.get(f"/vault?form_error={name}")).text) == []

    run_sync(scenario())


def test_without_a_page_to_go_back_to_the_error_is_a_page_of_its_own(root: Path) -> None:
    app = create_app(Workspace.open(root))

    async def scenario() -> None:
        for referer in (None, "http://evil.example/vault"):  # no Referer, or another site's: no redirect
            async with _client(app) as client:
                sent = await _failed_import(client, referer=referer)
                assert sent.status_code == 400 and "choose a file to import" in sent.text
                assert "location" not in sent.headers

    run_sync(scenario())


def test_typed_values_come_back_only_to_the_form_that_failed() -> None:
    scope = {"arcticcodex.submitted_form": b"csrf_token=secret&reason=too+vague&min_quality=2"}
    fields = submitted_fields(scope)
    assert fields == {"reason": "too vague", "min_quality": "2"}  # the form token is not kept
    errors = FormErrors(kept_at_most=2)
    kept = [errors.keep(FormError("/a", f"error {n}", fields, "session", 0.0)) for n in range(3)]
    assert errors.find(kept[0], "session") is None  # the oldest is dropped beyond the limit
    assert form_value("/review/bulk/reject", "reason", "default") == "default"  # no failed form: the default


def test_an_expired_error_is_not_shown() -> None:
    errors = FormErrors(kept_seconds=0.0)
    name = errors.keep(FormError("/a", "too late", {}, "session", -1.0))
    assert errors.find(name, "session") is None

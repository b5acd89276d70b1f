"""The Studio's guards, attacked for real: a real HTTP client against the Studio served by uvicorn on
127.0.0.1, sending what a rebinding or forging site would make a browser send.  Each refused request
is shown to have changed nothing, and its message to say what was refused and what to do."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from arcticcodex.studio import create_app
from arcticcodex.studio.pages import without_paths
from arcticcodex.studio.security import host_of, studio_host_names
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_studio import form_token, get, serve

TEMPLATES = Path(__file__).resolve().parent.parent / "src" / "arcticcodex" / "studio" / "templates"


def make_workspace(acx: Acx, base: Path) -> Path:
    workspace, _ = Workspace.init(base / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    (base / "otters.md").write_text("# Otters\n\nOtters eat mostly fish. They also eat crabs.\n")
    acx("-w", workspace.root, "vault", "import", base / "otters.md")
    return workspace.root


def vault_state(root: Path) -> dict[str, Any]:
    """What an attack could change: documents, conversations, the review queue, the uploads folder."""
    with Vault(Workspace.open(root)) as vault:
        uploads = root / "uploads"
        return {
            "documents": sorted(d.source for d in vault.list_documents()),
            "conversations": len(vault.list_conversations()),
            "pending": sorted(item.id for item in ReviewQueue(vault).list()),
            "facts": len(vault.list_facts()),
            "uploads": sorted(p.name for p in uploads.iterdir()) if uploads.exists() else [],
        }


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[tuple[str, Path]]:
    root = make_workspace(acx, tmp_path_factory.mktemp("guard"))
    with serve(create_app(Workspace.open(root))) as url:
        yield url, root


@pytest.fixture
def proposal(studio: tuple[str, Path]) -> str:
    with Vault(Workspace.open(studio[1])) as vault:
        return ReviewQueue(vault).propose_fact("otters", "eat", "rocks").id


@contextmanager
def signed_in(url: str, page: str = "/chat") -> Iterator[tuple[httpx.Client, str]]:
    """A client holding a Studio session cookie, and the form token of ``page``."""
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, form_token(client.get(page).text)


# -- DNS rebinding: the Host allow-list ---------------------------------------------------------------


def test_a_page_reached_through_another_name_gets_421_and_changes_nothing(studio: tuple[str, Path]) -> None:
    url, root = studio
    port = url.rsplit(":", 1)[1]
    before = vault_state(root)
    with signed_in(url) as (client, token):
        page = client.get("/", headers={"Host": f"evil.example:{port}"})
        assert page.status_code == 421
        assert "evil.example" in page.text and f"http://127.0.0.1:{port}/" in page.text
        assert "--allow-host NAME" in page.text and "DNS-rebinding" in page.text
        assert "documents" not in page.text  # nothing of the vault was served
        files = {"file": ("rebound.md", b"# Rebound\n\nA rebinding page imported this.\n", "text/markdown")}
        posted = client.post("/vault/import", headers={"Host": "evil.example"}, data={"csrf_token": token}, files=files)
        assert posted.status_code == 421
        asked = client.post("/chat", headers={"Host": "evil.example"}, data={"csrf_token": token, "question": "hi"})
        assert asked.status_code == 421
        assert client.get("/api/search?q=otters", headers={"Host": "rebind.127.0.0.1.nip.io"}).status_code == 421
        for own in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST."):
            assert client.get("/", headers={"Host": own}).status_code == 200, own
    assert vault_state(root) == before


def test_the_allowed_names_are_loopback_the_bound_address_and_allow_host() -> None:
    names = studio_host_names("127.0.0.1", ["studio.lan:8765", "[fe80::1]"])
    assert names >= {"localhost", "127.0.0.1", "::1", "studio.lan", "fe80::1"}
    assert "0.0.0.0" not in studio_host_names("0.0.0.0")  # a wildcard bind is no name
    assert host_of("[0:0:0:0:0:0:0:1]:80") == "::1" and host_of("Example.COM.") == "example.com"
    assert host_of("::1") is None and host_of("a:b") is None and host_of("[::1]x") is None


def test_allow_host_names_are_served(tmp_path: Path, acx: Acx) -> None:
    app = create_app(Workspace.open(make_workspace(acx, tmp_path)), allowed_hosts=["studio.lan"])
    assert get(app, "/", headers={"Host": "studio.lan:8765"}).status_code == 200
    assert get(app, "/", headers={"Host": "evil.example"}).status_code == 421


# -- forged requests: other origins, form tokens ------------------------------------------------------


def test_forged_posts_are_refused_and_change_nothing(studio: tuple[str, Path], proposal: str) -> None:
    url, root = studio
    port = int(url.rsplit(":", 1)[1])
    before = vault_state(root)
    attacker = f"http://127.0.0.1:{port + 1}"  # another port: another origin, but the same site
    approve = f"/review/{proposal}/approve"
    with signed_in(url, "/review") as (client, token), signed_in(url, "/review") as (_, other_token):
        cases: list[tuple[str, dict[str, str], dict[str, str], str]] = [
            ("no session", {}, {"csrf_token": token}, "session cookie"),
            ("no token", {}, {}, "form token"),
            ("a wrong token", {}, {"csrf_token": "x" * 43}, "form token"),
            ("another session's token", {}, {"csrf_token": other_token}, "form token"),
            ("another origin", {"Origin": attacker}, {"csrf_token": token}, f"a page from {attacker}"),
            ("a hidden origin", {"Origin": "null"}, {"csrf_token": token}, "a page with a hidden origin"),
            ("cross-site", {"Sec-Fetch-Site": "cross-site"}, {"csrf_token": token}, "another site"),
            ("same-site", {"Sec-Fetch-Site": "same-site"}, {"csrf_token": token}, "another port"),
        ]
        for name, headers, data, named in cases:
            sender = httpx.Client(base_url=url, timeout=30) if name == "no session" else client
            try:
                for path, fields in ((approve, data), ("/chat", {**data, "question": "What do otters eat?"})):
                    refused = sender.post(path, headers=headers, data=fields, follow_redirects=False)
                    assert refused.status_code == 403, (name, path, refused.text[:300])
                    assert named in refused.text and f"POST {path}" in refused.text, name
                    assert "nothing was done" in refused.text, name
                    if name in ("no session", "no token", "a wrong token", "another session's token"):
                        assert "Reload the page" in refused.text, name
            finally:
                if sender is not client:
                    sender.close()
        assert vault_state(root) == before
        # the same request from the Studio's own page is carried out
        own = {"Origin": url, "Sec-Fetch-Site": "same-origin"}
        assert client.post(approve, headers=own, data={"csrf_token": token}).status_code == 303
        assert client.post("/chat", headers={"X-CSRF-Token": token}, data={"question": "otters?"}).status_code == 303
    after = vault_state(root)
    assert proposal not in after["pending"] and after["conversations"] == before["conversations"] + 1


def test_other_sites_may_link_to_a_page_but_not_load_or_read_one(studio: tuple[str, Path]) -> None:
    url, _ = studio
    with httpx.Client(base_url=url, timeout=30) as client:
        link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
        followed = client.get("/vault", headers=link)
        assert followed.status_code == 200
        assert "set-cookie" not in followed.headers  # the session of the user's other tabs is left alone
        for dest, mode in (("image", "no-cors"), ("empty", "cors"), ("iframe", "navigate"), ("script", "no-cors")):
            embedded = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
            refused = client.get("/api/search?q=otters", headers=embedded)
            assert refused.status_code == 403 and "otters" not in refused.text.lower().replace("q=otters", "")
        assert client.get("/api/search?q=otters", headers={"Origin": "http://evil.example"}).status_code == 403


def test_every_post_form_carries_the_form_token_and_no_template_has_inline_script() -> None:
    """Scripts come only from the Studio's own files (``/static/NAME``, which the CSP allows); no template
    holds a script's text, a ``javascript:`` address or an event handler, which the CSP would refuse."""
    forms = 0
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.S | re.I):
            assert not tag.strip(), f"{template.name} has an inline script"
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            assert re.fullmatch(r'<script src="/static/[a-z-]+\.js" defer>', tag), f"{template.name}: {tag}"
        assert "javascript:" not in text.lower(), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name} has an inline event handler"
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, flags=re.S | re.I):
            if 'method="post"' in form.lower():
                forms += 1
                assert '<input type="hidden" name="csrf_token" value="{{ csrf_token }}">' in form, template.name
    assert forms >= 7  # chat, import, and the five review forms


def test_pages_carry_their_sessions_token_and_the_hardening_headers(studio: tuple[str, Path], proposal: str) -> None:
    url, _ = studio
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/review")
        session = client.cookies.get("acx_studio_session")
        assert session and "httponly" in page.headers["set-cookie"].lower()
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page.text))
        assert len(tokens) == 1 and len(re.findall(r'name="csrf_token"', page.text)) >= 3
        assert client.get("/chat").headers.get("set-cookie") is None  # the session is kept, not renewed
        for response in (page, client.get("/", headers={"Host": "evil.example"}), client.post("/chat")):
            headers = response.headers
            assert "default-src 'none'" in headers["content-security-policy"]
            # scripts and their requests only from the Studio itself: no inline script, no other host
            assert "script-src 'self';" in headers["content-security-policy"]
            assert "connect-src 'self';" in headers["content-security-policy"]
            assert "unsafe-inline" not in headers["content-security-policy"].split("style-src")[0]
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] in ("no-referrer", "same-origin")


# -- the token: exchanged by a redirect ---------------------------------------------------------------


def test_a_token_in_the_address_is_exchanged_for_a_cookie_by_a_redirect(tmp_path: Path, acx: Acx) -> None:
    token = "s3cret-" + "t" * 20
    app = create_app(
        Workspace.open(make_workspace(acx, tmp_path)), host="0.0.0.0", token=token, allowed_hosts=["127.0.0.1"]
    )
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        refused = client.get("/vault")
        assert refused.status_code == 401 and "?token=" in refused.text
        first = client.get(f"/vault/search?token={token}&q=otters")
        assert first.status_code == 303 and first.headers["location"] == "/vault/search?q=otters"
        assert token not in first.headers["location"] and first.headers["referrer-policy"] == "same-origin"
        followed = client.get(first.headers["location"])  # the cookie now carries the token
        assert followed.status_code == 200 and "<mark>Otters</mark> eat mostly fish" in followed.text  # highlighted
        assert client.get(f"{url}//evil.example/?token={token}").headers["location"] == "/evil.example/"
        with httpx.Client(base_url=url, timeout=30) as program:
            bearer = program.get("/api/search?q=otters", headers={"Authorization": f"Bearer {token}"})
            assert bearer.status_code == 200 and bearer.json()["results"]
            assert program.get(f"/api/search?q=otters&token={token}x").status_code == 401


# -- error pages: no absolute paths -------------------------------------------------------------------


def test_error_pages_show_no_absolute_paths(tmp_path: Path, acx: Acx) -> None:
    root = make_workspace(acx, tmp_path)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text().replace("[vault]\n", "[vault]\nchunk_chars = -1\n", 1))
    line = config.read_text().splitlines().index("chunk_chars = -1") + 1
    app = create_app(Workspace.open(root))
    for path in ("/", "/vault", "/api/search?q=otters"):
        page = get(app, path)
        assert page.status_code == 400
        assert f"arcticcodex.toml:{line}: [vault] chunk_chars must be a positive integer, not -1" in page.text
        assert str(tmp_path) not in page.text and str(root) not in page.text


def test_paths_are_made_relative_or_cut_to_their_name(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    message = (
        f"{root}/uploads/a.jsonl:3: not valid JSON; the dataset {tmp_path}/data/train.jsonl "
        f"is damaged; see {root}; try /api/search?q=… or http://127.0.0.1:8765/vault (20 MB/s)"
    )
    assert without_paths(message, root) == (
        "uploads/a.jsonl:3: not valid JSON; the dataset …/train.jsonl is damaged; see the "
        "workspace folder; try /api/search?q=… or http://127.0.0.1:8765/vault (20 MB/s)"
    )


def test_a_websocket_handshake_from_another_origin_or_name_is_closed(tmp_path: Path, acx: Acx) -> None:
    """No WebSocket route exists yet; the guards cover one added later (cross-site WebSocket hijacking)."""
    app = create_app(Workspace.open(make_workspace(acx, tmp_path)))

    async def handshake(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/ws", "raw_path": b"/ws", "query_string": b"", "headers": headers}
        await app({**scope, "scheme": "ws", "server": ("127.0.0.1", 8765), "subprotocols": []}, receive, send)
        return sent

    foreign = [(b"host", b"127.0.0.1:8765"), (b"origin", b"http://127.0.0.1:9999")]
    assert asyncio.run(handshake(foreign)) == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    rebound = [(b"host", b"evil.example"), (b"origin", b"http://evil.example")]
    assert asyncio.run(handshake(rebound)) == [{"type": "websocket.close", "code": 1008, "reason": ""}]

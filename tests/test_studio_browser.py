"""The Studio in a real browser: headless Chromium (Debian's, through Playwright, never a downloaded one)
against the Studio served by uvicorn on 127.0.0.1.  Screenshots are kept in test-artifacts/studio/.

Also the attack the Studio's guards exist for: a page from another origin (a second server on another
port of 127.0.0.1) makes the same browser, which holds a Studio session, post forms and ``fetch``
requests to the Studio; all are refused and the vault is unchanged, while the Studio's own forms work."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from arcticcodex.provenance import KeyStore
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.studio import create_app
from arcticcodex.vault import Vault
from arcticcodex.vault.proposals import ReviewQueue
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from studio_browser import ARTIFACTS, chromium
from test_studio import SCRIPT, serve
from test_studio_guard import vault_state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[tuple[str, Path]]:
    base = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCTICCODEX_CONFIG_DIR", str(base / "user-config"))  # where `keys new` records its trust
        yield from _served_workspace(acx, base)


def _served_workspace(acx: Acx, base: Path) -> Iterator[tuple[str, Path]]:
    workspace, _ = Workspace.init(base / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    acx("-w", workspace.root, "keys", "new", "dataset")
    (base / "beavers.md").write_text("# Beavers\n\nBeavers build dams from branches and mud.\n")
    acx("-w", workspace.root, "vault", "import", base / "beavers.md")
    with FakeOpenAIServer(model="m") as server:
        acx.add_teacher(workspace.root, server, name="t", model="m")
        prompts = base / "prompts.jsonl"
        prompts.write_text('{"instruction": "What do beavers build?", "evidence": "Beavers build dams."}\n')
        acx("-w", workspace.root, "distill", "--prompts", prompts, "--out", base / "data", "--teachers", "t")
    with serve(create_app(workspace)) as url:
        yield url, base


@pytest.fixture
def page(studio_url: tuple[str, Path]) -> Iterator[object]:
    with chromium({"width": 1200, "height": 900}) as opened:
        yield opened


def test_import_search_ask_and_open_a_citation(page: object, studio_url: tuple[str, Path]) -> None:
    url, base = studio_url
    p = page  # playwright Page
    (base / "otters.md").write_text(f"# Otters\n\nOtters eat mostly fish. {SCRIPT} They also eat crabs.\n")
    p.goto(f"{url}/vault")  # type: ignore[attr-defined]
    p.set_input_files("#file", str(base / "otters.md"))  # type: ignore[attr-defined]
    p.click("#import")  # type: ignore[attr-defined]
    assert "Imported otters.md" in p.inner_text("#imported")  # type: ignore[attr-defined]
    p.fill("#q", "otters fish")  # type: ignore[attr-defined]
    p.press("#q", "Enter")  # type: ignore[attr-defined]
    assert "otters.md" in p.inner_text(".result")  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)  # type: ignore[attr-defined]
    p.goto(f"{url}/chat")  # type: ignore[attr-defined]
    p.fill("#question", "What do otters eat?")  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]
    answer = p.inner_text(".message.assistant")  # type: ignore[attr-defined]
    assert "Otters eat mostly fish." in answer and SCRIPT in answer  # the script is shown as text
    p.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)  # type: ignore[attr-defined]
    p.click("a.citation")  # type: ignore[attr-defined]
    assert "Otters eat mostly fish." in p.inner_text("#chunk-text")  # type: ignore[attr-defined]
    alerts: list[str] = []
    p.on("dialog", lambda dialog: alerts.append(dialog.message))  # type: ignore[attr-defined]
    p.reload()  # type: ignore[attr-defined]
    assert alerts == [], "a <script> in a document ran"


def test_approve_a_fact_and_open_a_histogram(page: object, studio_url: tuple[str, Path]) -> None:
    url, base = studio_url
    with Vault(Workspace.open(base / "ws")) as vault:
        item = ReviewQueue(vault).propose_fact("beavers", "build", "dams")
    p = page
    p.goto(f"{url}/review")  # type: ignore[attr-defined]
    p.click(f"#{item.id} button:has-text('Approve')")  # type: ignore[attr-defined]
    p.goto(f"{url}/vault")  # type: ignore[attr-defined]
    assert "beavers — build — dams" in p.inner_text("#facts")  # type: ignore[attr-defined]
    p.goto(f"{url}/datasets")  # type: ignore[attr-defined]
    p.click("#datasets a")  # type: ignore[attr-defined]
    assert p.inner_text("#verify-status") == "intact, signer trusted"  # type: ignore[attr-defined]
    assert colour(p, "#verify-status") == "rgb(21, 127, 59)"  # green
    assert p.locator("#quality-histogram rect").count() == 6  # type: ignore[attr-defined]
    p.screenshot(path=str(ARTIFACTS / "dataset.png"), full_page=True)  # type: ignore[attr-defined]

    trusted = TrustedKeys(base / "user-config")
    trusted.remove("dataset")  # the signer is no longer one the user vouches for
    try:
        p.reload()  # type: ignore[attr-defined]
        assert p.inner_text("#verify-status") == "intact, signer NOT trusted"  # type: ignore[attr-defined]
        assert colour(p, "#verify-status") == "rgb(161, 92, 0)"  # amber
        assert p.locator("#quality-histogram").count() == 0  # type: ignore[attr-defined]
        p.screenshot(path=str(ARTIFACTS / "dataset-untrusted.png"), full_page=True)  # type: ignore[attr-defined]
        p.click("#show-untrusted")  # type: ignore[attr-defined]
        assert p.locator("#quality-histogram rect").count() == 6  # type: ignore[attr-defined]
    finally:
        keys = KeyStore(Workspace.open(base / "ws").keys_dir)
        trusted.trust_key(keys.verifier("dataset"), name="dataset", origin="the test")


def colour(page: object, selector: str) -> str:
    """The computed text colour of the element: the verdict must be told by colour as well as words."""
    return str(page.eval_on_selector(selector, "e => getComputedStyle(e).color"))  # type: ignore[attr-defined]


@contextmanager
def another_site(pages: dict[str, str]) -> Iterator[str]:
    """A second web server on another port of 127.0.0.1 (another origin), serving ``pages``."""

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def auto_posting_form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items())
    return (
        f'<form method="post" action="{html.escape(action)}">{inputs}</form><script>document.forms[0].submit()</script>'
    )


class NetworkLog:
    """The HTTP status of every response the browser receives, by URL, from Chromium's own network
    log (DevTools protocol): it has those a page's script is not allowed to see."""

    def __init__(self, page: object) -> None:
        self._urls: dict[str, str] = {}
        self._statuses: dict[str, int] = {}
        cdp = page.context.new_cdp_session(page)  # type: ignore[attr-defined]
        cdp.send("Network.enable")
        cdp.on(
            "Network.requestWillBeSent", lambda event: self._urls.update({event["requestId"]: event["request"]["url"]})
        )
        cdp.on(
            "Network.responseReceivedExtraInfo",  # may come before the request's own event
            lambda event: self._statuses.update({event["requestId"]: event["statusCode"]}),
        )

    def statuses(self) -> dict[str, int]:
        return {self._urls[r]: status for r, status in self._statuses.items() if r in self._urls}


FETCHES = """<p>cute otters</p><script>
window.outcome = {};
const file = new File(["# Planted\\n\\nAnother site planted this document.\\n"], "planted.md", {type: "text/markdown"});
const upload = new FormData(); upload.append("csrf_token", "guessed"); upload.append("file", file);
const approve = new URLSearchParams({csrf_token: "guessed"});
Promise.all([
  fetch("STUDIO/vault/import", {method: "POST", body: upload, mode: "no-cors", credentials: "include"})
    .then(r => { window.outcome.import = r.type; }, e => { window.outcome.import = String(e); }),
  fetch("STUDIO/review/ITEM/approve", {method: "POST", body: approve, credentials: "include"})
    .then(r => { window.outcome.approve = r.status; }, e => { window.outcome.approve = String(e); }),
]).then(() => { window.done = true; });
</script>"""


def test_another_origin_cannot_post_to_the_studio_but_its_own_forms_work(
    page: object, studio_url: tuple[str, Path]
) -> None:
    url, base = studio_url
    root = base / "ws"
    with Vault(Workspace.open(root)) as vault:
        item = ReviewQueue(vault).propose_fact("beavers", "eat", "stones")
    p = page  # playwright Page
    p.goto(f"{url}/review")  # type: ignore[attr-defined]  # the browser now holds a Studio session
    assert p.context.cookies(url)[0]["name"] == "acx_studio_session"  # type: ignore[attr-defined]
    before = vault_state(root)
    attacks = {
        "/chat": auto_posting_form(f"{url}/chat", {"question": "Tell me every secret", "csrf_token": "guessed"}),
        "/approve": auto_posting_form(f"{url}/review/{item.id}/approve", {"csrf_token": "guessed"}),
        "/fetch": FETCHES.replace("STUDIO", url).replace("ITEM", item.id),
    }
    with another_site(attacks) as evil:
        for attack, target in (("/chat", f"{url}/chat"), ("/approve", f"{url}/review/{item.id}/approve")):
            with p.expect_response(lambda r, t=target: r.url == t) as posted:  # type: ignore[attr-defined]
                p.goto(evil + attack)  # type: ignore[attr-defined]
            assert posted.value.status == 403, attack
            p.wait_for_selector("#error-message")  # type: ignore[attr-defined]
            refusal = p.inner_text("#error-message")  # type: ignore[attr-defined]
            assert f"a page from {evil} tried to send POST" in refusal and "nothing was done" in refusal
        p.screenshot(path=str(ARTIFACTS / "refused.png"), full_page=True)  # type: ignore[attr-defined]
        # fetch: the page's script sees only a network error; the browser's network log has the status
        log = NetworkLog(p)
        p.goto(f"{evil}/fetch")  # type: ignore[attr-defined]
        p.wait_for_function("window.done === true")  # type: ignore[attr-defined]
        outcome = p.evaluate("window.outcome")  # type: ignore[attr-defined]
        assert outcome == {"import": "TypeError: Failed to fetch", "approve": "TypeError: Failed to fetch"}
        fetched = [f"{url}/vault/import", f"{url}/review/{item.id}/approve"]
        for _ in range(200):  # the log's events arrive asynchronously (up to 10 s)
            if all(target in log.statuses() for target in fetched):
                break
            p.wait_for_timeout(50)  # type: ignore[attr-defined]
        assert [log.statuses().get(target) for target in fetched] == [403, 403]
    assert vault_state(root) == before
    # the Studio's own forms, in the same browser, still work
    p.goto(f"{url}/review")  # type: ignore[attr-defined]
    p.click(f"#{item.id} button:has-text('Approve')")  # type: ignore[attr-defined]
    p.goto(f"{url}/chat")  # type: ignore[attr-defined]
    p.fill("#question", "What do beavers build?")  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "Beavers build dams" in p.inner_text(".message.assistant")  # type: ignore[attr-defined]
    after = vault_state(root)
    assert item.id not in after["pending"] and after["conversations"] == before["conversations"] + 1

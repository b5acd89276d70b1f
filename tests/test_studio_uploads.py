"""Uploads to the Studio, over real HTTP (uvicorn on 127.0.0.1): a body past the limit is refused while
it is still being sent, and an import that fails for any reason leaves no file in the uploads folder."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_studio import form_token, serve
from test_studio_guard import make_workspace, vault_state

LIMIT = 100_000  # the largest file this Studio takes (create_app(max_upload_bytes=…))
BOUNDARY = "acx-test-boundary"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, acx: Acx) -> Iterator[tuple[str, Path]]:
    root = make_workspace(acx, tmp_path_factory.mktemp("uploads"))
    with serve(create_app(Workspace.open(root), max_upload_bytes=LIMIT)) as url:
        yield url, root


@pytest.fixture
def client(studio: tuple[str, Path]) -> Iterator[tuple[httpx.Client, str]]:
    """A browser-like client with a session, and the import form's token."""
    with httpx.Client(base_url=studio[0], timeout=30) as session:
        yield session, form_token(session.get("/vault").text)


def upload(client: tuple[httpx.Client, str], name: str, data: bytes) -> httpx.Response:
    session, token = client
    return session.post("/vault/import", data={"csrf_token": token}, files={"file": (name, data)})


def error_of(response: httpx.Response) -> str:
    start = response.text.index('<p id="error-message">') + len('<p id="error-message">')
    return response.text[start : response.text.index("</p>", start)].replace("&#39;", "'")


def raw_request(url: str, head: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    connection.sendall(head.encode())
    return connection


def read_status_and_body(connection: socket.socket) -> tuple[int, str]:
    """The response's status and body, read while the request may still be unfinished."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return int(head.split(b" ")[1]), body.decode()


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    url, root = studio
    before = vault_state(root)
    session, token = client
    head = (
        f"POST /vault/import HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
        f"Cookie: acx_studio_session={session.cookies['acx_studio_session']}\r\nX-CSRF-Token: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {10**10}\r\n\r\n"
    )
    with raw_request(url, head) as connection:  # not one byte of the 10 GB body is sent
        status, body = read_status_and_body(connection)
    assert status == 413
    assert "POST /vault/import is over 164 KB" in body and "arcticcodex vault import PATH" in body
    assert vault_state(root) == before


def test_an_oversized_prompts_upload_is_told_to_use_the_command_line(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    url, _ = studio
    session, token = client
    head = (
        f"POST /runs/new HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
        f"Cookie: acx_studio_session={session.cookies['acx_studio_session']}\r\nX-CSRF-Token: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {10**10}\r\n\r\n"
    )
    with raw_request(url, head) as connection:
        status, body = read_status_and_body(connection)
    assert status == 413 and "POST /runs/new is over 20.1 MB" in body
    assert "arcticcodex distill --prompts FILE --out DIR" in body and "vault import" not in body


def test_a_body_growing_past_the_limit_is_refused_while_it_is_still_being_sent(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    """Chunked, with no length: the server answers 413 although the body never ends, so it cannot
    have waited for all of it (a server spooling the whole body would never answer)."""
    url, root = studio
    before = vault_state(root)
    session, token = client
    head = (
        f"POST /vault/import HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
        f"Cookie: acx_studio_session={session.cookies['acx_studio_session']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    preamble = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="huge.md"\r\n\r\n'
    ).encode()
    piece = b"x" * 16_384
    with raw_request(url, head) as connection:
        connection.sendall(b"%x\r\n%s\r\n" % (len(preamble), preamble))
        sent = len(preamble)
        while sent < 3 * LIMIT:  # past the limit (file + form), but never the closing chunk
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        status, body = read_status_and_body(connection)
    assert status == 413 and "it was not read to the end and nothing was done" in body
    assert vault_state(root) == before and before["uploads"] == []


def test_a_file_over_the_limit_inside_a_small_form_is_refused(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    before = vault_state(studio[1])
    refused = upload(client, "notes.md", b"# Notes\n\n" + b"word " * (LIMIT // 5))
    assert refused.status_code == 400
    assert error_of(refused) == "notes.md is over 100 KB; import it with `arcticcodex vault import`"
    assert vault_state(studio[1]) == before


def test_a_file_the_vault_does_not_import_is_refused_and_not_kept(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    before = vault_state(studio[1])
    assert "'tool.exe' is not a file the vault imports; use .htm .html .jsonl" in error_of(
        upload(client, "tool.exe", b"MZ")
    )
    assert "'.hidden.md' is not a file name the Studio keeps; rename the file" in error_of(
        upload(client, ".hidden.md", b"# hi\n")
    )
    assert vault_state(studio[1]) == before
    assert upload(client, "../../escape.md", b"# Escape\n\nNo way out.\n").status_code == 303  # the name only
    assert not (studio[1].parent / "escape.md").exists() and not (studio[1] / "escape.md").exists()
    assert vault_state(studio[1])["uploads"] == [*before["uploads"], "escape.md"]


def test_a_failed_import_leaves_no_file_and_restores_the_previous_upload(
    studio: tuple[str, Path], client: tuple[httpx.Client, str]
) -> None:
    root = studio[1]
    good = json.dumps({"role": "user", "content": "Otters hold hands while they sleep."}).encode() + b"\n"
    assert upload(client, "chat.jsonl", good).status_code == 303
    kept = vault_state(root)
    assert "chat.jsonl" in kept["uploads"] and "uploads/chat.jsonl" in kept["documents"]
    for name, data in (
        ("chat.jsonl", b"{not json\n"),
        ("broken.pdf", b"%PDF-1.4 this is no PDF"),
        ("new.jsonl", b"[]\n"),
    ):
        refused = upload(client, name, data)
        assert refused.status_code == 400, name
        message = error_of(refused)
        assert message.startswith(f"{name} could not be imported: "), message
        assert str(root) not in refused.text and str(root.parent) not in refused.text
        assert vault_state(root) == kept, name
    message = error_of(upload(client, "chat.jsonl", b"{not json\n"))  # located, relative to the workspace
    assert message.startswith("chat.jsonl could not be imported: uploads/chat.jsonl, line 1: not valid")
    assert (root / "uploads" / "chat.jsonl").read_bytes() == good  # the earlier upload is back

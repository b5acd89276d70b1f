"""The fake Vast.ai API with real clients: the official ``vastai`` CLI, and OpenSSH through each instance's sshd."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncssh
import httpx2 as httpx
import pytest

from fakes.vast_server import FakeVastServer
from test_fake_vast_server import BOOT, IMAGE, KEY, SSH, SSH_KEYGEN, UP, VASTAI, create, delete, show


@pytest.fixture
def server() -> Iterator[FakeVastServer]:
    with FakeVastServer(boot_seconds=BOOT) as fake:
        yield fake


@pytest.fixture
def api(server: FakeVastServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as client:
        yield client


# -- the official CLI -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_official_vastai_cli_works_against_the_fake(server: FakeVastServer, tmp_path: Path) -> None:
    """``vastai`` 1.9.1 with ``VAST_URL``: search, create, show, list, destroy all exit 0 and print what Vast would."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAST_URL": server.url, "VAST_API_KEY": KEY}
    env["VASTAI_NO_UPDATE_CHECK"] = "1"  # never reach for vast.ai's update manifest

    def vastai(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(VASTAI), *args], env=env, capture_output=True, text=True, input=stdin, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    offers = json.loads(vastai("search", "offers", "gpu_ram>=20 num_gpus=1", "--raw"))
    assert offers and all(o["gpu_ram"] >= 20_000 and o["num_gpus"] == 1 for o in offers)
    assert all(o["verification"] == "verified" and o["rentable"] for o in offers)  # the CLI's default filters
    sent = next(r for r in server.requests if r.path == "/api/v0/bundles/")
    assert sent.body["gpu_ram"] == {"gte": 20000.0} and sent.body["num_gpus"] == {"eq": "1"}
    assert sent.headers["authorization"] == f"Bearer {KEY}"

    created = json.loads(
        vastai(
            "create", "instance", str(offers[0]["id"]), "--image", IMAGE, "--disk", "40", "--ssh", "--direct", "--raw"
        )
    )
    instance_id = created["new_contract"]
    assert created["success"] is True
    put = next(r for r in server.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/"))
    assert put.body["runtype"] == "ssh_direc ssh_proxy" and put.body["disk"] == 40.0 and put.body["client_id"] == "me"

    server.advance(UP)
    shown = json.loads(vastai("show", "instance", str(instance_id), "--raw"))
    assert shown["id"] == instance_id and shown["actual_status"] == "running" and shown["extra_env"] == {}
    listed = json.loads(vastai("show", "instances", "--raw"))
    assert [i["id"] for i in listed] == [instance_id]
    assert "RTX" in vastai("show", "instances")  # the table view (filters panel, select_cols) renders too

    assert f"destroying instance {instance_id}" in vastai("destroy", "instance", str(instance_id), stdin="y\n")
    assert json.loads(vastai("show", "instance", str(instance_id), "--raw")) == {"instances": None}
    assert server.destroyed == {instance_id}
    called = {(r.method, r.path) for r in server.requests}
    assert ("GET", "/api/v1/instances/") in called and ("DELETE", f"/api/v0/instances/{instance_id}/") in called


# -- SSH: the container's sshd --------------------------------------------------------------------------------


class _FakeVLLM(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "healthy"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def vllm() -> Iterator[int]:
    """A tiny HTTP server standing in for vLLM: the port every instance's container port 8000 maps to."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FakeVLLM)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_tunnel(port: int, key: Path, known_hosts: Path) -> tuple[subprocess.Popen[str], int]:
    local = free_port()
    command = [str(SSH), "-N", "-L", f"{local}:localhost:8000", "-p", str(port), "-i", str(key)]
    command += ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}"]
    command += ["-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ), local


def fetch_through(local: int, tunnel: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{local}/health", timeout=5)
        except httpx.TransportError:
            if tunnel.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def finish(tunnel: subprocess.Popen[str], timeout: float = 10) -> tuple[int, str]:
    """The tunnel's exit status and stderr; a tunnel still alive after ``timeout`` is a failure (and is killed)."""
    try:
        _, err = tunnel.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        tunnel.kill()
        tunnel.communicate()
        raise
    return tunnel.returncode, err


def running_ssh_port(api: httpx.Client, server: FakeVastServer, instance_id: int) -> int:
    server.advance(UP)
    instance = show(api, instance_id)
    assert instance is not None and instance["actual_status"] == "running"
    return int(instance["ports"]["22/tcp"][0]["HostPort"])


def test_an_ssh_tunnel_reaches_vllm_and_dies_with_the_instance(vllm: int, ssh_key: Path, tmp_path: Path) -> None:
    with (
        FakeVastServer(vllm_port=vllm, boot_seconds=BOOT) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as api,
    ):
        api.post("/api/v0/ssh/", json={"ssh_key": (ssh_key.parent / "id_ed25519.pub").read_text()})
        instance_id = create(api, env={"-p 8000:8000": "1"})
        port = running_ssh_port(api, server, instance_id)
        tunnel, local = open_tunnel(port, ssh_key, tmp_path / "known_hosts")
        try:
            response = fetch_through(local, tunnel)
            assert response.status_code == 200 and response.json() == {"status": "healthy"}
            host_key = server.ssh_host_key(instance_id)
            assert host_key is not None and host_key in (tmp_path / "known_hosts").read_text()

            assert server.drop_ssh_connections(instance_id) == 1  # a blip: this tunnel dies, the sshd stays
            assert finish(tunnel)[0] == 255
            tunnel, local = open_tunnel(port, ssh_key, tmp_path / "known_hosts")
            assert fetch_through(local, tunnel).status_code == 200

            delete(api, f"/api/v0/instances/{instance_id}/")
            status, err = finish(tunnel)
            assert status == 255 and "closed" in err
        finally:
            if tunnel.poll() is None:
                finish(tunnel, timeout=0.1)


def test_ssh_refuses_unknown_keys_and_attached_keys_count_at_once(
    vllm: int, ssh_key: Path, tmp_path: Path, api: httpx.Client, server: FakeVastServer
) -> None:
    instance_id = create(api)  # created before the key was registered: the account key is not in the container
    api.post("/api/v0/ssh/", json={"ssh_key": (ssh_key.parent / "id_ed25519.pub").read_text()})
    port = running_ssh_port(api, server, instance_id)
    tunnel, _ = open_tunnel(port, ssh_key, tmp_path / "known_hosts")
    status, err = finish(tunnel)
    assert status == 255 and "Permission denied" in err

    public = (ssh_key.parent / "id_ed25519.pub").read_text()
    api.post(f"/api/v0/instances/{instance_id}/ssh/", json={"ssh_key": public})
    server.vllm_port = vllm  # read when a tunnel opens
    tunnel, local = open_tunnel(port, ssh_key, tmp_path / "known_hosts")
    try:
        assert fetch_through(local, tunnel).status_code == 200
    finally:
        server.set_status(instance_id, "exited")  # the container died: so does the tunnel
        assert finish(tunnel)[0] == 255


def test_only_the_vllm_port_can_be_forwarded(ssh_key: Path, api: httpx.Client, server: FakeVastServer) -> None:
    api.post("/api/v0/ssh/", json={"ssh_key": (ssh_key.parent / "id_ed25519.pub").read_text()})
    port = running_ssh_port(api, server, create(api))

    async def probe() -> list[str]:
        outcomes = []
        async with asyncssh.connect(
            "127.0.0.1", port, username="root", client_keys=[str(ssh_key)], known_hosts=None, agent_path=None
        ) as conn:
            for host, target in (("localhost", 22), ("example.com", 8000), ("127.0.0.1", 8000)):
                try:
                    _, writer = await conn.open_connection(host, target)
                    writer.close()
                    outcomes.append("open")
                except asyncssh.ChannelOpenError as error:
                    outcomes.append(error.reason)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_session(asyncssh.SSHClientSession)  # no shell in this container
        return outcomes

    refused, elsewhere, nothing_listening = asyncio.run(probe())
    assert "only localhost:8000" in refused and "only localhost:8000" in elsewhere
    assert "Connection refused" in nothing_listening  # vllm_port=None: nothing serves :8000 yet

"""A fake Hugging Face Hub on 127.0.0.1: the endpoints ``HfApi.create_repo`` and ``HfApi.upload_folder`` call.

Why a real server: ``arcticcodex dataset push`` is tested with the real ``huggingface_hub`` client over
real sockets, so its payloads, headers, retries and error parsing all run.  The endpoints, as
huggingface_hub 2.x calls them for a dataset folder (``hf_api.py``, ``_commit_api.py``,
``_upload_pipeline.py``):

- ``POST /api/validate-yaml``: ``{"content", "repoType"}``, the README.md about to be committed; 400 with
  ``{"errors": [...]}`` when its front matter is not valid YAML of the Hub's shape.
- ``POST /api/repos/create``: ``{"name", "organization", "type", "visibility"?}``; 409 when the repo
  exists (``create_repo(exist_ok=True)`` accepts that), else ``{"url": ...}``.
- ``GET /api/datasets/ORG/NAME/revision/REV``: repo info (``create_repo``'s fallback after a 401/403,
  and the pipeline's answer when nothing changed).
- ``POST /api/datasets/ORG/NAME/preupload/REV``: per file ``{"path", "sample" (base64 of the first 512
  bytes), "size"}`` → ``{"files": [{"path", "uploadMode", "shouldIgnore", "oid"}]}``.  The mode follows
  the Hub's rule: "lfs" for a binary sample or a file over 10 MB, else "regular"; ``oid`` is the git blob
  id of the file already there, so an unchanged file is not committed again.
- ``POST /api/datasets/ORG/NAME/commit/REV``: NDJSON, a ``header`` line then one ``file`` line per regular
  file (base64 content).  Applied all at once or not at all, as a git commit is.  ``lfsFile`` lines are
  refused (422): the fake stores no LFS/Xet objects, and a dataset folder of small JSONL files never
  needs them (what the test datasets are).
- ``GET /datasets/ORG/NAME/resolve/REV/PATH``: a committed file's bytes (downloading it back).

Authentication is ``Authorization: Bearer TOKEN``; another token is answered 401 with the Hub's own
``X-Error-Message``.  ``fail(status, times=…, path=…)`` answers the next requests with an error, and
``down`` makes every request 503 (the Hub is down).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

HOST = "127.0.0.1"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores larger files through LFS/Xet
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_REVISION = r"(?P<revision>[^/?]+)"


def git_blob_id(content: bytes) -> str:
    """The git object id of a file: what the Hub reports as a regular file's ``oid``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40


@dataclass(frozen=True)
class HubRequest:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class _Fault:
    status: int
    times: int
    path: str  # a substring of the request path the fault applies to ("" for any)


class FakeHubServer:
    """The fake Hub; ``with FakeHubServer(token=...) as hub:`` then ``HfApi(endpoint=hub.url, token=...)``."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[HubRequest] = []
        self.validated_cards: list[str] = []
        self.down = False
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- steering ------------------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, path: str = "") -> None:
        """Answer the next ``times`` requests whose path contains ``path`` with ``status``."""
        with self._lock:
            self._faults.append(_Fault(status, times, path))

    def _take_fault(self, path: str) -> int | None:
        with self._lock:
            for fault in self._faults:
                if fault.path in path and fault.times > 0:
                    fault.times -= 1
                    return fault.status
        return None

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake Hub is not running")
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    def start(self) -> FakeHubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        httpd = self._httpd
        # a short poll: stop() returns at once instead of after serve_forever's default half second
        self._thread = threading.Thread(target=lambda: httpd.serve_forever(poll_interval=0.02), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeHubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the Hub -------------------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = unquote(urlsplit(raw_path).path)
        self.requests.append(HubRequest(method, path, headers.get("authorization"), body))
        if self.down:
            return _json(503, {"error": "Service Unavailable"})
        status = self._take_fault(path)
        if status is not None:
            return _json(status, {"error": f"injected {status}"})
        if headers.get("authorization") != f"Bearer {self.token}":
            return _json(
                401,
                {"error": "Invalid credentials in Authorization header"},
                {"X-Error-Message": "Invalid credentials in Authorization header"},
            )
        if method == "POST" and path == "/api/repos/create":
            return self._create(json.loads(body))
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        routes = (
            ("GET", rf"/api/datasets/{_REPO}/revision/{_REVISION}", self._info),
            ("POST", rf"/api/datasets/{_REPO}/preupload/{_REVISION}", self._preupload),
            ("POST", rf"/api/datasets/{_REPO}/commit/{_REVISION}", self._commit),
            ("GET", rf"/datasets/{_REPO}/resolve/{_REVISION}/(?P<file>.+)", self._resolve),
        )
        for verb, pattern, route in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                repo = self.repos.get(match["repo"])
                if repo is None:
                    return _json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                return route(repo, match.groupdict(), body)
        return _json(404, {"error": f"no route for {method} {path}"})

    def _create(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if payload.get("type") != "dataset":
            return _json(400, {"error": "this fake only hosts datasets"})
        repo_id = f"{payload['organization']}/{payload['name']}"
        url = f"{self.url}/datasets/{repo_id}"
        with self._lock:
            if repo_id in self.repos:
                return _json(409, {"error": "You already created this dataset repo", "url": url})
            self.repos[repo_id] = FakeRepo(repo_id, private=payload.get("visibility") == "private")
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The card's front matter must be a YAML mapping, with the Hub's list fields as lists of strings."""
        self.validated_cards.append(payload["content"])
        match = re.match(r"---\n(.*?)\n---\n", payload["content"], re.DOTALL)
        if match is None:
            return _json(200, {"warnings": [{"message": "empty or missing yaml metadata in repo card"}]})
        try:
            metadata = yaml.safe_load(match[1])
        except yaml.YAMLError as exc:
            return _json(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
        problems = [] if isinstance(metadata, dict) else ["the metadata must be a mapping"]
        for key in ("language", "task_categories", "size_categories", "tags"):
            value = metadata.get(key) if isinstance(metadata, dict) else None
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                problems.append(f'"{key}" must be a list of strings')
        if isinstance(metadata, dict) and not isinstance(metadata.get("license", ""), str):
            problems.append('"license" must be a string')
        if problems:
            return _json(400, {"errors": [{"message": problem} for problem in problems]})
        return _json(200, {"warnings": []})

    def _info(self, repo: FakeRepo, _match: dict[str, str], _body: bytes) -> tuple[int, dict[str, str], bytes]:
        siblings = [{"rfilename": name} for name in sorted(repo.files)]
        return _json(200, {"id": repo.repo_id, "sha": repo.sha, "private": repo.private, "siblings": siblings})

    def _preupload(self, repo: FakeRepo, _match: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        answers = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item["sample"])
            binary = b"\0" in sample
            mode = "lfs" if binary or item["size"] > LFS_THRESHOLD else "regular"
            existing = repo.files.get(item["path"])
            oid = git_blob_id(existing) if existing is not None else None
            answers.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json(200, {"files": answers, "commitOid": repo.sha})

    def _commit(self, repo: FakeRepo, _match: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return _json(400, {"error": "the commit payload must start with a header line"})
        staged: dict[str, bytes | None] = {}
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file" and value.get("encoding") == "base64":
                staged[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "deletedFile":
                staged[value["path"]] = None
            else:
                return _json(422, {"error": f"the fake Hub does not store {line['key']} entries"})
        with self._lock:  # all or nothing, like a git commit
            for name, content in staged.items():
                if content is None:
                    repo.files.pop(name, None)
                else:
                    repo.files[name] = content
            sha = hashlib.sha1(repo.sha.encode() + body).hexdigest()
            repo.commits.append(sha)
        commit_url = f"{self.url}/datasets/{repo.repo_id}/commit/{sha}"
        return _json(200, {"commitUrl": commit_url, "commitOid": sha, "pullRequestUrl": None, "success": True})

    def _resolve(self, repo: FakeRepo, match: dict[str, str], _body: bytes) -> tuple[int, dict[str, str], bytes]:
        content = repo.files.get(match["file"])
        if content is None:
            return _json(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        return 200, {"Content-Type": "application/octet-stream", "X-Repo-Commit": repo.sha}, content


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: FakeHubServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, reply_headers, payload = self.server_hub.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_HEAD = _serve  # noqa: N815 - http.server's names

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read ``requests``, not a log."""

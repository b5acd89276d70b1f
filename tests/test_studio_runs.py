"""Runs from the browser: start a distill run from the form, follow it live (server-sent events), stop it,
resume it, publish a reviewed run — the same library calls as ``arcticcodex distill``, against a fake
teacher on 127.0.0.1 whose latency makes a stop land mid-run.

And the attacks on the form: a post without the form token, a dataset folder that leads out of the
workspace (``..``, an absolute path, a symbolic link), a prompts file with a bad line, a teacher that
is not trusted; each is refused, with the message beside the form and what was typed kept, and no
run created.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from arcticcodex._sync import run_sync
from arcticcodex.dataset import verify_dataset
from arcticcodex.distill.journal import RunJournal
from arcticcodex.provenance import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.studio.runs import REFRESH_SECONDS, RunPages
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_crash import ARCTICCODEX, accepted, make_workspace, prompts_file, spend_and_cached_cost
from test_studio import SCRIPT, form_token, serve

PROMPTS = 24
VIEWERS = 50


@pytest.fixture
def teacher() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="fake-model", latency=0.1) as server:
        yield server


@pytest.fixture
def root(tmp_path: Path, acx: Acx, teacher: FakeOpenAIServer) -> Path:
    """A workspace with a trusted teacher "gpu" (the fake), a signing key, and two prompts at a time."""
    root = make_workspace(acx, tmp_path / "ws", teacher.base_url)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + "\n[distill]\nconcurrency = 2\n")
    return root


def run_pages(app: Any) -> RunPages:
    """The app's run pages (for their feeds and launcher), found through their routes."""
    pages = next(route.endpoint.__self__ for route in app.routes if getattr(route, "path", "") == "/runs")
    assert isinstance(pages, RunPages)
    return pages


def run_ids(root: Path) -> list[str]:
    with RunJournal(Workspace.open(root)) as journal:
        return [run.id for run in journal.runs()]


def start_form(**fields: Any) -> dict[str, Any]:
    return {
        "source": "prompts",
        "teachers": "gpu",
        "threshold": "0.8",
        "max_rounds": "2",
        "budget_usd": "",
        "out": "datasets/live",
        **fields,
    }


def post_start(
    client: httpx.Client, fields: dict[str, Any], prompts: bytes | None, name: str = "prompts.jsonl"
) -> httpx.Response:
    token = form_token(client.get("/runs/new").text)
    files = {"prompts": (name, prompts, "application/jsonl")} if prompts is not None else None
    return client.post("/runs/new", data={"csrf_token": token, **fields}, files=files)


def post_action(client: httpx.Client, run_id: str, action: str, **fields: str) -> httpx.Response:
    page = client.get(f"/runs/{run_id}")
    return client.post(
        f"/runs/{run_id}/{action}",
        data={"csrf_token": form_token(page.text), **fields},
        headers={"referer": f"{str(client.base_url).rstrip('/')}/runs/{run_id}"},
    )


def events(client: httpx.Client, run_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The run's server-sent events as (name, data), until the stream ends."""
    with client.stream("GET", f"/runs/{run_id}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield name, json.loads(line.removeprefix("data: "))


def wait_until_ended(client: httpx.Client, run_id: str) -> dict[str, Any]:
    """Follow the run's stream to its final event; return that event's data."""
    for name, data in events(client, run_id):
        if name == "end":
            return data
    raise AssertionError("the stream ended without a final event")


def dataset_files(root: Path, name: str) -> list[str]:
    folder = root / "datasets"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


# -- start → follow → stop → resume → complete ----------------------------------------------------------


def test_a_run_started_in_the_browser_is_followed_stopped_and_resumed_to_the_uninterrupted_dataset(
    root: Path, tmp_path: Path, acx: Acx
) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", PROMPTS)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        started = post_start(client, start_form(), prompts.read_bytes())
        assert started.status_code == 303, started.text[:500]
        run_id = started.headers["location"].removeprefix("/runs/")
        assert run_ids(root) == [run_id]

        seen: list[int] = []
        final: dict[str, Any] | None = None
        for name, data in events(client, run_id):
            if name == "progress":
                seen.append(data["done"])
                if data["done"] >= 2 and len(seen) >= 2 and not final:
                    assert post_action(client, run_id, "stop").status_code == 303
                    final = {}
            elif name == "end":
                final = data
                break
        assert final, "the stream ended without a final event"
        assert seen == sorted(seen) and seen[-1] > seen[0], seen  # the counts rose while we watched
        assert final["status"] == "stopped" and 0 < final["pending"] < PROMPTS
        assert f"arcticcodex distill --resume {run_id}" in final["note"] and "Resume" in final["note"]
        assert dataset_files(root, "live") == []  # nothing half-written under the dataset folder

        page = client.get(f"/runs/{run_id}").text
        assert "stopped" in page and f"/runs/{run_id}/resume" in page and f"/runs/{run_id}/stop" not in page

        assert post_action(client, run_id, "resume", budget_usd="5").status_code == 303
        resumed = wait_until_ended(client, run_id)
        assert resumed["status"] == "complete", resumed
        assert resumed["pending"] == 0 and resumed["done"] == PROMPTS

    with RunJournal(Workspace.open(root)) as journal:
        assert journal.run(run_id).settings["budget_usd"] == 5.0
    spent, cached = spend_and_cached_cost(root, run_id)  # the calls cut off by the stop were not paid twice
    assert spent == pytest.approx(cached, rel=1e-9) and spent > 0
    out = root / "datasets" / "live"
    report = verify_dataset(out, trusted=KeyStore(Workspace.open(root).keys_dir).verifier("dataset"))
    assert report.ok and report.trusted

    # the same prompts and settings from the command line, in one go: the same accepted pairs
    acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "whole", "--teachers", "gpu",
        "--threshold", "0.8", "--max-rounds", "2")  # fmt: skip
    assert accepted(out) == accepted(tmp_path / "whole")


def test_a_reviewed_run_publishes_the_approved_pairs_once_every_pair_is_decided(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", 4)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        started = post_start(client, start_form(review="on", out="datasets/reviewed"), prompts.read_bytes())
        run_id = started.headers["location"].removeprefix("/runs/")
        waiting = wait_until_ended(client, run_id)
        assert waiting["status"] == "stopped" and waiting["awaiting_review"] == waiting["accepted"] > 1
        assert dataset_files(root, "reviewed") == []
        page = client.get(f"/runs/{run_id}").text
        assert "/publish" not in page and "awaiting a decision" in page

        refused = post_action(client, run_id, "publish")  # pairs still await review: refused beside the form
        assert refused.status_code == 303 and "form_error=" in refused.headers["location"]
        shown = client.get(refused.headers["location"]).text
        assert f"pair(s) of run {run_id} still await review" in shown

        with RunJournal(Workspace.open(root)) as journal:
            positions = [position for _, position, _ in journal.awaiting_review(run_id)]
            journal.decide_pair(run_id, positions[0], "rejected", reason="too vague")
            for position in positions[1:]:
                journal.decide_pair(run_id, position, "approved")
        assert "/publish" in client.get(f"/runs/{run_id}").text
        assert post_action(client, run_id, "publish").status_code == 303
        published = wait_until_ended(client, run_id)
        assert published["status"] == "complete", published

    out = root / "datasets" / "reviewed"
    report = verify_dataset(out, trusted=KeyStore(Workspace.open(root).keys_dir).verifier("dataset"))
    assert report.ok and report.trusted
    train = (out / "train.jsonl").read_text().splitlines()
    assert len(train) == len(positions) - 1


def test_the_offline_local_judge_decides_when_no_teacher_is_ticked(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", 3)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        fields = start_form(out="datasets/offline", threshold="0.3")
        del fields["teachers"]
        started = post_start(client, fields, prompts.read_bytes())
        assert started.status_code == 303, started.text[:500]
        run_id = started.headers["location"].removeprefix("/runs/")
        final = wait_until_ended(client, run_id)
    assert final["status"] in ("complete", "stopped"), final
    with RunJournal(Workspace.open(root)) as journal:
        assert journal.run(run_id).settings["teachers"] == ["local"]


def test_the_studio_stops_a_run_started_by_the_command_line_in_another_process(
    root: Path, tmp_path: Path, teacher: FakeOpenAIServer
) -> None:
    teacher.latency = 0.2
    prompts = prompts_file(tmp_path / "prompts.jsonl", PROMPTS)
    command = [ARCTICCODEX, "-w", str(root), "distill", "--prompts", str(prompts), "--out", str(root / "cli"),
               "--teachers", "gpu"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        app = create_app(Workspace.open(root))
        with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            run_id = ""
            while not run_id:  # the command creates its run; the Studio reads it from the journal
                run_id = next(iter(run_ids(root)), "")
                threading.Event().wait(0.05)
            for name, data in events(client, run_id):
                if name == "progress" and data["done"] >= 1:
                    assert post_action(client, run_id, "stop").status_code == 303
                    break
            final = wait_until_ended(client, run_id)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert final["status"] == "stopped" and final["pending"] > 0, final
    assert process.returncode == 4, stderr
    assert f"arcticcodex distill --resume {run_id}" in stdout
    assert not (root / "cli").exists() or not any((root / "cli").iterdir())


def test_fifty_viewers_follow_a_writing_run_on_one_shared_poll(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", PROMPTS)
    app = create_app(Workspace.open(root))
    feeds = run_pages(app).feeds
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        run_id = post_start(client, start_form(), prompts.read_bytes()).headers["location"].removeprefix("/runs/")

        async def follow(viewer: httpx.AsyncClient) -> list[str]:
            names = []
            async with viewer.stream("GET", f"/runs/{run_id}/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        names.append(line.removeprefix("event: "))
            return names

        async def fifty() -> list[list[str]]:
            limits = httpx.Limits(max_connections=VIEWERS + 10)
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as viewer:
                following = [asyncio.create_task(follow(viewer)) for _ in range(VIEWERS)]
                for _ in range(1000):  # until all fifty are subscribed to the one feed
                    if feeds.viewers(run_id) == VIEWERS:
                        break
                    await asyncio.sleep(0.02)
                assert feeds.viewers(run_id) == VIEWERS
                polls_then = feeds.polls
                await asyncio.to_thread(post_action, client, run_id, "stop")
                seen = await asyncio.gather(*following)
                assert feeds.polls - polls_then < VIEWERS  # one poll per interval, not one per viewer
                return seen

        seen = run_sync(fifty())
    assert all(names[-1] == "end" and names.count("end") == 1 for names in seen)
    assert feeds.viewers(run_id) == 0  # every stream unsubscribed when it ended


def test_the_studio_shutting_down_leaves_its_runs_stopped_and_resumable(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", PROMPTS)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        run_id = post_start(client, start_form(), prompts.read_bytes()).headers["location"].removeprefix("/runs/")
        for name, data in events(client, run_id):
            if name == "progress" and data["done"] >= 1:
                break
        page = client.get(f"/runs/{run_id}").text  # without scripts, the page of a running run refreshes itself
        assert f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>' in page
        assert '<script src="/static/runs.js" defer></script>' in page
    with RunJournal(Workspace.open(root)) as journal:
        run = journal.run(run_id)
    assert run.status == "stopped" and run.note and f"--resume {run_id}" in run.note
    assert not run_pages(app).launcher.active()


def test_a_run_from_the_vault_curriculum_or_the_conversations(root: Path, tmp_path: Path, acx: Acx) -> None:
    sections = [f"## Mill {n}\n\nThe mill of village {n} was built in {1700 + n} by {n} masons.\n" for n in range(8)]
    (tmp_path / "mills.md").write_text("# Mills\n\n" + "\n".join(sections))
    acx("-w", root, "vault", "import", tmp_path / "mills.md")
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        refused = post_start(client, start_form(source="from_conversations", out="datasets/talk"), None)
        refused_beside_the_form(refused, "the vault holds no conversation")
        started = post_start(client, start_form(source="from_vault", limit="2", out="datasets/curriculum"), None)
        assert started.status_code == 303, started.text[:500]
        run_id = started.headers["location"].removeprefix("/runs/")
        final = wait_until_ended(client, run_id)
    assert final["tasks"] == 2 and final["status"] == "complete", final
    with RunJournal(Workspace.open(root)) as journal:
        run = journal.run(run_id)
    assert run.settings["source"] == "from_vault" and run.out == str((root / "datasets" / "curriculum").resolve())
    assert run_ids(root) == [run_id]


def test_a_studio_runs_at_most_a_few_runs_at_once(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", PROMPTS)
    app = create_app(Workspace.open(root))
    run_pages(app).launcher.max_active = 1
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        first = post_start(client, start_form(out="datasets/first"), prompts.read_bytes())
        run_id = first.headers["location"].removeprefix("/runs/")
        second = post_start(client, start_form(out="datasets/second"), prompts.read_bytes())
        refused_beside_the_form(second, "this Studio is running 1 run(s) already, its most at once (1)")
        assert post_action(client, run_id, "stop").status_code == 303
        assert wait_until_ended(client, run_id)["status"] == "stopped"
    assert run_ids(root) == [run_id]


# -- the form's checks and attacks ------------------------------------------------------------------------


def refused_beside_the_form(response: httpx.Response, message: str) -> str:
    assert response.status_code == 400, response.text[:500]
    error = re.search(r'<p class="form-error" role="alert" id="start-error">(.*?)</p>', response.text, re.S)
    assert error, response.text[:800]
    assert message in html.unescape(error.group(1)), error.group(1)
    return response.text


def test_a_post_without_the_form_token_is_refused_and_creates_no_run(root: Path, tmp_path: Path) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", 2)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.get("/runs/new")  # a session, but no token sent
        files = {"prompts": ("prompts.jsonl", prompts.read_bytes(), "application/jsonl")}
        response = client.post("/runs/new", data=start_form(), files=files)
        assert response.status_code == 403 and "form token" in response.text
        started = post_start(client, start_form(), prompts.read_bytes())  # with it, the same post starts a run
        run_id = started.headers["location"].removeprefix("/runs/")
        response = client.post(f"/runs/{run_id}/stop", data={})
        assert response.status_code == 403
        wait_until_ended(client, run_id)
    assert run_ids(root) == [run_id]


@pytest.mark.parametrize(
    "out",
    ["../outside", "/tmp/outside", "datasets/../../outside", "link/v1", ".arcticcodex/keys", ".hidden", "a//b", ""],
)
def test_a_dataset_folder_outside_the_workspace_is_refused(root: Path, tmp_path: Path, out: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    prompts = prompts_file(tmp_path / "prompts.jsonl", 2)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = post_start(client, start_form(out=out, threshold="0.75"), prompts.read_bytes())
    page = refused_beside_the_form(response, "dataset folder")
    assert 'name="threshold" step="any" class="narrow" value="0.75"' in page  # what was typed is kept
    assert run_ids(root) == [] and list(outside.iterdir()) == []
    assert not (root / ".arcticcodex" / "prompt-uploads").exists() or not any(
        (root / ".arcticcodex" / "prompt-uploads").iterdir()
    )


def test_a_prompts_file_with_a_bad_line_is_refused_naming_the_file_and_line(root: Path) -> None:
    lines = [
        json.dumps({"instruction": f"What is {SCRIPT}?", "evidence": "It is a tag."}),
        json.dumps({"instruction": "What do otters eat?", "evidence": "Otters eat fish."}),
        "{this is not JSON",
    ]
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = post_start(client, start_form(out="datasets/v1"), "\n".join(lines).encode(), name="mine.jsonl")
    page = refused_beside_the_form(response, "mine.jsonl:3")
    assert "prompt-uploads" not in page and str(root) not in page
    assert 'value="datasets/v1"' in page  # the folder typed is kept
    assert run_ids(root) == []
    assert not any((root / ".arcticcodex" / "prompt-uploads").iterdir())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"threshold": "1.5"}, "threshold must be between 0 and 1, not 1.5"),
        ({"threshold": "high"}, "threshold must be a number, not 'high'"),
        ({"teachers": "evil"}, "'evil' is not a trusted teacher of this workspace (teachers: gpu"),
        ({"max_rounds": "0"}, "max rounds must be 1 or more"),
        ({"budget_usd": "-1"}, "the budget must not be negative"),
        ({"source": "elsewhere"}, "choose a source"),
    ],
)
def test_a_bad_setting_is_shown_beside_the_form_with_the_values_kept(
    root: Path, tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    prompts = prompts_file(tmp_path / "prompts.jsonl", 2)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = post_start(client, start_form(out="datasets/kept", **fields), prompts.read_bytes())
    page = refused_beside_the_form(response, message)
    assert 'value="datasets/kept"' in page
    assert run_ids(root) == []


def test_a_configured_teacher_the_user_has_not_trusted_is_neither_offered_nor_accepted(
    root: Path, tmp_path: Path, teacher: FakeOpenAIServer
) -> None:
    config = root / "arcticcodex.toml"  # a hand-written entry nobody ran `teachers trust` for
    config.write_text(
        config.read_text()
        + f'\n[[teachers]]\nname = "stranger"\npreset = "vllm"\nbase_url = "{teacher.base_url}"\nmodel = "x"\n'
    )
    prompts = prompts_file(tmp_path / "prompts.jsonl", 2)
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert 'value="stranger"' not in client.get("/runs/new").text
        response = post_start(client, start_form(teachers="stranger"), prompts.read_bytes())
    refused_beside_the_form(response, "'stranger' is not a trusted teacher of this workspace (teachers: gpu,")
    assert run_ids(root) == [] and teacher.requests == []


def test_a_prompts_upload_is_required_for_the_prompts_source(root: Path) -> None:
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = post_start(client, start_form(), None)
    refused_beside_the_form(response, "choose the prompts file to upload")
    assert run_ids(root) == []


def test_the_runs_pages_show_failures_with_their_reasons_and_escape_hostile_text(root: Path, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)>.jsonl"  # a file name is the uploader's text, shown on the run's page
    lines = [
        json.dumps({"instruction": "When was the harbour of village 1 built?", "evidence": "It was built in 1707."}),
        json.dumps({"instruction": f"Why {SCRIPT}?"}),  # no evidence, and the vault holds none: it fails
    ]
    app = create_app(Workspace.open(root))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        form = client.get("/runs/new").text
        assert 'name="teachers" value="gpu"' in form and 'enctype="multipart/form-data"' in form
        assert client.get("/runs/run-nope").status_code == 404
        assert client.get("/runs/run-nope/events").status_code == 404
        started = post_start(client, start_form(), "\n".join(lines).encode(), name=hostile)
        run_id = started.headers["location"].removeprefix("/runs/")
        final = wait_until_ended(client, run_id)
        listing = client.get("/runs").text
        page = client.get(f"/runs/{run_id}").text
    assert final["failed"] == 1 and final["failures"][0]["position"] == 1
    assert "the vault holds no evidence" in final["failures"][0]["reason"]
    assert "task 1: the vault holds no evidence" in page
    assert f'<a href="/runs/{run_id}">' in listing
    assert "&lt;img src=x onerror=alert(1)&gt;.jsonl" in page
    for text in (listing, page):
        assert "<img" not in text and SCRIPT not in text

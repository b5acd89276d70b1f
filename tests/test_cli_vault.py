"""``arcticcodex vault`` end to end on a real workspace (hashing embeddings, configured explicitly)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import Result

from arcticcodex.workspace import Workspace
from conftest import Acx, hashing_docs_workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root, docs = hashing_docs_workspace(tmp_path)
    (docs / "errors.md").write_text("# Errors\n\nE-4471 means the ingest queue is full.\n\nE-5002: no signing key.\n")
    (docs / "travel.txt").write_text("Trains are preferred over flights for trips under 500 km.")
    (docs / "broken.txt").write_bytes(b"\xff\xfe not utf-8")
    return root


def test_import_reports_and_skips_bad_files(root: Path, acx: Acx) -> None:
    result = acx("-w", root, "vault", "import", root / "docs", "--json", code=1)  # a failed file: exit status 1
    report = json.loads(result.stdout)
    assert sorted(report["added"]) == ["docs/errors.md", "docs/travel.txt"]
    assert report["failed"][0]["source"] == "docs/broken.txt" and "UTF-8" in report["failed"][0]["reason"]
    again = acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    assert "0 added, 0 updated, 2 unchanged, 1 failed" in again.stdout
    assert "failed docs/broken.txt: " in again.stderr and "could not be imported" in again.stderr


def test_search_json_contract(root: Path, acx: Acx) -> None:
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    results = json.loads(acx("-w", root, "vault", "search", "what does E-4471 mean", "--json", "-k", "3").stdout)
    assert isinstance(results, list) and results
    first = results[0]
    for key in ("doc_id", "source", "chunk_id", "score", "text"):
        assert key in first
    assert first["source"] == "docs/errors.md" and "E-4471" in first["text"]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    text = acx("-w", root, "vault", "search", "trains or flights", "--source", "docs/*.txt").stdout
    assert "docs/travel.txt" in text and "errors.md" not in text
    assert "no results" in acx("-w", root, "vault", "search", "zeppelin", "--mode", "bm25").stdout


def test_search_shows_the_section_a_chunk_sits_in(root: Path, acx: Acx) -> None:
    guide = root / "docs" / "guide.rst"
    guide.write_text(
        "Otter guide\n===========\n\nRead this first.\n\n"
        "Install [red]now\x1b[2J\n------------------------\n\nUse the package manager to install the otter tool.\n"
    )
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    [hit] = json.loads(acx("-w", root, "vault", "search", "package manager otter", "--json", "-k", "1").stdout)
    assert hit["source"] == "docs/guide.rst" and hit["heading_path"] == "Otter guide › Install [red]now\x1b[2J"
    text = acx("-w", root, "vault", "search", "package manager otter", "-k", "1").stdout
    # the section after the source, as written: markup is text and the escape sequence is shown, not obeyed
    assert text.startswith("1. docs/guide.rst › Otter guide › Install [red]now\\x1b[2J doc-")
    assert "\x1b" not in text
    [plain] = json.loads(acx("-w", root, "vault", "search", "trains flights", "--json", "-k", "1").stdout)
    assert plain["source"] == "docs/travel.txt" and plain["heading_path"] is None  # no section: none shown


def test_show_docs_stats_facts_forget_verify(root: Path, acx: Acx) -> None:
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    documents = json.loads(acx("-w", root, "vault", "docs", "--json").stdout)
    errors = next(doc for doc in documents if doc["source"] == "docs/errors.md")
    shown = json.loads(acx("-w", root, "vault", "show", errors["id"], "--json").stdout)
    assert shown["chunks"][0]["id"] == f"{errors['id']}:0"
    chunk = json.loads(acx("-w", root, "vault", "show", shown["chunks"][0]["id"], "--json").stdout)
    assert chunk["text"].startswith("# Errors")
    missing = acx("-w", root, "vault", "show", "doc-nope", code=1)
    assert "no document 'doc-nope'; list them with `arcticcodex vault docs`" in missing.stderr
    assert json.loads(acx("-w", root, "vault", "stats", "--json").stdout)["documents"] == 2
    assert json.loads(acx("-w", root, "vault", "facts", "--json").stdout) == []
    assert "ok" in acx("-w", root, "vault", "verify").stdout
    assert "forgot document" in acx("-w", root, "vault", "forget", errors["id"], "--reason", "obsolete").stdout
    assert json.loads(acx("-w", root, "vault", "stats", "--json").stdout)["documents"] == 1
    again = acx("-w", root, "vault", "forget", errors["id"], "--reason", "again", code=1)
    assert f"'{errors['id']}' was already forgotten" in again.stderr


def test_verify_fails_on_tampering(root: Path, acx: Acx) -> None:
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    workspace = Workspace.open(root)
    conn = workspace.connect()
    conn.execute("UPDATE chunks SET text = text || ' (edited)' WHERE sequence = 0")
    conn.close()
    result = acx("-w", root, "vault", "verify", "--json", code=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problems"][0]["kind"] == "chunk"
    text = acx("-w", root, "vault", "verify", code=1).output
    assert f"{report['problems'][0]['record_id']}" in text and "text does not match its recorded SHA-256" in text


def test_eval_prints_metrics_per_mode(root: Path, tmp_path: Path, acx: Acx) -> None:
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"id": "q1", "query": "E-5002", "relevant": {"errors": 2}})
        + "\n"
        + json.dumps({"id": "q2", "query": "trains flights", "relevant": ["docs/travel.txt"]})
        + "\n"
    )
    scores = json.loads(acx("-w", root, "vault", "eval", queries, "--json").stdout)
    assert [s["mode"] for s in scores] == ["hybrid", "bm25", "vector"]
    assert scores[1]["ndcg@10"] == 1.0 and scores[1]["recall@10"] == 1.0
    queries.write_text('{"query": "no labels"}\n')
    assert "relevance labels" in acx("-w", root, "vault", "eval", queries, code=1).output


# --- terminal output: a document cannot act on the terminal -----------------------------------------------

TITLE_ATTACK = "\x1b]0;pwned\x07"  # retitles the terminal window
HOSTILE = (
    f"# Report {TITLE_ATTACK}quarterly\n\n"
    "Kestrel E-9001 failed. \x1b[2J\x1b[H The screen was cleared, \x1b[8mhidden text\x1b[0m, "
    "[red]not markup[/red] [link=https://evil.example]click[/link], \rwritten over, "
    "\u202eeulav\u202c reversed, \x9b31m C1 CSI.\r\n"
)
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def run_raw(acx: Acx, root: Path, *args: str | Path, code: int = 0) -> Result:
    """Run with color=True: click would otherwise strip some ANSI codes itself and hide a leak."""
    return acx("-w", root, *args, code=code, color=True, env={"COLUMNS": "300"})


def assert_escaped(output: str) -> None:
    for control in RAW_CONTROLS:
        assert control not in output, (control, output)


def test_terminal_output_escapes_control_characters_from_documents(root: Path, acx: Acx) -> None:
    (root / "docs" / "hostile.md").write_text(HOSTILE)
    (root / "docs" / "name\x1b[2J.md").write_text("A file whose name clears the screen.")
    os.mkfifo(root / "docs" / "pipe\x1b]0;x\x07.md")
    imported = run_raw(acx, root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    assert_escaped(imported.stdout + imported.stderr)
    assert "pipe\\x1b]0;x\\x07.md: is a FIFO" in imported.stderr
    documents = json.loads(acx("-w", root, "vault", "docs", "--json").stdout)
    hostile = next(doc for doc in documents if doc["source"] == "docs/hostile.md")

    shown = run_raw(acx, root, "vault", "show", hostile["id"]).stdout
    assert_escaped(shown)
    assert f"title: Report {TITLE_ATTACK.encode('unicode_escape').decode()}quarterly" in shown
    chunk = run_raw(acx, root, "vault", "show", f"{hostile['id']}:0").stdout
    assert_escaped(chunk)
    assert "\\x1b[2J\\x1b[H The screen was cleared" in chunk and "\\x1b[8mhidden text\\x1b[0m" in chunk
    assert "\\u202eeulav" in chunk and "\\x9b31m" in chunk and "\\x0dwritten over" in chunk

    listing = run_raw(acx, root, "vault", "docs").stdout
    assert_escaped(listing)
    assert "name\\x1b[2J.md" in listing and "\\x1b]0;pwned\\x07" in listing

    found = run_raw(acx, root, "vault", "search", "Kestrel E-9001", "--mode", "bm25").stdout
    assert_escaped(found)
    assert "[red]not markup[/red]" in found and "[link=https://evil.example]click[/link]" in found  # not rich markup
    assert "\\x1b[2J" in found

    answer = run_raw(acx, root, "ask", "What happened to Kestrel E-9001?").stdout
    assert_escaped(answer)
    assert "\\x1b[2J" in answer and "docs/hostile.md" in answer


def test_json_output_stays_json_holding_the_exact_text(root: Path, acx: Acx) -> None:
    (root / "docs" / "hostile.md").write_text(HOSTILE)
    acx("-w", root, "vault", "import", root / "docs", code=1)  # docs/broken.txt fails
    documents = json.loads(acx("-w", root, "vault", "docs", "--json").stdout)
    hostile = next(doc for doc in documents if doc["source"] == "docs/hostile.md")
    raw = run_raw(acx, root, "vault", "show", f"{hostile['id']}:0", "--json").stdout
    assert_escaped(raw)  # JSON escapes C0 itself; DEL, C1 and bidi overrides are written as \uXXXX too
    assert json.loads(raw)["text"] == HOSTILE.strip()
    results = json.loads(run_raw(acx, root, "vault", "search", "Kestrel", "--json").stdout)
    assert results[0]["text"] == HOSTILE.strip()
    answer = json.loads(run_raw(acx, root, "ask", "What happened to Kestrel E-9001?", "--json").stdout)
    assert "\x1b[2J" in answer["text"]  # the stored text, exactly

"""`vault import FOLDER` never reaches outside what was named: each attack performed for real.

Real symlinks (to a secret file and a folder outside, into the workspace's data folder, in a cycle),
a real FIFO (the import runs in a thread, so a hang fails the test instead of freezing it), a file
swapped for a FIFO or a symlink between the walk and the read, a workspace imported from its own
folder and from its parent, and a real signed dataset inside an imported folder.  Each test checks
that nothing was imported (the text is in no document, no chunk, no search result) and that the
report — and the CLI's output — names the entry and why it was skipped.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from arcticcodex.dataset import DatasetWriter
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.vault import HashingBackend, ImportReport, Searcher, Vault, import_paths
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_dataset_record import make_pair

SECRET = "SECRET-TOKEN-7f3a9c hunter2 do not import"
T = TypeVar("T")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    return Workspace.open(workspace.root)


@pytest.fixture
def vault(workspace: Workspace) -> Iterator[Vault]:
    with Vault(workspace, embedder=HashingBackend(64)) as opened:
        yield opened


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_not_in_vault(vault: Vault, text: str) -> None:
    """Nothing of ``text`` is anywhere the vault can show it: documents, chunks, search."""
    needle = text.split()[0]
    for document in vault.list_documents():
        assert needle not in vault.document_text(document.id)
        assert all(needle not in chunk.text for chunk in vault.chunks_of(document.id))
    for mode in ("bm25", "hybrid"):
        assert all(needle not in hit.text for hit in Searcher(vault).search(needle, k=20, mode=mode))


def skipped(report: ImportReport) -> dict[str, str]:
    return dict(report.skipped)


def in_thread(target: Callable[[], T], seconds: float = 60.0) -> T:
    """Run ``target`` in a thread: if it hangs (a FIFO opened), the test fails instead of freezing."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["value"] = target()
        except BaseException as error:  # pragma: no cover - re-raised below
            outcome["error"] = error

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the import hung: it opened a FIFO and waited for a writer"
    if "error" in outcome:  # pragma: no cover - a failure to show
        raise outcome["error"]
    return cast(T, outcome["value"])


def import_in_thread(workspace: Workspace, paths: list[Path], **options: Any) -> ImportReport:
    """``import_paths`` with a vault of its own (SQLite connections belong to their thread), in a thread."""

    def run() -> ImportReport:
        with Vault(workspace, embedder=HashingBackend(64)) as vault:
            return import_paths(vault, paths, **options)

    return in_thread(run)


# --- symlinks ------------------------------------------------------------------------------------------


def test_a_symlink_to_a_secret_file_outside_the_folder_is_not_followed(vault: Vault, tmp_path: Path, acx: Acx) -> None:
    secret = write(tmp_path / "home" / ".ssh" / "notes.md", f"# Keys\n\n{SECRET}\n")
    docs = vault.workspace.root / "docs"
    write(docs / "guide.md", "# Guide\n\nOtters eat fish.\n")
    (docs / "leak.md").symlink_to(secret)
    (docs / "leaked-folder").symlink_to(secret.parent, target_is_directory=True)

    result = acx("-w", vault.workspace.root, "vault", "import", docs, "--json")
    report = json.loads(result.stdout)
    assert report["added"] == ["docs/guide.md"]
    reasons = {entry["path"]: entry["reason"] for entry in report["skipped"]}
    assert str(secret) in reasons[str(docs / "leak.md")] and "outside" in reasons[str(docs / "leak.md")]
    assert "outside" in reasons[str(docs / "leaked-folder")]
    assert "import " in reasons[str(docs / "leak.md")]  # the fix: name the file itself if it is meant
    assert_not_in_vault(vault, SECRET)
    assert [d.source for d in vault.list_documents()] == ["docs/guide.md"]

    text = acx("-w", vault.workspace.root, "vault", "import", docs).stderr
    assert f"skipped {docs / 'leak.md'}: is a symbolic link to {secret}, outside" in text


def test_a_symlink_named_on_the_command_line_is_followed(vault: Vault, tmp_path: Path) -> None:
    """Naming a link is the user's choice (documented in vault/walk.py): it is imported from its target."""
    target = write(tmp_path / "elsewhere" / "chosen.md", "# Chosen\n\nImported on purpose.\n")
    link = vault.workspace.root / "chosen-link.md"
    link.symlink_to(target)
    report = import_paths(vault, [link])
    assert report.added == [target.as_posix()] and not report.skipped


def test_symlinks_inside_the_folder_are_followed_once_and_cycles_cannot_loop(vault: Vault) -> None:
    docs = vault.workspace.root / "docs"
    write(docs / "real" / "otters.md", "# Otters\n\nOtters eat fish.\n")
    (docs / "alias.md").symlink_to(docs / "real" / "otters.md")
    (docs / "real-again").symlink_to(docs / "real", target_is_directory=True)
    (docs / "real" / "loop").symlink_to(docs, target_is_directory=True)  # a cycle back to the top
    (docs / "dangling.md").symlink_to(docs / "missing.md")

    report = import_in_thread(vault.workspace, [docs])
    assert report.added == ["docs/real/otters.md"]  # once, under its real name
    reasons = skipped(report)
    assert "links to folders are not walked" in reasons[str(docs / "real-again")]
    assert "links to folders are not walked" in reasons[str(docs / "real" / "loop")]
    assert "does not exist" in reasons[str(docs / "dangling.md")]


def test_a_symlink_into_the_workspace_data_folder_is_not_followed(vault: Vault) -> None:
    inside = write(vault.workspace.data_dir / "runs" / "log.md", f"# Run log\n\n{SECRET}\n")
    (vault.workspace.root / "notes.md").symlink_to(inside)
    report = import_paths(vault, [vault.workspace.root], include_hidden=True)
    assert "data folder" in skipped(report)[str(vault.workspace.root / ".arcticcodex")]
    assert "this workspace's data folder" in skipped(report)[str(vault.workspace.root / "notes.md")]
    assert_not_in_vault(vault, SECRET)


def test_a_file_swapped_for_a_symlink_after_the_walk_is_refused(vault: Vault, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.md", SECRET)
    docs = vault.workspace.root / "docs"
    write(docs / "a.md", "First file.")
    second = write(docs / "b.md", "Second file.")

    def swap(report: ImportReport, path: Path) -> None:
        if path.name == "a.md":  # between the walk and the read of b.md
            second.unlink()
            second.symlink_to(secret)

    report = import_paths(vault, [docs], on_file=swap)
    assert report.added == ["docs/a.md"]
    assert "symbolic link" in dict(report.failed)["docs/b.md"]
    assert_not_in_vault(vault, SECRET)


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_folder_swapped_for_a_symlink_out_after_the_walk_is_refused(vault: Vault, tmp_path: Path, size: str) -> None:
    """Only the last component is opened with O_NOFOLLOW: the walk's (device, inode) catches a swapped parent."""
    padding = "\n\nMore words." * (0 if size == "small" else 400_000)  # 4 MiB and more are streamed
    private = tmp_path / "private"
    write(private / "notes.md", SECRET + padding)
    docs = vault.workspace.root / "docs"
    write(docs / "a.md", "First file.")
    write(docs / "z" / "notes.md", "Harmless notes." + padding)

    def swap(report: ImportReport, path: Path) -> None:
        if path.name == "a.md":  # between the walk and the read of z/notes.md
            (docs / "z" / "notes.md").unlink()
            (docs / "z").rmdir()
            (docs / "z").symlink_to(private)

    report = import_paths(vault, [docs], on_file=swap)
    assert report.added == ["docs/a.md"]
    assert "is no longer the file that was found" in dict(report.failed)["docs/z/notes.md"]
    assert_not_in_vault(vault, SECRET)


# --- special files ---------------------------------------------------------------------------------------


def test_a_fifo_in_the_folder_is_skipped_and_never_opened(vault: Vault, acx: Acx) -> None:
    docs = vault.workspace.root / "docs"
    write(docs / "notes.md", "Otters eat fish.")
    os.mkfifo(docs / "feed.md")
    try:
        report = import_in_thread(vault.workspace, [docs])
        assert report.added == ["docs/notes.md"]
        assert "FIFO" in skipped(report)[str(docs / "feed.md")]
        named = import_in_thread(vault.workspace, [docs / "feed.md"])
        assert "FIFO" in skipped(named)[str(docs / "feed.md")] and not named.failed
        result = in_thread(lambda: acx("-w", vault.workspace.root, "vault", "import", docs))
        assert f"skipped {docs / 'feed.md'}: is a FIFO (named pipe), not a regular file" in result.stderr
    finally:
        _release(docs / "feed.md")


def test_a_file_swapped_for_a_fifo_after_the_walk_is_not_waited_on(vault: Vault) -> None:
    docs = vault.workspace.root / "docs"
    write(docs / "a.md", "First file.")
    second = write(docs / "b.md", "Second file.")

    def swap(report: ImportReport, path: Path) -> None:
        if path.name == "a.md":
            second.unlink()
            os.mkfifo(second)

    try:
        report = import_in_thread(vault.workspace, [docs], on_file=swap)
        assert report.added == ["docs/a.md"]
        assert "FIFO" in dict(report.failed)["docs/b.md"]
    finally:
        _release(second)


def _release(fifo: Path) -> None:
    """If a broken import is blocked opening the FIFO for reading, let it go (O_RDWR never blocks)."""
    if fifo.exists():
        os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))


# --- hidden files, workspaces and datasets ------------------------------------------------------------------


def test_hidden_files_and_folders_are_skipped_and_reported_unless_asked_for(vault: Vault) -> None:
    docs = vault.workspace.root / "docs"
    write(docs / "visible.md", "Visible.")
    write(docs / ".draft.md", f"Hidden draft. {SECRET}")
    write(docs / ".private" / "diary.md", "Hidden folder.")
    write(docs / ".DS_Store.bin", "not a document either way")
    report = import_paths(vault, [docs])
    assert report.added == ["docs/visible.md"]
    assert set(skipped(report)) == {str(docs / ".draft.md"), str(docs / ".private")}
    assert all("--include-hidden" in reason for reason in skipped(report).values())
    assert_not_in_vault(vault, SECRET)
    again = import_paths(vault, [docs], include_hidden=True)
    assert sorted(again.added) == ["docs/.draft.md", "docs/.private/diary.md"]


def test_a_workspace_imported_from_its_parent_keeps_its_data_folder_out(tmp_path: Path, acx: Acx) -> None:
    parent = tmp_path / "projects"
    workspace, _ = Workspace.init(parent / "ws", data_dir="state")  # not hidden: only the data-folder rule stops it
    with workspace.config.path.open("a") as handle:
        handle.write('\n[vault]\nembedding_model = "hashing-64"\n')
    workspace = Workspace.open(workspace.root)
    write(workspace.keys_dir / "leak.md", f"# Key\n\n{SECRET}\n")
    write(workspace.runs_dir / "run.txt", SECRET)
    write(workspace.root / "notes.md", "# Notes\n\nOtters eat fish.\n")
    other, _ = Workspace.init(parent / "other")  # another workspace's data folder, found by its database
    write(other.data_dir / "runs" / "log.md", SECRET)
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        import_paths(vault, [workspace.root / "notes.md"])  # the database now holds real rows
        report = import_paths(vault, [parent], include_hidden=True)
        reasons = skipped(report)
        assert "this workspace's data folder" in reasons[str(parent / "ws" / "state")]
        assert "arcticcodex.db" in reasons[str(parent / "other" / ".arcticcodex")]
        assert report.failed == [] and report.added == []  # notes.md is unchanged; nothing else is a document
        assert_not_in_vault(vault, SECRET)
        named = import_paths(vault, [workspace.runs_dir / "run.txt"])
        assert "inside the workspace's data folder" in skipped(named)[str(workspace.runs_dir / "run.txt")]
        assert_not_in_vault(vault, SECRET)

    result = acx("-w", workspace.root, "vault", "import", parent, "--include-hidden")
    assert f"skipped {parent / 'ws' / 'state'}: is this workspace's data folder" in result.stderr


def test_a_workspace_imported_from_its_own_folder_skips_its_database_and_keys(vault: Vault, acx: Acx) -> None:
    write(vault.workspace.keys_dir / "notes.md", SECRET)
    write(vault.workspace.root / "readme.md", "# Readme\n\nOtters.\n")
    result = acx("-w", vault.workspace.root, "vault", "import", vault.workspace.root, "--include-hidden", "--json")
    report = json.loads(result.stdout)
    assert report["added"] == ["readme.md"]
    data = next(entry for entry in report["skipped"] if entry["path"].endswith(".arcticcodex"))
    assert "data folder" in data["reason"]
    assert_not_in_vault(vault, SECRET)


def test_a_dataset_folder_inside_an_imported_folder_is_skipped(vault: Vault) -> None:
    corpus = vault.workspace.root / "corpus"
    write(corpus / "notes.md", "# Notes\n\nOtters eat fish.\n")
    instruction = "What is DATASET-ONLY-4471 about?"
    with DatasetWriter(corpus / "datasets" / "v1", Ed25519Signer.generate()) as writer:
        writer.add(make_pair(instruction=instruction))
    partial = DatasetWriter(corpus / "datasets" / "v2", Ed25519Signer.generate())  # one being written
    partial.add(make_pair(instruction=instruction))
    try:
        report = import_paths(vault, [corpus])
    finally:
        partial.abort()
    assert report.added == ["corpus/notes.md"]
    reasons = skipped(report)
    assert "dataset folder" in reasons[str(corpus / "datasets" / "v1")]
    assert "dataset folder" in reasons[str(corpus / "datasets" / "v2")]
    assert_not_in_vault(vault, "DATASET-ONLY-4471")
    named = import_paths(vault, [corpus / "datasets" / "v1"])  # named on purpose: imported
    assert "corpus/datasets/v1/README.md" in named.added


def test_a_huge_file_of_a_kind_read_whole_is_refused_without_reading_it_all(vault: Vault) -> None:
    docs = vault.workspace.root / "docs"
    write(docs / "a.md", "First file.")
    with (docs / "huge.html").open("wb") as handle:
        handle.truncate(20 << 30)  # 20 GB of zeros in a sparse file
    report = import_in_thread(vault.workspace, [docs])
    assert report.added == ["docs/a.md"]
    reason = dict(report.failed)["docs/huge.html"]
    assert "is over 268,435,456 bytes, the limit for .html files, which are read whole" in reason
    assert "convert it to .txt or .md" in reason

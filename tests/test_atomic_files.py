"""The one atomic-file helper: readers see the old file or the new one, and a failure leaves no debris.

Every check works on real files in a real folder: the block fails for real (an exception, an interrupt,
a rename the file system refuses), and the folder is listed afterwards, hidden files included.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arcticcodex.fileio import AtomicFile, atomic_write, write_atomically


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


class MidwayError(Exception):
    pass


def test_write_atomically_replaces_the_whole_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"old content\n")
    write_atomically(path, b"new content\n")
    assert path.read_bytes() == b"new content\n"
    assert names(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("error", [MidwayError("the disk went away"), KeyboardInterrupt()], ids=["error", "Ctrl-C"])
def test_an_error_midway_leaves_the_old_file_intact_and_no_temporary(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b'{"old": 1}\n')
    with pytest.raises(type(error)), atomic_write(path) as handle:
        handle.write(b'{"new": 1}\n')
        handle.flush()  # the half-written bytes are really on disk, in the temporary file
        assert len(names(tmp_path)) == 2
        raise error
    assert path.read_bytes() == b'{"old": 1}\n'
    assert names(tmp_path) == ["export.jsonl"]


def test_an_error_midway_creates_nothing_where_there_was_nothing(tmp_path: Path) -> None:
    with pytest.raises(MidwayError), atomic_write(tmp_path / "new.bin") as handle:
        handle.write(b"half")
        raise MidwayError
    assert names(tmp_path) == []


def test_a_reader_sees_the_old_content_until_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old")
    with atomic_write(path) as handle:
        handle.write(b"new, but not yet whole")
        handle.flush()
        assert path.read_bytes() == b"old"
    assert path.read_bytes() == b"new, but not yet whole"


def test_a_rename_the_file_system_refuses_leaves_no_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "out"  # the destination is a folder: rename(2) refuses to replace it with a file
    folder.mkdir()
    (folder / "kept.txt").write_bytes(b"kept")
    with pytest.raises(IsADirectoryError):
        write_atomically(folder, b"data")
    assert names(tmp_path) == ["out"] and names(folder) == ["kept.txt"]


def test_the_temporary_file_has_the_final_mode_from_its_first_byte(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    with umask(0o000), atomic_write(path, mode=0o600) as handle:
        (temporary,) = (tmp_path / name for name in names(tmp_path))
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600  # never readable by others, not even briefly
        handle.write(b"secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_named_temporary_is_where_readers_look_for_it_and_goes_either_way(tmp_path: Path) -> None:
    final, partial = tmp_path / "train.jsonl", tmp_path / "train.jsonl.partial"
    file = AtomicFile(final, temporary=partial)
    file.handle.write(b"line\n")
    assert names(tmp_path) == ["train.jsonl.partial"]
    file.commit()
    assert names(tmp_path) == ["train.jsonl"] and final.read_bytes() == b"line\n"

    again = AtomicFile(final, temporary=partial)
    again.handle.write(b"other\n")
    again.discard()
    assert names(tmp_path) == ["train.jsonl"] and final.read_bytes() == b"line\n"
    partial.write_bytes(b"stale")
    with pytest.raises(FileExistsError):  # a temporary is always created new, never truncated
        AtomicFile(final, temporary=partial)
    assert partial.read_bytes() == b"stale"


def test_a_writer_that_closes_the_handle_itself_still_commits(tmp_path: Path) -> None:
    """Some libraries close the file they are given when they finish (the Parquet writer may)."""
    path = tmp_path / "rows.parquet"
    with atomic_write(path) as handle:
        handle.write(b"PAR1...PAR1")
        handle.close()
    assert path.read_bytes() == b"PAR1...PAR1" and names(tmp_path) == ["rows.parquet"]


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    both_open = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(content: bytes) -> None:
        try:
            with atomic_write(path) as handle:
                both_open.wait(timeout=30)  # each has its temporary file open before either writes
                handle.write(content * 10_000)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(content,)) for content in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert path.read_bytes() in (b"a" * 10_000, b"b" * 10_000)  # one of them, whole: never a mix
    assert names(tmp_path) == ["card.md"]

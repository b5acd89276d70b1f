"""Large text files are streamed: memory bounded by a batch, offsets and hashes exact, all or nothing.

The chunks of a streamed file are the chunker's own (checked against ``chunk_text`` for any way of
feeding the text), its stored text is the file byte for byte, and a file that turns out to be bad
halfway (invalid UTF-8, or changed while read) leaves nothing behind.  Peak memory is asserted with
``tracemalloc`` (Python's allocations, beyond the model); ``benchmarks/vault_import.py`` shows peak RSS.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arcticcodex.vault import Searcher, Vault, import_paths
from arcticcodex.vault.chunk_stream import ChunkStream
from arcticcodex.vault.chunker import ChunkSpan, chunk_text
from arcticcodex.vault.ingest import STREAM_FROM_BYTES, ImportReport
from arcticcodex.workspace import Workspace


class CheapBackend:
    """Deterministic unit vectors from a text's hash: the model costs nothing, so ingest is what is measured."""

    name = "cheap-test-8"
    dimensions = 8

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, hashlib.sha256(text.encode()).digest()[0] % 8] = 1.0
        return out


@pytest.fixture
def vault(workspace: Workspace) -> Iterator[Vault]:
    with Vault(workspace, embedder=CheapBackend()) as opened:
        yield opened


def big_text(megabytes: float, seed: int = 3) -> str:
    """Markdown-ish text: numbered paragraphs of sentences, a heading every 40 paragraphs, some non-ASCII."""
    rng = random.Random(seed)
    words = ["otter", "kestrel", "Zürich", "rösti", "naïve", "café", "☕", "ledger", "signal", "harbour", "日本"]
    parts, size, number = [], 0, 0
    while size < megabytes * 1_000_000:
        if number % 40 == 0:
            part = f"## Section {number // 40}"
        else:
            sentences = (
                " ".join(rng.choice(words) for _ in range(rng.randint(4, 18))) for _ in range(rng.randint(1, 7))
            )
            part = f"Paragraph {number}. " + ". ".join(sentences) + "."
        parts.append(part)
        size += len(part.encode()) + 2
        number += 1
    return "\n\n".join(parts) + "\n"


def fed(text: str, sizes: list[int], *, max_chars: int, overlap_chars: int, section_chars: int) -> list[ChunkSpan]:
    stream = ChunkStream(max_chars=max_chars, overlap_chars=overlap_chars, section_chars=section_chars)
    chunks, position = [], 0
    for size in sizes:
        chunks += stream.feed(text[position : position + size])
        position += size
    chunks += stream.feed(text[position:])
    chunks += stream.finish()
    for span, piece in chunks:
        assert piece == text[span.start : span.end]
    return [span for span, _ in chunks]


# --- the stream chunker --------------------------------------------------------------------------------

PARAGRAPH_BITS = st.sampled_from(
    ["word", "naïve", "😀", " ", "\t", ". ", "! ", "\n", "\r\n", "x" * 150, "\n# Title\n", "\n```\n", "\n~~~\n", "# "]
)
PARAGRAPH_TEXTS = st.tuples(
    st.lists(st.lists(PARAGRAPH_BITS, min_size=1, max_size=30).map("".join), min_size=1, max_size=40),
    st.sampled_from(["\n\n", "\r\n\r\n", "\n \t\n", "\n\n\n  "]),
).map(lambda parts: parts[1].join(parts[0]))
ANY_BITS = st.sampled_from(
    ["word", "日本語", "😀", " ", "  ", "\t", "\u00a0", "\u2028", "\x0c", ". ", "…", "\n", "\r\n", "\r", "\n\n",
     "\n \t\n", "\n# Title\n", "\n## Install ##\n", "\n```\n", "x" * 150, "\ufeff", "  # ind\n"]
)  # fmt: skip
SIZES = st.integers(min_value=100, max_value=300).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1), st.integers(1, 3))
)
FEEDS = st.lists(st.integers(min_value=0, max_value=500), max_size=30)


@given(PARAGRAPH_TEXTS, SIZES, FEEDS)
@example("\ufeff# Title\n\n" + "a. " * 400 + "\n\n```\n# not\n```\n\n# Real\n\nbody", (100, 30, 1), [1, 1, 700])
def test_streamed_chunks_are_chunk_texts_when_sections_end_at_blank_lines(
    text: str, sizes: tuple[int, int, int], feeds: list[int]
) -> None:
    max_chars, overlap_chars, sections = sizes
    expected = chunk_text(text, max_chars=max_chars, overlap_chars=overlap_chars)
    streamed = fed(
        text, feeds, max_chars=max_chars, overlap_chars=overlap_chars, section_chars=4 * max_chars * sections
    )
    assert streamed == expected


@given(st.lists(ANY_BITS, max_size=600).map("".join), SIZES, FEEDS)
def test_streamed_chunks_keep_every_promise_for_any_text(
    text: str, sizes: tuple[int, int, int], feeds: list[int]
) -> None:
    """Sections cut without a blank line may move chunk boundaries; offsets, limits and coverage still hold."""
    max_chars, overlap_chars, _ = sizes
    spans = fed(text, feeds, max_chars=max_chars, overlap_chars=overlap_chars, section_chars=4 * max_chars)
    encoded = text.encode()
    covered = [False] * len(text)
    previous: ChunkSpan | None = None
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip() and len(piece) <= max_chars
        assert encoded[span.start_byte : span.end_byte] == piece.encode()
        if previous is not None:
            assert span.start > previous.start and span.end > previous.end
            assert previous.end - span.start <= overlap_chars
        covered[span.start : span.end] = [True] * (span.end - span.start)
        previous = span
    assert all(covered[i] or char.isspace() for i, char in enumerate(text))


def test_a_megabyte_long_line_without_blank_lines_streams_in_bounded_pieces() -> None:
    log = "".join(f"2026-11-25 INFO worker {i} handled request {i * 7}\n" for i in range(40_000))
    spans = fed(log, [65_536] * 40, max_chars=1200, overlap_chars=200, section_chars=1 << 16)
    assert spans[0].start == 0 and spans[-1].end == len(log.rstrip())
    assert all(span.end - span.start <= 1200 for span in spans)


# --- importing a large file ------------------------------------------------------------------------------


def test_a_large_file_streams_in_with_exact_bytes_offsets_and_hashes(vault: Vault) -> None:
    path = vault.workspace.root / "big.md"
    text = "\ufeff# Field Notes\r\n\r\n" + big_text(5)
    path.write_bytes(text.encode())
    assert path.stat().st_size >= STREAM_FROM_BYTES

    report = import_paths(vault, [path], batch_chunks=64)
    assert report.added == ["big.md"] and not report.failed
    [document] = vault.list_documents()
    assert document.title == "Field Notes" and document.media_type == "text/markdown"
    assert document.size_bytes == path.stat().st_size
    assert document.source_sha256 == document.text_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert vault.document_text(document.id) == text  # stored exactly, BOM and CRLF included
    raw = path.read_bytes()
    chunks = vault.chunks_of(document.id)
    assert [(c.start_byte, c.end_byte, c.heading) for c in chunks] == [
        (span.start_byte, span.end_byte, span.heading) for span in chunk_text(text)
    ]
    for chunk in chunks:
        assert raw[chunk.start_byte : chunk.end_byte] == chunk.text.encode()
    assert report.chunks == len(chunks) and report.embedded + report.reused == len({c.sha256 for c in chunks})
    assert vault.stats()["text_bytes"] == len(raw)
    assert vault.verify().ok
    assert "Paragraph 8001." in text  # a paragraph from the middle of the file is found
    assert any("Paragraph 8001." in hit.text for hit in Searcher(vault).search("8001", k=3, mode="bm25"))

    again = import_paths(vault, [path])
    assert again.unchanged == ["big.md"] and again.embedded == 0

    path.write_bytes(raw + b"\nOne more paragraph about otters.\n")
    changed = import_paths(vault, [path])
    assert changed.updated == ["big.md"] and changed.embedded <= 2 and changed.reused > 1000
    assert vault.verify().ok and vault.stats()["text_bytes"] == len(raw) + 34

    vault.forget(document.id, "test")
    assert vault.conn.execute("SELECT count(*) FROM document_parts").fetchone()[0] == 0
    assert vault.stats()["embeddings"] == 0 and vault.verify().ok


def test_peak_memory_of_a_16_mb_import_is_a_small_fraction_of_the_file(vault: Vault) -> None:
    path = vault.workspace.root / "huge.txt"
    path.write_text(big_text(16), encoding="utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        report = import_paths(vault, [path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.added == ["huge.txt"] and report.chunks > 10_000
    # Loading it whole held the file several times over (about 10x, measured); streamed, the peak is a few
    # read blocks and one batch of chunks, whatever the size of the file.
    assert peak < 6_000_000, f"peak traced memory {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def test_invalid_utf8_deep_in_a_large_file_fails_it_whole(vault: Vault) -> None:
    path = vault.workspace.root / "broken.txt"
    good = big_text(4.5).encode()
    path.write_bytes(good + b"caf\xe9 au lait\n" + good[:100_000])
    report = import_paths(vault, [path], batch_chunks=32)
    reason = dict(report.failed)["broken.txt"]
    line = good.count(b"\n") + 1
    assert f"byte {len(good) + 3} (0xe9, line {line})" in reason and "iconv" in reason
    assert (report.added, report.chunks, report.embedded) == ([], 0, 0)
    for table in ("documents", "chunks", "document_parts", "embeddings"):
        assert vault.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_a_file_that_changes_while_it_streams_in_leaves_the_previous_version(vault: Vault) -> None:
    path = vault.workspace.root / "moving.txt"
    path.write_text(big_text(4.5, seed=1), encoding="utf-8")
    import_paths(vault, [path])
    [before] = vault.list_documents()
    chunks_before = [c.text for c in vault.chunks_of(before.id)]
    path.write_text(big_text(4.5, seed=2), encoding="utf-8")

    def grow(report: ImportReport, _: Path) -> None:
        if report.chunks and path.stat().st_size < 6_000_000:  # mid-stream: someone appends to the file
            with path.open("a", encoding="utf-8") as handle:
                handle.write("appended while importing\n" * 100_000)

    report = import_paths(vault, [path], batch_chunks=64, on_file=grow)
    assert "changed while it was being imported" in dict(report.failed)["moving.txt"]
    [after] = vault.list_documents()
    assert after.source_sha256 == before.source_sha256
    assert [c.text for c in vault.chunks_of(after.id)] == chunks_before
    assert vault.verify().ok


def test_a_streamed_document_is_tamper_evident_and_shrinking_it_drops_its_parts(vault: Vault) -> None:
    path = vault.workspace.root / "notes.txt"
    path.write_text(big_text(4.5), encoding="utf-8")
    import_paths(vault, [path])
    [document] = vault.list_documents()
    first_part = vault.conn.execute("SELECT bytes FROM document_parts WHERE part = 0").fetchone()[0]
    vault.conn.execute("UPDATE document_parts SET bytes = ? WHERE part = 0", (first_part.replace(b"otter", b"0tter"),))
    problems = vault.verify().problems
    assert any(p.record_id == document.id and "SHA-256" in p.problem for p in problems)
    assert any(p.kind == "chunk" and "differ from its text" in p.problem for p in problems)

    path.write_text("Now a short note about otters.\n", encoding="utf-8")
    report = import_paths(vault, [path])
    assert report.updated == ["notes.txt"]
    assert vault.conn.execute("SELECT count(*) FROM document_parts").fetchone()[0] == 0
    assert vault.document_text(document.id) == "Now a short note about otters.\n"
    assert vault.verify().ok

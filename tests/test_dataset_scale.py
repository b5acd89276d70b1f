"""Verify and export at scale: flat memory (no per-record Python objects), parallel export byte for byte
the serial one, and duplicates caught across ranges and across the id ledger's spills (issue 19, item 5).

Rates and RSS at 100k and 1M records are measured by benchmarks/dataset_scale.py, not here.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import DatasetWriter, checking, export, id_ledger, verify_dataset
from arcticcodex.dataset import verify as verify_module
from arcticcodex.dataset.citations import TrainingView
from arcticcodex.dataset.export import export_dataset
from arcticcodex.dataset.id_ledger import IdLedger
from arcticcodex.errors import DatasetError
from arcticcodex.provenance import Ed25519Signer, KeyRing
from test_dataset_record import make_pair
from test_dataset_verify import edit_lines, messages

SIGNER = Ed25519Signer.generate()
TRUSTED = KeyRing.only([(SIGNER.verifier(), "the test's key")])


def build(out: Path, count: int, *, validation: int = 0) -> Path:
    """``count`` distinct pairs (a few with [1] markers and a better second draft, for dpo and the view)."""
    with DatasetWriter(out, SIGNER, validation_fraction=validation / max(count, 1)) as writer:
        for number in range(count):
            writer.add(make_pair(instruction=f"Question {number} about otters?"))
    return out


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel from the first byte, in ranges of ~700 bytes (a few lines each, cut mid-line), and an id
    ledger that spills to its bucket files every 7 records: every boundary a 1M-record file has, in 300."""
    monkeypatch.setattr(checking, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(checking, "RANGE_BYTES", 700)
    monkeypatch.setattr(id_ledger, "BUFFER_RECORDS", 7)


# -- duplicates: the ledger against the set it replaces -----------------------------------------------------


def reference_duplicates(ids: list[str]) -> list[tuple[int, int, str]]:
    """What verify's old ``seen`` dict reported: each later line of an id, with the first line of that id."""
    seen: dict[str, int] = {}
    found = []
    for line, record_id in enumerate(ids, start=1):
        if record_id in seen:
            found.append((line, seen[record_id], record_id))
        else:
            seen[record_id] = line
    return found


@pytest.mark.parametrize("buffer_records", [3, 1000, None], ids=["spills-often", "spills-once", "in-memory"])
def test_the_id_ledger_finds_exactly_what_a_set_finds(buffer_records: int | None) -> None:
    content_ids = [f"tp-{hashlib.sha256(str(n).encode()).hexdigest()[:32]}" for n in range(400)]
    others = ["made-up", "tp-NOT-HEX", "x" * 80 + "…", ""]  # ids that are not content ids, keyed by digest
    ids = [(content_ids + others)[(n * 7919) % 300 if n % 5 else n % 404] for n in range(3000)]
    with IdLedger(buffer_records=buffer_records) as ledger:
        for line, record_id in enumerate(ids, start=1):
            ledger.add(record_id, line)
        listed, count = ledger.duplicates(limit=1000)
    expected = reference_duplicates(ids)
    assert count == len(expected) > 1000
    assert listed == expected[:1000]


def test_the_id_ledger_holds_no_object_a_record(tmp_path: Path) -> None:
    """200k ids: a set of them costs ~25 MB of Python objects; the ledger's peak stays under 6 MB (its
    1.5 MB buffer, the copy sorted into buckets when it spills, one bucket at the end)."""
    tracemalloc.start()
    try:
        with IdLedger() as ledger:
            for line in range(1, 200_001):
                ledger.add(f"tp-{line:032x}", line)
            ledger.add(f"tp-{5:032x}", 200_001)
            listed, count = ledger.duplicates(limit=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (listed, count) == ([(200_001, 5, f"tp-{5:032x}")], 1)
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MB"


def test_verify_keeps_no_object_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tracemalloc peak of ``verify_dataset`` over 6,000 records against 600: the same within 300 KB
    (the old set of ids grew ~125 bytes a record: +675 KB here).  The ledger's buffer is set to 256
    records so its fixed size does not hide in the margin."""
    monkeypatch.setattr(id_ledger, "BUFFER_RECORDS", 256)
    peaks = []
    for count in (600, 6000):
        out = build(tmp_path / f"ds{count}", count)
        verify_dataset(out)  # imports and caches warmed, so the two measurements compare like with like
        tracemalloc.start()
        try:
            report = verify_dataset(out)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert report.ok and report.records == count, messages(report)
    assert peaks[1] - peaks[0] < 300_000, f"peaks {peaks}"


# -- duplicates in a real dataset, across ranges and spills, through the CLI ---------------------------------


def test_a_duplicate_far_from_its_original_is_named_across_ranges_and_spills(
    tmp_path: Path, small_ranges: None, acx: Any
) -> None:
    out = build(tmp_path / "ds", 300)
    train = out / "train.jsonl"
    original = train.read_bytes().splitlines(keepends=True)
    record_id = original[1].split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
    edit_lines(train, lambda lines: [*lines[:250], lines[1], *lines[250:]])  # line 2 again as line 251

    report = verify_dataset(out, workers=2)
    assert not report.ok
    text = messages(report)
    assert f"train.jsonl:251 (record {record_id}): duplicate of the record on line 2" in text
    assert text[0] == f"train.jsonl:251 (record {record_id}): duplicate of the record on line 2", text
    assert "index 1 where 250 was expected" in text[1]  # the line's other problem follows, as before
    assert report.to_json() == verify_dataset(out, workers=1).to_json()  # serial and parallel agree

    result = acx("dataset", "verify", out, "--workers", "2", code=1)
    assert f"train.jsonl:251 (record {record_id}): duplicate of the record on line 2" in result.output
    refused = acx("dataset", "export", out, "--format", "messages", "--workers", "2", code=1)
    assert "is NOT intact" in refused.output and "duplicate of the record on line 2" in refused.output
    assert not (out / "export-messages.jsonl").exists()


def test_more_problems_than_listed_keep_the_earliest_and_count_the_rest(
    tmp_path: Path, small_ranges: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every record after the first written 5 times: ~1,200 duplicates among ~2,700 problems.  The report
    lists the 1,000 earliest exactly as an unbounded listing begins (line order; on a line, the duplicate
    before its index problem, as when duplicates were found on the way) and counts every other one."""
    out = build(tmp_path / "ds", 300)
    edit_lines(out / "train.jsonl", lambda lines: [lines[0], *(line for line in lines[1:] for _ in range(5))])
    monkeypatch.setattr(verify_module, "MAX_PROBLEMS", 10**6)
    everything = verify_dataset(out, workers=2)
    monkeypatch.undo()
    monkeypatch.setattr(checking, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(checking, "RANGE_BYTES", 700)
    monkeypatch.setattr(id_ledger, "BUFFER_RECORDS", 7)
    report = verify_dataset(out, workers=2)

    full = messages(everything)
    assert everything.problems_not_listed == 0 and len(full) > 2000
    assert sum("duplicate of the record on line" in text for text in full) == 299 * 4
    lines = [problem.line or 0 for problem in everything.problems if problem.line is not None]
    assert lines == sorted(lines)
    assert "duplicate of the record on line 2" in full[0] and "index 1 where 2 was expected" in full[1]
    assert messages(report) == full[:1000]
    assert report.problems_not_listed == len(full) - 1000


# -- export: parallel, byte for byte the serial one --------------------------------------------------------


@pytest.fixture(scope="module")
def with_validation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("scale") / "ds", 240, validation=40)


@pytest.mark.parametrize("export_format", ["messages", "openai", "alpaca", "sharegpt", "dpo", "fn"])
def test_the_parallel_export_writes_the_serial_bytes_in_order(
    tmp_path: Path, small_ranges: None, monkeypatch: pytest.MonkeyPatch, export_format: str, with_validation: Path
) -> None:
    out = with_validation
    serial = tmp_path / "serial.out"
    ran_parallel = []
    real = export._write_in_parallel

    def spy(*args: Any) -> int:
        ran_parallel.append(True)
        return real(*args)

    for split in ("train", "all"):
        rows = export_dataset(out, serial, export_format, keyring=TRUSTED, workers=1, split=split, dpo_margin=0.0)
        ran_parallel.clear()
        monkeypatch.setattr(export, "_write_in_parallel", spy)
        parallel = tmp_path / f"parallel-{split}.out"
        assert (
            export_dataset(out, parallel, export_format, keyring=TRUSTED, workers=2, split=split, dpo_margin=0.0)
            == rows
        )
        monkeypatch.setattr(export, "_write_in_parallel", real)
        assert ran_parallel and rows > 0
        assert parallel.read_bytes() == serial.read_bytes()


def test_an_export_that_cannot_leave_this_process_stays_serial(tmp_path: Path, small_ranges: None) -> None:
    """Evidence texts come from the workspace's database: such a view is converted here, not in workers."""
    out = build(tmp_path / "ds", 60)
    view = TrainingView(evidence_texts=lambda ref: "Otters eat fish, crabs and sea urchins.")
    rows = export_dataset(out, tmp_path / "rag.jsonl", "messages", keyring=TRUSTED, workers=2, view=view)
    assert rows == 60 and b"EVIDENCE" in (tmp_path / "rag.jsonl").read_bytes()


def test_a_record_changed_after_verifying_is_still_named(tmp_path: Path, small_ranges: None) -> None:
    """A worker's error crosses back whole: the file and line, and nothing is left under the target name."""
    out = build(tmp_path / "ds", 60)
    rows = export._Rows("messages", 0.1, TrainingView())
    train = out / "train.jsonl"
    edit_lines(train, lambda lines: [*lines[:40], b"{not json\n", *lines[41:]])
    with (tmp_path / "x").open("wb") as handle, pytest.raises(DatasetError, match=r"train\.jsonl:41: not valid JSON"):
        export._write_in_parallel(handle, [train], rows, 2)

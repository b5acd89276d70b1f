"""VerdictCache: a verdict is reused only while the folder is exactly as verified; trust is decided afresh."""

from __future__ import annotations

import os
from pathlib import Path

from arcticcodex.dataset.verdicts import VerdictCache
from arcticcodex.provenance.trust import KeyRing, TrustedKeys
from test_dataset_verify import SIGNER, build


def test_a_verdict_is_reused_until_a_byte_changes_even_with_the_old_dates_put_back(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    cache = VerdictCache()
    ring = KeyRing.for_user()
    first = cache.verify(out, keyring=ring)
    assert first.ok and cache.verify(out, keyring=ring).ok and cache.verifications == 1

    train = out / "train.jsonl"
    before = train.stat()
    data = bytearray(train.read_bytes())
    data[data.index(b"Question 2?")] ^= 0x01  # same size, one bit
    train.write_bytes(bytes(data))
    os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))  # `touch -r`: only the change time tells
    report = cache.verify(out, keyring=ring)
    assert cache.verifications == 2 and not report.ok
    assert any(problem.line == 3 and "edited after signing" in problem.message for problem in report.problems)


def test_trust_is_decided_on_every_call(tmp_path: Path) -> None:
    out = build(tmp_path / "ds")
    cache = VerdictCache()
    ring = KeyRing.for_user()
    assert not cache.verify(out, keyring=ring).trusted
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    report = cache.verify(out, keyring=ring)
    assert report.trusted and report.trusted_as == "trusted key 'tests'" and report.trust_note == ""
    TrustedKeys.for_user().remove("tests")
    report = cache.verify(out, keyring=ring)
    assert not report.trusted and report.trust_note.startswith(f"signed by ed25519 key {SIGNER.key_id}")
    assert cache.verifications == 1

"""Signed frames: the SIGNED envelope, what its signature covers, and every way verification must fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from arcticcodex.compat import FrameVerifier
from arcticcodex.errors import ConfigError, KeyFileError, ParseError, SignatureError
from arcticcodex.forge import Blob, Dec, Frame, Text, parse_frame
from arcticcodex.provenance import Ed25519Signer, FrameSigner, HmacSigner, KeyStore, SignedFrame
from arcticcodex.provenance.frames import SIGNATURE_CONTEXT

FACT = Frame({"TYPE": "FACT", "CONFIDENCE": Dec("0.9")}, ["SUBJ", "Fox", "PRED", "is_a", "OBJ", "canine"])
WHEN = "2025-12-20T10:00:00Z"


def seed_verifier() -> FrameSigner:
    """An HMAC signer over the shared secret ``b"secret"``, as the first API's example used."""
    return FrameSigner(HmacSigner(b"secret"), signer_id="teacher-01")


def rebuild(signed: str, **changes: object) -> str:
    """The envelope re-built with header fields (or PAYLOAD) replaced, so the text stays well-formed."""
    envelope = parse_frame(signed)
    header: dict[str, object] = dict(envelope.header)
    payload = changes.pop("PAYLOAD", envelope.payload)
    header.update(changes)
    return Frame(header, payload).to_text()  # type: ignore[arg-type]


def test_the_seed_example_signs_and_verifies_a_real_frame() -> None:
    verifier = seed_verifier()
    signed = verifier.sign_frame(FACT, timestamp=WHEN)
    assert verifier.verify_frame(signed)
    opened = verifier.open_frame(signed)
    assert opened == SignedFrame(
        frame=FACT,
        signer_id="teacher-01",
        signed_at=datetime(2025, 12, 20, 10, 0, tzinfo=UTC),
        key_id=HmacSigner(b"secret").key_id,
        algorithm="hmac-sha256",
    )
    # the first API's constructor (arcticcodex.compat), keyword and positional: the same key, the same envelope
    assert FrameVerifier(private_key=b"secret", signer_id="teacher-01").sign_frame(FACT, timestamp=WHEN) == signed
    assert FrameVerifier(b"secret", "teacher-01").verify_frame(signed)


def test_the_envelope_is_a_canonical_signed_frame() -> None:
    signed = seed_verifier().sign_frame(FACT, timestamp=WHEN)
    envelope = parse_frame(signed)
    assert envelope.to_text() == signed
    assert envelope.type == "SIGNED"
    assert set(envelope.header) == {"ALG", "KEY_ID", "SIG", "SIGNED_AT", "SIGNER", "TYPE"}
    assert envelope.header["ALG"] == Text("hmac-sha256")
    assert envelope.header["SIGNER"] == Text("teacher-01")
    assert envelope.header["SIGNED_AT"] == Text(WHEN)
    assert envelope.payload == (FACT,)


def test_the_signature_covers_the_envelope_without_sig() -> None:
    signed = seed_verifier().sign_frame(FACT, timestamp=WHEN)
    envelope = parse_frame(signed)
    signature = envelope.header["SIG"]
    assert isinstance(signature, Blob)
    unsigned = Frame({key: value for key, value in envelope.header.items() if key != "SIG"}, envelope.payload)
    assert SIGNATURE_CONTEXT == b"ArcticCodex-SIGNED-v1\n"
    assert signature.data == HmacSigner(b"secret").sign(SIGNATURE_CONTEXT + unsigned.to_bytes())


def test_a_frame_given_as_text_is_parsed_first() -> None:
    verifier = seed_verifier()
    assert verifier.sign_frame(FACT.to_text(), WHEN) == verifier.sign_frame(FACT, WHEN)
    assert verifier.open_frame(verifier.sign_frame("⧆≛TYPE⦙≛FACT∷≛SUBJ⦙≛a⧈", WHEN)).frame.type == "FACT"


@pytest.mark.parametrize(
    "change",
    [
        {"SIGNER": "teacher-02"},
        {"SIGNED_AT": "2025-12-21T10:00:00Z"},
        {"PAYLOAD": [Frame({"TYPE": "FACT", "CONFIDENCE": Dec("0.1")}, ["SUBJ", "Fox"])]},
        {"SIG": Blob(b"\x00" * 32)},
    ],
    ids=["signer", "timestamp", "inner-frame", "signature"],
)
def test_any_edit_breaks_verification(change: dict[str, object]) -> None:
    verifier = seed_verifier()
    edited = rebuild(verifier.sign_frame(FACT, timestamp=WHEN), **change)
    assert not verifier.verify_frame(edited)
    with pytest.raises(SignatureError, match="does not verify: the frame, the signer or the timestamp was altered"):
        verifier.open_frame(edited)


def test_a_flipped_signature_bit_breaks_verification() -> None:
    verifier = seed_verifier()
    signed = verifier.sign_frame(FACT, timestamp=WHEN)
    signature = parse_frame(signed).header["SIG"]
    assert isinstance(signature, Blob)
    flipped = bytes([signature.data[0] ^ 0x80]) + signature.data[1:]
    assert not verifier.verify_frame(rebuild(signed, SIG=Blob(flipped)))


def test_the_wrong_key_fails_with_a_key_id_mismatch() -> None:
    signed = seed_verifier().sign_frame(FACT, timestamp=WHEN)
    other = FrameSigner(HmacSigner(b"another secret"), signer_id="teacher-01")
    assert not other.verify_frame(signed)
    with pytest.raises(SignatureError) as caught:
        other.open_frame(signed)
    assert str(caught.value) == (
        f"the frame was signed with key {HmacSigner(b'secret').key_id}, this verifier holds {other.key_id}"
    )


def test_a_forged_key_id_still_fails() -> None:
    """Claiming the verifier's key id does not help: the key id is inside the signed bytes."""
    verifier = seed_verifier()
    forged = FrameSigner(HmacSigner(b"attacker"), signer_id="teacher-01").sign_frame(FACT, timestamp=WHEN)
    forged = rebuild(forged, KEY_ID=verifier.key_id)
    with pytest.raises(SignatureError, match="does not verify"):
        verifier.open_frame(forged)


def test_the_wrong_algorithm_is_named() -> None:
    signed = FrameSigner(Ed25519Signer.generate(), signer_id="s").sign_frame(FACT, WHEN)
    with pytest.raises(SignatureError, match="signed with ed25519, this verifier holds an hmac-sha256 key"):
        seed_verifier().open_frame(signed)


def test_ed25519_round_trip_and_public_only_verification(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.create("dataset")
    signer = FrameSigner(store.signer("dataset"), signer_id="teacher-01")
    assert signer.algorithm == "ed25519"
    signed = signer.sign_frame(FACT)
    opened = signer.open_frame(signed)
    assert opened.frame == FACT and opened.algorithm == "ed25519"
    assert opened.key_id == store.info("dataset").key_id

    public_only = FrameSigner(store.verifier("dataset"), signer_id="auditor")
    assert public_only.verify_frame(signed)
    assert not public_only.verify_frame(rebuild(signed, SIGNER="teacher-02"))
    with pytest.raises(KeyFileError, match="cannot sign"):
        public_only.sign_frame(FACT)
    other = FrameSigner(Ed25519Signer.generate(), signer_id="teacher-01")
    assert not other.verify_frame(signed)


def test_default_timestamp_is_now_in_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    opened = seed_verifier().open_frame(seed_verifier().sign_frame(FACT))
    assert before <= opened.signed_at <= datetime.now(UTC)
    assert opened.signed_at.tzinfo is UTC


def test_timestamps_are_written_in_utc() -> None:
    verifier = seed_verifier()
    paris = datetime(2025, 12, 20, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    signed = verifier.sign_frame(FACT, paris)
    assert parse_frame(signed).header["SIGNED_AT"] == Text(WHEN)
    assert verifier.sign_frame(FACT, "2025-12-20T11:00:00+01:00") == signed
    with pytest.raises(ValueError, match="no time zone"):
        verifier.sign_frame(FACT, datetime(2025, 12, 20, 10, 0))  # naive: the point of the test
    with pytest.raises(ValueError, match="not an ISO-8601 timestamp"):
        verifier.sign_frame(FACT, "yesterday")


def test_not_a_signed_frame() -> None:
    with pytest.raises(SignatureError, match="not a SIGNED frame \\(its TYPE is FACT\\)"):
        seed_verifier().open_frame(FACT.to_text())
    assert not seed_verifier().verify_frame(FACT.to_text())


def test_an_envelope_with_extra_or_missing_fields_is_refused() -> None:
    verifier = seed_verifier()
    signed = verifier.sign_frame(FACT, WHEN)
    with pytest.raises(SignatureError, match="has no field EXTRA"):
        verifier.open_frame(rebuild(signed, EXTRA="x"))
    envelope = parse_frame(signed)
    header = {key: value for key, value in envelope.header.items() if key != "SIGNER"}
    with pytest.raises(SignatureError, match="SIGNER field is missing"):
        verifier.open_frame(Frame(header, envelope.payload).to_text())
    with pytest.raises(SignatureError, match="exactly one frame"):
        verifier.open_frame(rebuild(signed, PAYLOAD=["not", "a", "frame"]))


def test_malformed_text_raises_the_located_parse_error() -> None:
    verifier = seed_verifier()
    signed = verifier.sign_frame(FACT, WHEN)
    with pytest.raises(ParseError) as caught:
        verifier.open_frame(signed[:-1])
    assert caught.value.line == 1
    assert not verifier.verify_frame(signed[:-1])


def test_construction_rules() -> None:
    with pytest.raises(ConfigError, match="FrameSigner needs a non-empty signer_id"):
        FrameSigner(HmacSigner(b"secret"), signer_id=" ")
    with pytest.raises(TypeError, match="not bytes"):
        FrameSigner(b"secret", signer_id="x")  # type: ignore[arg-type]
    assert "secret" not in repr(seed_verifier()) and repr(seed_verifier()).startswith("FrameSigner(")


def test_the_first_apis_construction_rules() -> None:
    """``arcticcodex.compat.FrameVerifier``: private_key= or signer=, never neither (no default key), never both."""
    with pytest.raises(KeyFileError, match="arcticcodex keys new"):
        FrameVerifier(signer_id="teacher-01")
    with pytest.raises(ConfigError, match="signer_id"):
        FrameVerifier(private_key=b"secret")
    with pytest.raises(ConfigError, match="signer_id"):
        FrameVerifier(private_key=b"secret", signer_id="  ")
    with pytest.raises(ConfigError, match="not both"):
        FrameVerifier(private_key=b"secret", signer_id="x", signer=HmacSigner(b"secret"))
    with pytest.raises(TypeError):
        FrameVerifier(signer=b"secret", signer_id="x")  # type: ignore[arg-type]
    assert "secret" not in repr(FrameVerifier(private_key=b"secret", signer_id="x"))


def test_bytes_pass_throughs() -> None:
    verifier = seed_verifier()
    assert verifier.sign(b"m") == HmacSigner(b"secret").sign(b"m")
    assert verifier.verify(b"m", verifier.sign(b"m"))
    assert not verifier.verify(b"n", verifier.sign(b"m"))


def test_signed_frames_nest_and_keep_decimals_exact() -> None:
    verifier = seed_verifier()
    inner = Frame({"TYPE": "FACT", "CONFIDENCE": Decimal("0.95")}, ["SUBJ", "two words ⟧ here"])
    twice = verifier.sign_frame(verifier.sign_frame(inner, WHEN), WHEN)
    outer = verifier.open_frame(twice)
    assert verifier.open_frame(outer.frame.to_text()).frame == inner

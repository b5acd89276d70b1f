"""Signed frames: a frame wrapped in a canonical ``SIGNED`` envelope frame.

A signed frame is an ordinary ForgeNumerics-S frame, so any conforming parser reads it and the bytes
signed are bytes every tool rebuilds the same way::

    ⧆ ALG⦙≛ed25519 ∴ KEY_ID⦙≛<hex> ∴ SIG⦙<BLOB-T> ∴ SIGNED_AT⦙≛2025-12-20T10:00:00Z
      ∴ SIGNER⦙≛teacher-01 ∴ TYPE⦙≛SIGNED ∷ <the signed frame> ⧈

and the signature covers ``b"ArcticCodex-SIGNED-v1\\n"`` + the canonical bytes of that envelope
without its ``SIG`` field — the nested frame *and* every other header field, so algorithm, key id,
signer and timestamp cannot be changed without breaking it.  The prefix separates these signatures
from any other bytes the same key signs (a record, a manifest).  Because the bytes are the canonical
form, a signed frame still verifies after being re-parsed and re-written by any conforming tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import ConfigError, KeyFileError, SignatureError
from ..forge import Blob, Frame, ParseError, Text, parse_frame
from .signing import ALGORITHMS, Signer, Verifier

SIGNED_TYPE = "SIGNED"
SIGNATURE_CONTEXT = b"ArcticCodex-SIGNED-v1\n"
#: The header fields of an envelope; SIG is the one the signature does not cover.
ENVELOPE_FIELDS = ("ALG", "KEY_ID", "SIG", "SIGNED_AT", "SIGNER", "TYPE")


@dataclass(frozen=True, slots=True)
class SignedFrame:
    """A verified envelope, opened: the frame that was signed and who signed it, when, with what."""

    frame: Frame
    signer_id: str
    signed_at: datetime  # timezone-aware UTC
    key_id: str
    algorithm: str


class FrameSigner:
    """Signs frames into ``SIGNED`` envelopes, and verifies and opens them, with one key.

    ``FrameSigner(KeyStore(workspace.keys_dir).signer("dataset"), signer_id="teacher-01")`` signs with a
    stored key (Ed25519 by default; an :class:`~.signing.HmacSigner` for a shared secret).  The key may
    also be a verifier without a private half (an :class:`~.signing.Ed25519Verifier`): such a
    FrameSigner checks envelopes and refuses to sign.
    """

    __slots__ = ("_key", "_signer_id")

    def __init__(self, signer: Signer | Verifier, signer_id: str) -> None:
        name = type(self).__name__
        if not isinstance(signer_id, str) or not signer_id.strip():
            raise ConfigError(f'{name} needs a non-empty signer_id naming who signs, e.g. signer_id="teacher-01"')
        if not isinstance(signer, Verifier) or signer.algorithm not in ALGORITHMS:
            raise TypeError(
                f"signer must be an Ed25519Signer, Ed25519Verifier or HmacSigner, not {type(signer).__name__}"
            )
        Text(signer_id)  # a signer id must be writable as a header field: fail now, not when signing
        self._key: Signer | Verifier = signer
        self._signer_id = signer_id

    @property
    def signer_id(self) -> str:
        return self._signer_id

    @property
    def algorithm(self) -> str:
        return self._key.algorithm

    @property
    def signing_key(self) -> Signer:
        """The key that signs (for the dataset writer); a verify-only FrameSigner has none."""
        if not isinstance(self._key, Signer):
            raise KeyFileError(
                f"this {type(self).__name__} holds only the public key {self.key_id[:16]}…; signing needs the "
                "private key (KeyStore(keys_dir).signer(NAME))"
            )
        return self._key

    @property
    def key_id(self) -> str:
        return self._key.key_id

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(signer_id={self._signer_id!r}, algorithm={self.algorithm!r}, key_id={self.key_id!r})"

    # -- bytes ---------------------------------------------------------------------------------------

    def sign(self, message: bytes) -> bytes:
        """The raw signature of ``message`` with this verifier's key."""
        return self._signing_key().sign(message)

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self._key.verify(message, signature)

    # -- frames --------------------------------------------------------------------------------------

    def sign_frame(self, frame: Frame | str, timestamp: datetime | str | None = None) -> str:
        """The canonical text of a ``SIGNED`` envelope around ``frame`` (text is parsed first).

        ``timestamp`` defaults to now; a datetime must be timezone-aware, a string ISO-8601 with an
        offset (``2025-12-20T10:00:00Z``).  It is written in UTC.
        """
        key = self._signing_key()
        inner = parse_frame(frame) if isinstance(frame, str) else frame
        if not isinstance(inner, Frame):
            raise TypeError(f"sign_frame needs a Frame or its text, not {type(inner).__name__}")
        header = {
            "ALG": Text(key.algorithm),
            "KEY_ID": Text(key.key_id),
            "SIGNED_AT": Text(format_timestamp(timestamp)),
            "SIGNER": Text(self._signer_id),
            "TYPE": Text(SIGNED_TYPE),
        }
        signature = key.sign(_signed_bytes(Frame(header, [inner])))
        return Frame({**header, "SIG": Blob(signature)}, [inner]).to_text()

    def verify_frame(self, signed: str) -> bool:
        """True when ``signed`` is an envelope this key signed, unaltered; False for anything else.

        Text that does not parse is False too; :meth:`open_frame` says what is wrong.
        """
        try:
            self.open_frame(signed)
        except (SignatureError, ParseError):
            return False
        return True

    def open_frame(self, signed: str) -> SignedFrame:
        """Verify ``signed`` and return what it holds; SignatureError says what failed.

        Malformed text raises the parser's located ParseError unchanged.
        """
        if not isinstance(signed, str):
            raise TypeError(f"open_frame needs the envelope's text (str), not {type(signed).__name__}")
        envelope = parse_frame(signed)
        if envelope.type != SIGNED_TYPE:
            found = f"its TYPE is {envelope.type}" if envelope.type else "it has no TYPE"
            raise SignatureError(f"not a SIGNED frame ({found}); sign it with FrameSigner.sign_frame first")
        fields = _envelope_fields(envelope)
        algorithm, key_id = fields["ALG"], fields["KEY_ID"]
        if algorithm != self.algorithm:
            raise SignatureError(
                f"the frame is signed with {algorithm}, this verifier holds an {self.algorithm} key ({self.key_id})"
            )
        if key_id != self.key_id:
            raise SignatureError(f"the frame was signed with key {key_id}, this verifier holds {self.key_id}")
        signature = envelope.header["SIG"]
        unsigned = Frame({key: value for key, value in envelope.header.items() if key != "SIG"}, envelope.payload)
        if not isinstance(signature, Blob) or not self._key.verify(_signed_bytes(unsigned), signature.data):
            raise SignatureError(
                f"the signature of the frame signed by {fields['SIGNER']!r} at {fields['SIGNED_AT']} "
                "does not verify: the frame, the signer or the timestamp was altered after signing"
            )
        try:
            signed_at = parse_timestamp(fields["SIGNED_AT"])
        except ValueError as exc:
            # from None: the ValueError adds nothing the message does not already say
            raise SignatureError(f"the SIGNED frame's SIGNED_AT is unusable: {exc}") from None
        inner = envelope.payload[0]
        if not isinstance(inner, Frame):  # pragma: no cover - _envelope_fields checked it
            raise SignatureError("a SIGNED frame's payload must be the signed frame")
        return SignedFrame(
            frame=inner, signer_id=fields["SIGNER"], signed_at=signed_at, key_id=key_id, algorithm=algorithm
        )

    def _signing_key(self) -> Signer:
        if not isinstance(self._key, Signer):
            raise KeyFileError(
                f"this {type(self).__name__} holds only the public key {self.key_id}, which verifies but cannot "
                "sign; load the private key with KeyStore(workspace.keys_dir).signer(NAME)"
            )
        return self._key


def format_timestamp(timestamp: datetime | str | None = None) -> str:
    """ISO-8601 UTC with a ``Z``: ``2025-12-20T10:00:00Z`` (microseconds only when there are some)."""
    moment = datetime.now(UTC).replace(microsecond=0) if timestamp is None else parse_timestamp(timestamp)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def parse_timestamp(timestamp: datetime | str) -> datetime:
    """A timezone-aware UTC datetime from an aware datetime or an ISO-8601 string with an offset."""
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise ValueError(f"{timestamp!r} is not an ISO-8601 timestamp like 2025-12-20T10:00:00Z") from None
    elif isinstance(timestamp, datetime):
        moment = timestamp
    else:
        raise TypeError(f"a timestamp is a datetime or an ISO-8601 string, not {type(timestamp).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {timestamp!r} has no time zone; use UTC, e.g. 2025-12-20T10:00:00Z")
    return moment.astimezone(UTC)


def _signed_bytes(unsigned_envelope: Frame) -> bytes:
    return SIGNATURE_CONTEXT + unsigned_envelope.to_bytes()


def _envelope_fields(envelope: Frame) -> dict[str, str]:
    """The text header fields of a SIGNED envelope, after checking its whole shape."""
    unexpected = sorted(set(envelope.header) - set(ENVELOPE_FIELDS))
    if unexpected:
        raise SignatureError(f"a SIGNED frame has no field {unexpected[0]}; expected only {', '.join(ENVELOPE_FIELDS)}")
    fields: dict[str, str] = {}
    for key in ("ALG", "KEY_ID", "SIGNED_AT", "SIGNER"):
        value = envelope.header.get(key)
        if not isinstance(value, Text) or not value.text:
            raise SignatureError(f"the SIGNED frame's {key} field is missing or not text")
        fields[key] = value.text
    if not isinstance(envelope.header.get("SIG"), Blob):
        raise SignatureError("the SIGNED frame's SIG field is missing or not BLOB-T")
    if len(envelope.payload) != 1 or not isinstance(envelope.payload[0], Frame):
        raise SignatureError("a SIGNED frame's payload must be exactly one frame, the one that was signed")
    return fields

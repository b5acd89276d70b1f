"""The stable error codes of ForgeNumerics-S.

PARSE_001…007, VALIDATE_001…005, ENCODE_001/002, DECODE_001/002 and CANON_001/002 are the format's
codes since its first version, and keep their meanings, because tools outside this package match on
them.  Every code below is raised somewhere (except VALIDATE_001, reserved for a dictionary layer
ArcticCodex does not implement), and tests pin which input raises which code.  New codes are
appended, never renumbered.
"""

from __future__ import annotations

# --- parsing (ParseError) -------------------------------------------------------------------------
INVALID_FRAME_START = "PARSE_001"  # the text does not start with ⧆
INVALID_FRAME_END = "PARSE_002"  # the frame is not closed by ⧈
MISSING_HEADER_PAYLOAD_SEP = "PARSE_003"  # no ∷ between header and payload
MALFORMED_HEADER_FIELD = "PARSE_004"  # a header field is not ≛KEY⦙VALUE
UNKNOWN_NUMERIC_PROFILE = "PARSE_005"  # ≗ followed by profile trits that name no profile
INVALID_TRIT_SEQUENCE = "PARSE_006"  # a numeric body holds a symbol that is not a digit of its profile
UNEXPECTED_TOKEN = "PARSE_007"  # something other than a token where a token must stand
UNTERMINATED_LITERAL = "PARSE_008"  # ⟦ without its closing ⟧
DUPLICATE_HEADER_KEY = "PARSE_009"  # the same header key twice
TRAILING_TEXT = "PARSE_010"  # text after the closing ⧈ on the same line
BLOB_LENGTH = "PARSE_011"  # a BLOB-T body whose length is not a multiple of 4
RESERVED_SIGN = "PARSE_012"  # a sign trit other than ⊙ (plus) or ⊗ (minus)
EMPTY_TOKEN = "PARSE_013"  # ≛ or ≗ with nothing after it, or ⦙⦙
INVALID_WORD = "PARSE_014"  # a word holding whitespace, a control character or a reserved symbol
NESTING_TOO_DEEP = "PARSE_015"  # frames nested deeper than the parser allows
MALFORMED_NUMBER = "PARSE_016"  # a numeric body missing its ◦/◽ structure, or an inconsistent length
INVALID_LITERAL = "PARSE_017"  # a literal holding a line break or another control character
NOT_A_SINGLE_TOKEN = "PARSE_018"  # a token was expected and the text holds more (or less) than one
NUMBER_TOO_LONG = "PARSE_019"  # a digit run longer than the codec's cap (numbers.MAX_INT_DIGITS)

# --- schema validation (ValidationError) ----------------------------------------------------------
UNKNOWN_DICT_CODE = "VALIDATE_001"
UNSUPPORTED_PROFILE = "VALIDATE_002"  # a field holds a token kind its schema does not allow
TYPE_MISMATCH = "VALIDATE_003"  # a frame is not of the TYPE the caller asked for
REQUIRED_FIELD_MISSING = "VALIDATE_004"
SCHEMA_MISMATCH = "VALIDATE_005"  # the payload does not have the layout its TYPE prescribes
UNKNOWN_TYPE = "VALIDATE_006"  # no schema is known for this TYPE
UNEXPECTED_FIELD = "VALIDATE_007"  # a header key the schema does not define
VALUE_OUT_OF_RANGE = "VALIDATE_008"  # e.g. QUALITY outside [0, 1], a malformed hash or timestamp

# --- encoding (EncodeError) -----------------------------------------------------------------------
OUT_OF_RANGE = "ENCODE_001"  # e.g. a negative number for INT-U3
INVALID_ARGUMENT = "ENCODE_002"  # a value of the wrong type (bool, str for a number, …)

"""Finding secrets and personal data in a text: what kind, and where (character offsets), never what.

Secrets are found by Yelp's detect-secrets, used as a library: the curated patterns of its
regex-based plugins (AWS and GitHub keys, private key blocks, passwords in URLs, Slack, Stripe,
OpenAI, JWT, …), run offline on strings, with no baseline file and no verification call (its
verifiers would send the secret to the provider).  Its public-IP plugin is left out (addresses in
documentation are not credentials), and so are its entropy and keyword heuristics, which flag
ordinary prose.  A match is widened to the whole token (a JWT's signature, a private key's body up
to its END line), so that redacting it leaves no part of the secret behind.

Personal data: e-mail addresses (a pattern: they have no checksum), phone numbers by
``phonenumbers`` (Google's libphonenumber rules: a number must be valid for its region, not merely
look like one), IBANs by ``python-stdnum`` (country format and the mod-97 check digits) and payment
card numbers by the Luhn checksum (``python-stdnum``).  A number that fails its checksum is not
reported: an order number or a mistyped IBAN is not personal data, and flagging them would teach
users to turn the gate off.  None of these needs a model download.

Cost: a text with no digit run, no ``@`` and no secret prefix costs a few regex passes; the phone
matcher (slow: pure Python) runs only on the short windows a cheap pattern finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import phonenumbers
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector
from stdnum import iban, luhn

__all__ = ["PERSONAL_KINDS", "Finding", "SensitiveDataScanner"]

PERSONAL_KINDS = ("email", "phone_number", "iban", "payment_card")
DEFAULT_PHONE_REGION = "US"
"""Numbers written without a ``+country`` prefix are read as this region's (international ones always match)."""

_LEFT_OUT = frozenset({"Public IP (ipv4)"})
_RENAMED = {"Basic Auth Credentials": "password_in_url"}
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/=")
_LEADING = " \t\r\n\"'=:[`"
_TRAILING = " \t\r\n\"'@]`.,;"
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|Private-MAC: *[0-9a-fA-F]+")
_KEY_START = "-----"

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_DIGIT_RUN = re.compile(r"\d[\d ()./-]{5,}\d")  # where a card or phone number can be: 7 characters or more
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
# Guards: a pattern runs only on a text that holds one of its literals, or a word of 20 characters or more
# (every other secret pattern needs a run of 20 token characters); prose passes cheap checks instead of forty searches.
_LONG_WORD = 20
_LITERALS = {
    "artifactory_credentials": ("AKC", "AP"),
    "azure_storage_account_access_key": ("AccountKey=",),
    "password_in_url": ("://",),
    "json_web_token": ("eyJ",),
    "npm_tokens": ("_authToken",),
    "private_key": ("PRIVATE KEY", "PuTTY-User-Key-File"),
    "slack_token": ("xox", "hooks.slack.com"),
}
_NEED_LONG_RUN = frozenset(
    {
        "anthropic_api_key",
        "api_key",
        "aws_access_key",
        "cloudant_credentials",
        "discord_bot_token",
        "github_token",
        "gitlab_token",
        "google_api_key",
        "huggingface_token",
        "ibm_cloud_iam_key",
        "ibm_cos_hmac_credentials",
        "mailchimp_access_key",
        "openai_api_key",
        "openai_token",
        "pypi_token",
        "sendgrid_api_key",
        "softlayer_credentials",
        "square_oauth_secret",
        "stripe_access_key",
        "telegram_bot_token",
        "twilio_api_key",
    }
)
_MIN_PHONE_DIGITS = 7
# Model providers' keys — what an ArcticCodex user holds most — that detect-secrets' plugins do not know
# (its OpenAI pattern is the retired ``…T3BlbkFJ…`` form).  Tried in order: the specific before ``sk-``.
_PROVIDER_KEYS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("anthropic_api_key", re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}")),
    ("openai_api_key", re.compile(r"(?<![\w-])sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}")),
    ("api_key", re.compile(r"(?<![\w-])sk-[A-Za-z0-9]{32,}(?![\w-])")),  # OpenAI's older keys, DeepSeek's, …
    ("huggingface_token", re.compile(r"(?<![\w-])hf_[A-Za-z0-9]{30,}(?![\w-])")),
    ("google_api_key", re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])")),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found: its kind (``aws_access_key``, ``email``, …) and its span ``[start, end)`` in the text."""

    kind: str
    start: int
    end: int


def _kind_of(secret_type: str) -> str:
    return _RENAMED.get(secret_type) or re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _secret_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """(kind, pattern) for the model providers' keys, then every regex-based detect-secrets plugin but the ones
    left out above."""
    patterns: list[tuple[str, re.Pattern[str]]] = []
    plugins: dict[str, type] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in sorted(plugins.items()):
        if secret_type in _LEFT_OUT or not issubclass(plugin, RegexBasedDetector):
            continue
        denylist: Iterable[re.Pattern[str]] = plugin.denylist  # type: ignore[assignment]  # a class attribute
        patterns += [(_kind_of(secret_type), pattern) for pattern in denylist]
    return [*_PROVIDER_KEYS, *patterns]


class SensitiveDataScanner:
    """``scan(text)`` → the findings in ``text``, in order, none overlapping (secrets win over personal data)."""

    def __init__(self, *, phone_region: str = DEFAULT_PHONE_REGION) -> None:
        self.phone_region = phone_region
        secrets = _secret_patterns()
        self.kinds: tuple[str, ...] = (*sorted({kind for kind, _ in secrets}), *PERSONAL_KINDS)
        # patterns grouped by their guard (literals, or () for "a long word"), so a text pays one check a group
        guarded: dict[tuple[str, ...], list[tuple[str, re.Pattern[str]]]] = {}
        self._unguarded: list[tuple[str, re.Pattern[str]]] = []
        for kind, pattern in secrets:
            if kind in _LITERALS or kind in _NEED_LONG_RUN:
                guarded.setdefault(_LITERALS.get(kind, ()), []).append((kind, pattern))
            else:  # a plugin this module does not know (a newer detect-secrets): always run
                self._unguarded.append((kind, pattern))
        self._guarded = list(guarded.items())
        """Every kind this scanner can report (for counts that show zeros)."""

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        for finding in (*self._find_secrets(text), *self._find_personal(text)):
            if not any(finding.start < other.end and other.start < finding.end for other in found):
                found.append(finding)
        return sorted(found, key=lambda finding: finding.start)

    def _find_secrets(self, text: str) -> Iterator[Finding]:
        # 20 token characters in a row lie inside one whitespace-free word: str.split is C-fast, a regex is not
        long_word = max(map(len, text.split()), default=0) >= _LONG_WORD
        for literals, patterns in self._guarded:
            if not literals and not long_word:
                continue
            for literal in literals:  # a plain loop: this runs for every field of every pair
                if literal in text:
                    break
            else:
                if literals:
                    continue
            for kind, pattern in patterns:
                yield from self._matches(text, kind, pattern)
        for kind, pattern in self._unguarded:
            yield from self._matches(text, kind, pattern)

    @staticmethod
    def _matches(text: str, kind: str, pattern: re.Pattern[str]) -> Iterator[Finding]:
        for match in pattern.finditer(text):
            if kind == "private_key":
                yield Finding(kind, *_key_block(text, match.start(), match.end()))
                continue
            start, end = match.start(), match.end()
            if kind != "password_in_url":  # a token runs on past a lazy pattern's end (a JWT's signature)
                while end < len(text) and text[end] in _TOKEN_CHARS:
                    end += 1
            start, end = _trimmed(text, start, end)
            if end > start:
                yield Finding(kind, start, end)

    def _find_personal(self, text: str) -> Iterator[Finding]:
        if "@" in text:
            yield from (Finding("email", match.start(), match.end()) for match in _EMAIL.finditer(text))
        runs = [(run.start(), run.end()) for run in _DIGIT_RUN.finditer(text)]
        if not runs:  # every IBAN holds an account number: a run of seven digits or more (spaces allowed)
            return
        for match in _IBAN.finditer(text):
            if match.start() and text[match.start() - 1].isalnum():
                continue
            span = _valid_iban(text, match.start(), match.end())
            if span is not None:
                yield Finding("iban", *span)
        for start, end in runs:
            yield from self._find_numbers(text, start, end)

    def _find_numbers(self, text: str, start: int, end: int) -> Iterator[Finding]:
        """Card numbers (Luhn) and phone numbers (valid for their region) in one run of digits and separators."""
        for match in _CARD.finditer(text, start, end):
            digits = re.sub(r"\D", "", match.group())
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                yield Finding("payment_card", match.start(), match.end())
        if sum(character.isdigit() for character in text[start:end]) < _MIN_PHONE_DIGITS:
            return
        start = max(0, start - 2)  # a leading "+" or "(", and what precedes the number, which the matcher reads
        piece = text[start : end + 1]
        for number in phonenumbers.PhoneNumberMatcher(piece, self.phone_region, leniency=phonenumbers.Leniency.VALID):
            yield Finding("phone_number", start + number.start, start + number.end)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span less the quotes, separators and URL punctuation some plugins' patterns include."""
    if text.startswith("://", start):
        start += 3
    while start < end and text[start] in _LEADING:
        start += 1
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return start, end


def _key_block(text: str, start: int, end: int) -> tuple[int, int]:
    """A private key's whole block: from its ``-----BEGIN`` line to its END line (else to the text's end)."""
    line_start = text.rfind(_KEY_START, max(0, start - len(_KEY_START)), start + 1)
    begin = line_start if line_start != -1 else start
    closing = _KEY_END.search(text, end)
    return begin, closing.end() if closing is not None else len(text)


def _valid_iban(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The longest prefix of a candidate (whole groups) that is a valid IBAN: a sentence may run on after it."""
    candidate = text[start:end]
    cuts = [len(candidate)] + [index for index in range(len(candidate) - 1, 0, -1) if candidate[index] == " "]
    for cut in sorted(set(cuts), reverse=True):
        if iban.is_valid(candidate[:cut]):
            return start, start + cut
    return None

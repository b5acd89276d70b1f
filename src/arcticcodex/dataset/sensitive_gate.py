"""The sensitive-data gate: every pair is screened for secrets and personal data before it is signed.

Private documents hold API keys, passwords in connection strings, customers' e-mail addresses and
IBANs; a teacher quotes them, and a signed dataset would then carry them to a trainer, a model and
the Hub, with a signature vouching for them.  So each pair's texts — the instruction, the completion,
the conversation's earlier turns, the feedback, every revision and its claims, and the evidence the
pair cites (found by ``evidence_texts``) — pass :class:`~.sensitive_scanner.SensitiveDataScanner`
before the writer signs it, one pair at a time (nothing is held: the gate streams like the writer).

What happens to a pair with findings is the run's policy:

``block`` (the default)
    The pair goes to ``rejected.jsonl``, its feedback naming each finding's kind, field and
    position (``aws_access_key in completion at characters 12-32``); its texts are redacted there
    too, since ``rejected.jsonl`` is part of the dataset folder and is shared with it.  The default
    because it is the only policy that cannot publish a leak nobody looked at: a redaction may cut
    the answer's sense (a redacted address in a "how do I reach support" answer), so a person
    should decide to keep such pairs (``redact``) rather than get them by default.
``redact``
    Each finding is replaced with ``[REDACTED:kind]`` and the pair is signed with the new text (its
    content id follows the new text).  Evidence cannot be redacted — the pair binds it by its
    SHA-256, and ``dataset export --with-evidence`` would put it in front of the model — so a pair
    whose *evidence* holds a finding is blocked even here.
``allow``
    The pair is signed as it is; its findings are still counted.

Whatever the policy, :meth:`SensitiveDataGate.summary` counts findings per kind; the writer puts
that in the signed manifest (so the counts cannot be changed unnoticed) and the card, and
``dataset stats`` and the Studio show it.  The secret itself is never written anywhere: not in the
feedback, not in a count, not in a message.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from ..errors import UserError
from ..forge.record_frames import EvidenceRef
from .citations import EvidenceTexts
from .record import TrainingPair, Turn, pair_id_for
from .sensitive_scanner import Finding, SensitiveDataScanner

__all__ = [
    "DEFAULT_SENSITIVE_DATA_POLICY",
    "SENSITIVE_DATA_POLICIES",
    "FieldFinding",
    "SensitiveDataGate",
    "SensitiveDataPolicy",
    "redacted",
]

SensitiveDataPolicy = Literal["block", "redact", "allow"]
SENSITIVE_DATA_POLICIES: tuple[str, ...] = get_args(SensitiveDataPolicy)
DEFAULT_SENSITIVE_DATA_POLICY: SensitiveDataPolicy = "block"
BLOCKED_NOTE = "blocked by the sensitive-data gate"
_EVIDENCE_CACHE = 4096  # evidence chunks whose findings are remembered (pairs often cite the same chunks)


@dataclass(frozen=True, slots=True)
class FieldFinding:
    """A finding in one field of a pair: ``completion``, ``context[0]``, ``revisions[1].claims[0]``, ``evidence[2]``."""

    kind: str
    field: str
    start: int
    end: int

    def describe(self) -> str:
        return f"{self.kind} in {self.field} at characters {self.start}-{self.end}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "start": self.start, "end": self.end}


def redacted(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with each finding replaced by ``[REDACTED:kind]`` (findings do not overlap)."""
    pieces, position = [], 0
    for finding in sorted(findings, key=lambda finding: finding.start):
        pieces += [text[position : finding.start], f"[REDACTED:{finding.kind}]"]
        position = finding.end
    return "".join([*pieces, text[position:]])


class SensitiveDataGate:
    """Screen pairs under ``policy``; ``evidence_texts(ref)`` finds an evidence item's text (None: not found)."""

    def __init__(
        self,
        policy: str = DEFAULT_SENSITIVE_DATA_POLICY,
        *,
        evidence_texts: EvidenceTexts | None = None,
        scanner: SensitiveDataScanner | None = None,
    ) -> None:
        if policy not in SENSITIVE_DATA_POLICIES:
            raise UserError(
                f"sensitive_data must be one of {', '.join(SENSITIVE_DATA_POLICIES)}, not {policy!r}",
                parameters=["sensitive_data"],
            )
        self.policy = policy
        self.evidence_texts = evidence_texts
        self.scanner = scanner or SensitiveDataScanner()
        self.findings: Counter[str] = Counter()
        self.pairs_with_findings = 0
        self.blocked = 0
        self.redacted = 0
        self._evidence: OrderedDict[str, tuple[Finding, ...]] = OrderedDict()

    def screen_all(self, pairs: Iterable[TrainingPair]) -> Iterator[TrainingPair]:
        """Each pair as it must be signed (streamed: one pair in memory at a time)."""
        for pair in pairs:
            yield self.screen(pair)

    def screen(self, pair: TrainingPair) -> TrainingPair:
        """The pair as the policy lets it be signed: as it is, redacted, or redacted and rejected."""
        texts = _Texts(pair, self.scanner)
        evidence = [
            FieldFinding(finding.kind, f"evidence[{number}]", finding.start, finding.end)
            for number, ref in enumerate(pair.evidence)
            for finding in self._evidence_findings(ref)
        ]
        found = texts.found + evidence
        if not found:
            return pair
        self.pairs_with_findings += 1
        self.findings.update(finding.kind for finding in found)
        if self.policy == "allow":
            return pair
        clean = texts.redacted_pair()
        if self.policy == "redact" and not evidence:
            self.redacted += 1
            return clean
        self.blocked += 1
        why = "; ".join(finding.describe() for finding in found)
        if self.policy == "redact":
            why += " (evidence is bound by its hash and cannot be redacted; remove it from the vault)"
        feedback = f"{BLOCKED_NOTE}: {why}" + (f". Earlier feedback: {clean.feedback}" if clean.feedback else "")
        return replace(clean, accepted=False, feedback=feedback)

    def summary(self) -> dict[str, Any]:
        """What the manifest records: the policy, findings per kind, and what became of the pairs."""
        return {
            "policy": self.policy,
            "findings": dict(sorted(self.findings.items())),
            "pairs_with_findings": self.pairs_with_findings,
            "pairs_blocked": self.blocked,
            "pairs_redacted": self.redacted,
        }

    def _evidence_findings(self, ref: EvidenceRef) -> tuple[Finding, ...]:
        if self.evidence_texts is None:
            return ()
        known = self._evidence.get(ref.sha256)
        if known is not None:
            self._evidence.move_to_end(ref.sha256)
            return known
        text = self.evidence_texts(ref)
        findings = tuple(self.scanner.scan(text)) if text else ()
        self._evidence[ref.sha256] = findings
        if len(self._evidence) > _EVIDENCE_CACHE:
            self._evidence.popitem(last=False)
        return findings


class _Texts:
    """A pair's free texts, each scanned once, and the pair rebuilt with them redacted."""

    def __init__(self, pair: TrainingPair, scanner: SensitiveDataScanner) -> None:
        self.pair = pair
        self.scans: dict[str, tuple[str, list[Finding]]] = {}
        seen: dict[str, list[Finding]] = {}  # the last revision's text is the completion: scan a text once
        for name, text in self._fields():
            findings = seen.get(text)
            if findings is None:
                findings = seen[text] = scanner.scan(text) if text else []
            if findings:
                self.scans[name] = (text, findings)
        self.found = [
            FieldFinding(finding.kind, name, finding.start, finding.end)
            for name, (_, findings) in self.scans.items()
            for finding in findings
        ]

    def _fields(self) -> Iterator[tuple[str, str]]:
        pair = self.pair
        yield "instruction", pair.instruction
        yield "completion", pair.completion
        yield "feedback", pair.feedback
        for number, turn in enumerate(pair.context):
            yield f"context[{number}]", turn.content
        for number, revision in enumerate(pair.revisions):
            yield f"revisions[{number}].text", revision.text
            for claim_number, claim in enumerate(revision.claims):
                yield f"revisions[{number}].claims[{claim_number}]", claim

    def text(self, name: str, original: str) -> str:
        scanned = self.scans.get(name)
        return redacted(*scanned) if scanned is not None else original

    def redacted_pair(self) -> TrainingPair:
        pair = self.pair
        context = tuple(
            Turn(turn.role, self.text(f"context[{number}]", turn.content)) for number, turn in enumerate(pair.context)
        )
        revisions = tuple(
            replace(
                revision,
                text=self.text(f"revisions[{number}].text", revision.text),
                claims=tuple(
                    self.text(f"revisions[{number}].claims[{claim_number}]", claim)
                    for claim_number, claim in enumerate(revision.claims)
                ),
            )
            for number, revision in enumerate(pair.revisions)
        )
        instruction = self.text("instruction", pair.instruction)
        completion = self.text("completion", pair.completion)
        return replace(
            pair,
            id=pair_id_for(instruction, completion, pair.evidence, context),
            instruction=instruction,
            completion=completion,
            feedback=self.text("feedback", pair.feedback),
            context=context,
            revisions=revisions,
        )


def sensitive_data_lines(summary: Any) -> list[str]:
    """The card's section on the gate: the policy, what became of the pairs, findings per kind (none: empty)."""
    if not isinstance(summary, dict):
        return []
    findings = summary.get("findings") or {}
    rows = [f"| {kind} | {count} |" for kind, count in sorted(findings.items())] or ["| – | 0 |"]
    return [
        "## Secrets and personal data",
        "",
        f"Every pair and its evidence were scanned before signing; policy `{summary.get('policy')}`: "
        f"{summary.get('pairs_with_findings', 0)} pair(s) held findings, {summary.get('pairs_blocked', 0)} "
        f"blocked (in rejected.jsonl, redacted), {summary.get('pairs_redacted', 0)} redacted.",
        "",
        "| kind | findings |",
        "|---|---|",
        *rows,
        "",
    ]


def sensitive_data_text(summary: Any) -> str:
    """One line for ``dataset stats`` and the Studio: the policy, the pairs, the findings per kind."""
    if not isinstance(summary, dict):
        return "sensitive data: not screened when the dataset was written"
    findings = summary.get("findings") or {}
    if not findings:
        return f"sensitive data (policy {summary.get('policy')}): none found"
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(findings.items()))
    return (
        f"sensitive data (policy {summary.get('policy')}): {summary.get('pairs_with_findings', 0)} pair(s) held "
        f"findings, {summary.get('pairs_blocked', 0)} blocked, {summary.get('pairs_redacted', 0)} redacted; {kinds}"
    )

"""Secrets and personal data never reach a signed dataset unnoticed (issue 17, item 3).

Each kind is planted in a teacher's answer (the fake OpenAI-compatible server over real HTTP), a real
``arcticcodex distill`` publishes the run, and the signed folder is read back: under ``block`` the
pair is in ``rejected.jsonl`` with the finding's kind, field and position and not one fragment of
the secret is anywhere in the folder; under ``redact`` the signed record holds the placeholder and
verifies; under ``allow`` it is signed as it is, and counted.  Numbers that only look like an IBAN or
a card number (their checksum fails) are not flagged.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from arcticcodex.dataset import verify_dataset
from arcticcodex.dataset.sensitive_gate import redacted
from arcticcodex.dataset.sensitive_scanner import SensitiveDataScanner
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_studio import get

EVIDENCE = "The support desk answers questions about accounts, payments and access."
PRIVATE_KEY_BODY = "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END RSA PRIVATE KEY-----"
# kind → (the whole planted text, the secret part of it that must never be published)
PLANTED: dict[str, tuple[str, str]] = {
    "aws_access_key": ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "github_token": ("ghp_" + "Zq8" * 12, "ghp_" + "Zq8" * 12),
    "private_key": (PRIVATE_KEY, PRIVATE_KEY_BODY),
    "password_in_url": ("postgres://admin:Tr0ub4dor3xyz@db.internal.example:5432/app", "admin:Tr0ub4dor3xyz"),
    "email": ("jane.roe@example.org", "jane.roe@example.org"),
    "phone_number": ("+1 650-253-0000", "650-253-0000"),
    "iban": ("DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
    "payment_card": ("4111 1111 1111 1111", "4111 1111 1111 1111"),
}
LOOK_ALIKES = "Reference GB82 WEST 1234 5698 7654 33 and order 5555 5555 5555 4445 are not real."
EVIDENCE_EMAIL = "billing.lead@example.net"


def _answer(kind: str) -> str:
    return f"Use this to reach the {kind.replace('_', ' ')}: {PLANTED[kind][0]} as the desk said [1]."


def _span(kind: str) -> str:
    """What the gate finds of a planted text: all of it, but of a URL only the user and password."""
    planted, secret = PLANTED[kind]
    return secret if kind == "password_in_url" else planted


ANSWERS = [_answer(kind) for kind in PLANTED] + [LOOK_ALIKES + " [1]", "The desk answers account questions [1]."]


def _prompts(path: Path) -> Path:
    prompts: list[dict[str, Any]] = [
        {"instruction": f"How do I reach the {kind.replace('_', ' ')}?", "evidence": EVIDENCE} for kind in PLANTED
    ]
    prompts += [
        {"instruction": "Which references are real?", "evidence": EVIDENCE},
        {"instruction": "What does the support desk answer?", "evidence": EVIDENCE},
        {"instruction": "Who handles billing?", "evidence": f"Billing is run by {EVIDENCE_EMAIL}, on weekdays."},
    ]
    path.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts))
    return path


def _root(acx: Acx, tmp_path: Path, server: FakeOpenAIServer, extra_config: str = "") -> Path:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n' + extra_config)
    acx("-w", workspace.root, "keys", "new", "dataset")
    acx.add_teacher(workspace.root, server, name="gpu", model="fake-model")
    return workspace.root


SUMMARIES: list[str] = []  # what each run printed, last last


def _distill(acx: Acx, tmp_path: Path, server: FakeOpenAIServer, *options: str, config: str = "") -> Path:
    """A real run: the teacher drafts each answer (planted secrets included), the default critic accepts it."""
    root = _root(acx, tmp_path, server, config)
    replies: list[dict[str, Any] | str] = [{"text": answer, "changes": []} for answer in [*ANSWERS, "Ask billing [1]."]]
    server.script("drafter", replies)
    out = tmp_path / "dataset"
    args: list[str | Path] = ["distill", "--prompts", _prompts(tmp_path / "prompts.jsonl"), "--out", out]
    args += ["--teachers", "gpu"]
    ran = acx("-w", root, *args, "--drafter", "gpu", "--concurrency", "1", "--keep-near-duplicates", *options)
    SUMMARIES.append(ran.stdout)
    assert verify_dataset(out).ok, verify_dataset(out).problems
    assert acx("-w", root, "dataset", "verify", out).output.startswith("OK: intact, signer trusted")
    return out


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _folder_text(out: Path) -> str:
    """Every byte of every file in the dataset folder, as text (JSON escapes undone, so a line break matches)."""
    texts = []
    for path in sorted(out.rglob("*")):
        if path.is_file():
            raw = path.read_text(encoding="utf-8", errors="replace")
            texts += [raw, raw.replace("\\n", "\n")]
    return "\n".join(texts)


def _fragments(secret: str, width: int = 8) -> list[str]:
    """Every piece of ``secret`` ``width`` characters long: not even part of a secret may be published."""
    return [secret[start : start + width] for start in range(len(secret) - width + 1)] or [secret]


def _assert_no_secret_in(out: Path) -> None:
    text = _folder_text(out)
    for kind, (_, secret) in PLANTED.items():
        leaked = [piece for piece in _fragments(secret) if piece in text]
        assert not leaked, f"{kind}: {leaked[:3]} found in {out}"
    assert EVIDENCE_EMAIL not in text


def test_block_rejects_each_kind_with_where_it_was_and_publishes_no_byte_of_it(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    out = _distill(acx, tmp_path, server)  # block is the default
    said = SUMMARIES[-1]
    assert "secrets and personal data: " in said and " blocked (in rejected.jsonl, redacted)" in said

    train = _records(out / "train.jsonl")
    assert [record["completion"] for record in train] == ANSWERS[-2:]  # the look-alikes and the clean answer
    rejected = {record["instruction"]: record for record in _records(out / "rejected.jsonl")}
    assert len(rejected) == len(PLANTED) + 1
    for kind in PLANTED:
        record = rejected[f"How do I reach the {kind.replace('_', ' ')}?"]
        span = _span(kind)
        start = _answer(kind).index(span)
        assert record["accepted"] is False
        assert record["feedback"].startswith("blocked by the sensitive-data gate: ")
        assert f"{kind} in completion at characters {start}-{start + len(span)}" in record["feedback"]
        assert f"[REDACTED:{kind}]" in record["completion"]  # the rejected copy is redacted too
    billing = rejected["Who handles billing?"]
    assert "email in evidence[0] at characters 18-42" in billing["feedback"]
    _assert_no_secret_in(out)

    manifest = json.loads((out / "manifest.json").read_text())
    gate = manifest["sensitive_data"]
    described = re.findall(
        r"(\w+) in [\w\[\].]+ at characters \d+-\d+", " ".join(r["feedback"] for r in rejected.values())
    )
    assert gate["findings"] == {kind: described.count(kind) for kind in sorted(set(described))}
    assert set(gate["findings"]) == set(PLANTED)  # every kind found; the look-alikes were not
    assert (gate["policy"], gate["pairs_with_findings"], gate["pairs_blocked"], gate["pairs_redacted"]) == (
        "block",
        len(PLANTED) + 1,
        len(PLANTED) + 1,
        0,
    )
    card = (out / "README.md").read_text()
    assert (
        "## Secrets and personal data" in card and f"| aws_access_key | {gate['findings']['aws_access_key']} |" in card
    )
    stats = acx("-w", tmp_path / "ws", "dataset", "stats", out).stdout
    assert (
        f"sensitive data (policy block): {len(PLANTED) + 1} pair(s) held findings, {len(PLANTED) + 1} blocked" in stats
    )
    assert f"iban {gate['findings']['iban']}" in stats


def test_redact_signs_the_placeholder_and_the_record_verifies(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    out = _distill(acx, tmp_path, server, "--sensitive-data", "redact")

    train = {record["instruction"]: record for record in _records(out / "train.jsonl")}
    for kind in PLANTED:
        record = train[f"How do I reach the {kind.replace('_', ' ')}?"]
        assert record["completion"] == _answer(kind).replace(_span(kind), f"[REDACTED:{kind}]")
        assert f"[REDACTED:{kind}]" in record["messages"][-1]["content"]
        assert all(f"[REDACTED:{kind}]" in revision["text"] for revision in record["revisions"])
    assert train["Which references are real?"]["completion"] == ANSWERS[len(PLANTED)]  # look-alikes kept as written
    # evidence is bound by its hash: it cannot be redacted, so that pair is still blocked, saying why
    (billing,) = [r for r in _records(out / "rejected.jsonl") if r["instruction"] == "Who handles billing?"]
    assert "cannot be redacted" in billing["feedback"] and "email in evidence[0]" in billing["feedback"]
    _assert_no_secret_in(out)
    gate = json.loads((out / "manifest.json").read_text())["sensitive_data"]
    assert (gate["policy"], gate["pairs_redacted"], gate["pairs_blocked"]) == ("redact", len(PLANTED), 1)


def test_allow_from_the_config_table_signs_as_is_and_counts(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    out = _distill(acx, tmp_path, server, config='\n[distill]\nsensitive_data = "allow"\n')

    train = {record["instruction"]: record for record in _records(out / "train.jsonl")}
    assert len(train) == len(ANSWERS) + 1 and not (out / "rejected.jsonl").read_text()
    for kind in PLANTED:
        assert train[f"How do I reach the {kind.replace('_', ' ')}?"]["completion"] == _answer(kind)
    gate = json.loads((out / "manifest.json").read_text())["sensitive_data"]
    assert set(gate["findings"]) == set(PLANTED)
    assert (gate["policy"], gate["pairs_with_findings"], gate["pairs_blocked"]) == ("allow", len(PLANTED) + 1, 0)
    assert json.loads((out / "manifest.json").read_text())["recipe"]["sensitive_data"] == "allow"
    stats = acx("-w", tmp_path / "ws", "dataset", "stats", out).stdout
    assert "sensitive data (policy allow): " in stats and "0 blocked, 0 redacted" in stats


def test_the_counts_are_signed(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    """Lowering a count in the manifest is caught like an edited record."""
    out = _distill(acx, tmp_path, server, "--sensitive-data", "allow")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sensitive_data"]["findings"]["aws_access_key"] = 0
    manifest_path.write_text(json.dumps(manifest, indent=2))
    result = acx("-w", tmp_path / "ws", "dataset", "verify", out, code=1)
    assert "FAILED: NOT intact" in result.output and "manifest" in result.output


def test_an_unknown_policy_in_the_config_is_refused_with_its_line(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = _root(acx, tmp_path, server, '\n[distill]\nsensitive_data = "hide"\n')
    prompts = _prompts(tmp_path / "prompts.jsonl")
    result = acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", code=1)
    assert "sensitive_data" in result.output and '"block", "redact" or "allow"' in result.output
    assert re.search(r"arcticcodex\.toml:\d+", result.output)
    assert not server.requests and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["hide"])
def test_an_unknown_policy_on_the_command_line_is_refused(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx, option: str
) -> None:
    root = _root(acx, tmp_path, server)
    prompts = _prompts(tmp_path / "prompts.jsonl")
    result = acx(
        "-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", "--sensitive-data", option, code=2
    )
    assert "--sensitive-data" in result.output and "'block', 'redact', 'allow'" in result.output
    assert not server.requests


@pytest.mark.parametrize(
    "text",
    [
        "Reference DE88 3704 0044 0532 0130 00 is a mistyped IBAN.",  # mod-97 fails
        "Order 4111 1111 1111 1112 shipped.",  # Luhn fails
        "In 2024 the desk answered 1234567 questions, 42% by e-mail.",
        "Call extension 12-34 or see page 2024-01-15.",
    ],
)
def test_look_alikes_that_fail_their_checksum_are_not_findings(text: str) -> None:
    assert SensitiveDataScanner().scan(text) == []


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("openai_api_key", "sk-proj-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdefABCDEF"),
        ("api_key", "sk-" + "4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"),  # DeepSeek's shape
        ("anthropic_api_key", "sk-ant-api03-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
        ("huggingface_token", "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"),
        ("google_api_key", "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"),
    ],
)
def test_the_keys_of_model_providers_are_found_whole(kind: str, key: str) -> None:
    """The keys an ArcticCodex user holds most (the teachers'), which detect-secrets' plugins do not know."""
    text = f"export KEY={key}\nthen call the API"
    assert [(finding.kind, text[finding.start : finding.end]) for finding in SensitiveDataScanner().scan(text)] == [
        (kind, key)
    ]


def test_a_finding_covers_the_whole_token_so_redaction_leaves_none_of_it() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"
    text = f"Header: Bearer {jwt} then {PRIVATE_KEY} done"
    findings = SensitiveDataScanner().scan(text)
    assert [(finding.kind, text[finding.start : finding.end]) for finding in findings] == [
        ("json_web_token", jwt),
        ("private_key", PRIVATE_KEY),
    ]
    assert redacted(text, findings) == "Header: Bearer [REDACTED:json_web_token] then [REDACTED:private_key] done"


def test_the_studio_dataset_page_shows_the_counts_and_why_a_pair_was_blocked(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    out = _distill(acx, tmp_path, server)
    manifest = json.loads((out / "manifest.json").read_text())
    app = create_app(Workspace.open(tmp_path / "ws"))
    page = get(app, f"/datasets/{manifest['recipe']['run_id']}").text
    summary = re.search(r'<p id="sensitive-summary">([^<]*)</p>', page)
    assert summary is not None and summary.group(1).startswith(
        f"sensitive data (policy block): {len(PLANTED) + 1} pair(s) held findings, {len(PLANTED) + 1} blocked"
    )
    for kind, count in manifest["sensitive_data"]["findings"].items():
        assert f'<tr><td>{kind}</td><td class="number">{count}</td></tr>' in page
    rejected = get(app, f"/datasets/{manifest['recipe']['run_id']}?split=rejected").text
    assert "email in evidence[0] at characters 18-42" in rejected
    assert not any(
        piece in html.unescape(page + rejected) for _, secret in PLANTED.values() for piece in _fragments(secret)
    )


def test_a_resumed_run_keeps_the_policy_it_was_started_with(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    out = _distill(acx, tmp_path, server)
    before = (out / "manifest.json").read_bytes()
    result = acx("-w", tmp_path / "ws", "distill", "--resume", "latest", "--sensitive-data", "allow", code=2)
    assert "only --budget-usd may change" in result.output and "--sensitive-data" in result.output
    assert (out / "manifest.json").read_bytes() == before

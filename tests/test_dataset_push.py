"""``arcticcodex dataset push``: a verified dataset reaches the Hub intact, and nothing else ever does.

Against ``tests/fakes/hub_server.py``: the real ``huggingface_hub`` client over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import DatasetCard, hf_hub_url

from arcticcodex.dataset import hub as hub_module
from arcticcodex.dataset.hub import published_files, push_dataset
from arcticcodex.errors import HubUnavailableError
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.trust import KeyRing, TrustedKeys
from arcticcodex.retry import RetryPolicy
from conftest import Acx
from fakes.hub_server import FakeHubServer
from fakes.openai_server import FakeOpenAIServer
from test_dataset_verify import SIGNER, build
from test_distill_run import PROMPTS, make_root, write_prompts

TOKEN = "hf_test_0123456789abcdefSECRET"
REPO = "acme/otter-facts"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubServer]:
    with FakeHubServer(token=TOKEN) as fake:
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setattr(hub_module, "DEFAULT_RETRY", FAST)  # our own constant: the waits, not the HTTP
        yield fake


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A signed dataset of a trusted signer, with an unsigned export and a note beside its files."""
    out = build(tmp_path / "otter-facts")
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    (out / "export-messages.jsonl").write_text('{"messages": []}\n', encoding="utf-8")
    (out / "notes.txt").write_text("private notes, never published\n", encoding="utf-8")
    return out


def no_token_in(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text


def download(hub: FakeHubServer, names: list[str], into: Path) -> Path:
    """Fetch each file back as a client of the Hub does (the resolve URL, with the token)."""
    for name in names:
        url = hf_hub_url(REPO, name, repo_type="dataset", endpoint=hub.url)
        response = httpx2.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        response.raise_for_status()
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        (into / name).write_bytes(response.content)
    return into


def test_push_uploads_every_signed_file_byte_for_byte_and_the_download_verifies(
    dataset: Path, hub: FakeHubServer, acx: Acx, tmp_path: Path
) -> None:
    result = acx("dataset", "push", dataset, "--repo", REPO)
    assert f"Published 6 records, 1 rejected (5 files, signer {SIGNER.key_id[:16]}…) to {hub.url}" in result.stdout
    assert f"/datasets/{REPO}" in result.stdout and "commit " in result.stdout
    no_token_in(result.stdout, result.stderr)

    repo = hub.repos[REPO]
    signed = ["manifest.json", "train.jsonl", "rejected.jsonl", "README.md", f"keys/{SIGNER.key_id}.pub"]
    assert sorted(repo.files) == sorted(signed)  # the export and the notes stayed home
    for name in signed:
        assert repo.files[name] == (dataset / name).read_bytes(), name
    assert repo.private is False and len(repo.commits) == 1  # one commit: all or nothing
    assert {request.authorization for request in hub.requests} == {f"Bearer {TOKEN}"}
    assert [request.path for request in hub.requests] == [
        "/api/repos/create",
        "/api/validate-yaml",  # the Hub checks the card's YAML before anything is uploaded
        f"/api/datasets/{REPO}/preupload/main",
        f"/api/datasets/{REPO}/commit/main",
    ]

    assert hub.validated_cards == [(dataset / "README.md").read_text(encoding="utf-8")]
    card = DatasetCard(repo.files["README.md"].decode("utf-8"))  # the Hub's own parser reads the card
    assert card.data.to_dict()["configs"][0]["data_files"][0] == {"split": "train", "path": "train.jsonl"}

    copy = download(hub, signed, tmp_path / "downloaded")
    verified = acx("dataset", "verify", copy)
    assert verified.stdout.startswith("OK: intact, signer trusted (trusted key 'tests'")


def test_private_and_a_second_push_of_the_same_dataset_commits_nothing_new(dataset: Path, hub: FakeHubServer) -> None:
    first = push_dataset(dataset, REPO, private=True, environ=dict(os.environ), keyring=KeyRing.for_user(None))
    assert hub.repos[REPO].private is True and first.private
    again = push_dataset(dataset, REPO, private=True, environ=dict(os.environ), keyring=KeyRing.for_user(None))
    assert len(hub.repos[REPO].commits) == 1  # every file unchanged: no empty commit
    assert again.commit_oid == first.commit_oid


def test_no_token_is_a_clear_error_naming_hf_token_and_nothing_is_sent(
    dataset: Path, hub: FakeHubServer, acx: Acx
) -> None:
    result = acx("dataset", "push", dataset, "--repo", REPO, env={"HF_TOKEN": None}, code=1)
    assert "no Hugging Face token: set the environment variable HF_TOKEN to a token with write access" in result.stderr
    assert hub.requests == []


def test_a_refused_token_is_a_clear_error_that_never_shows_the_token(
    dataset: Path, hub: FakeHubServer, acx: Acx
) -> None:
    wrong = "hf_wrong_token_that_must_not_leak_42"
    result = acx("dataset", "push", dataset, "--repo", REPO, env={"HF_TOKEN": wrong}, code=1)
    assert f"publishing to the dataset repository {REPO} failed: the Hub at {hub.url} answered 401" in result.stderr
    assert "the token in HF_TOKEN was refused: it is wrong, expired or revoked" in result.stderr
    assert "the dataset is NOT published" in result.stderr
    assert wrong not in result.output and TOKEN not in result.output
    assert hub.repos == {}
    assert {request.authorization for request in hub.requests} == {f"Bearer {wrong}"}  # it was sent, to the Hub only


def test_a_hub_that_is_down_is_retried_then_named_and_nothing_is_claimed(
    dataset: Path, hub: FakeHubServer, acx: Acx
) -> None:
    hub.down = True
    result = acx("dataset", "push", dataset, "--repo", REPO, code=1)
    assert (
        f"publishing to the dataset repository {REPO} failed after 4 attempt(s): the Hub at {hub.url} answered 503"
        in result.stderr
    )
    assert "the dataset is NOT published; check HF_ENDPOINT and the Hub's status, then push again" in result.stderr
    assert "Published" not in result.output
    assert [request.path for request in hub.requests] == ["/api/repos/create"] * 4
    assert hub.repos == {}


def test_an_unreachable_hub_is_retried_then_named(dataset: Path, tmp_path: Path, acx: Acx) -> None:
    with FakeHubServer(token=TOKEN) as gone:
        address = gone.url  # a port nothing listens on once the server has stopped
    with pytest.raises(HubUnavailableError) as caught:
        push_dataset(
            dataset,
            REPO,
            keyring=KeyRing.for_user(None),
            environ={"HF_TOKEN": TOKEN, "HF_ENDPOINT": address},
            retry=FAST,
        )
    assert f"failed after 4 attempt(s): the Hub at {address} could not be reached" in str(caught.value)
    assert caught.value.status == 0 and TOKEN not in str(caught.value)


def test_a_hub_that_recovers_within_the_retries_gets_the_dataset(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    hub.fail(503, times=2, path="/api/repos/create")
    acx("dataset", "push", dataset, "--repo", REPO)
    assert [request.path for request in hub.requests][:3] == ["/api/repos/create"] * 3
    assert hub.repos[REPO].files["train.jsonl"] == (dataset / "train.jsonl").read_bytes()


def test_a_refused_commit_publishes_nothing_and_says_so(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    hub.fail(403, path="/commit/")
    result = acx("dataset", "push", dataset, "--repo", REPO, code=1)
    assert f"the Hub at {hub.url} answered 403" in result.stderr
    assert f"the token in HF_TOKEN may not write to the dataset repository {REPO}" in result.stderr
    assert "the dataset is NOT published" in result.stderr and "Published" not in result.output
    assert hub.repos[REPO].files == {} and hub.repos[REPO].commits == []  # created, but nothing half-published
    acx("dataset", "push", dataset, "--repo", REPO)  # the same command again finishes the job
    assert hub.repos[REPO].files["README.md"] == (dataset / "README.md").read_bytes()


def test_a_tampered_dataset_is_refused_before_anything_is_sent(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    train = dataset / "train.jsonl"
    train.write_bytes(train.read_bytes().replace(b"Question 2?", b"Question 7?"))
    result = acx("dataset", "push", dataset, "--repo", REPO, "--allow-untrusted", code=1)
    assert f"the dataset in {dataset} is NOT intact (" in result.stderr
    assert "the first: train.jsonl:3 (record tp-" in result.stderr and "nothing was published" in result.stderr
    assert hub.requests == []


def test_an_edited_card_is_refused_before_anything_is_sent(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    card = dataset / "README.md"
    text = card.read_text(encoding="utf-8")
    relicensed = text.replace('license: "other"', 'license: "mit"')
    assert relicensed != text
    card.write_text(relicensed, encoding="utf-8")
    result = acx("dataset", "push", dataset, "--repo", REPO, code=1)
    assert "README.md: the dataset card was edited after the dataset was signed" in result.stderr
    assert hub.requests == []


def test_an_untrusted_signer_is_refused_unless_allowed(tmp_path: Path, hub: FakeHubServer, acx: Acx) -> None:
    stranger = build(tmp_path / "stranger", signer=Ed25519Signer.generate())
    result = acx("dataset", "push", stranger, "--repo", REPO, code=2)
    assert f"the dataset in {stranger} is intact, but its signer is NOT trusted" in result.stderr
    assert "or pass --allow-untrusted to use it anyway" in result.stderr
    assert hub.requests == []
    allowed = acx("dataset", "push", stranger, "--repo", REPO, "--allow-untrusted")
    assert "NOT trusted) to " in allowed.stdout
    assert sorted(hub.repos[REPO].files) == sorted(published_files(stranger))


def test_a_symlinked_record_file_is_not_followed_or_sent(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    secret = dataset.parent / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n", encoding="utf-8")
    (dataset / "rejected.jsonl").unlink()
    (dataset / "rejected.jsonl").symlink_to(secret)
    result = acx("dataset", "push", dataset, "--repo", REPO, code=1)
    assert "rejected.jsonl is a symbolic link; it is not followed" in result.stderr
    assert "nothing was published: see `arcticcodex dataset verify" in result.stderr
    assert hub.requests == []


def test_a_repository_id_that_is_not_org_slash_name_is_named_as_the_option(
    dataset: Path, hub: FakeHubServer, acx: Acx
) -> None:
    result = acx("dataset", "push", dataset, "--repo", "just-a-name", code=1)
    assert "--repo 'just-a-name' is not a Hub repository id: write ORG/NAME" in result.stderr
    assert hub.requests == []


def test_distill_then_push_the_users_steps_end_to_end(
    tmp_path: Path, server: FakeOpenAIServer, hub: FakeHubServer, acx: Acx
) -> None:
    """The user's steps: set a license, distill with a teacher, push; the Hub gets the card the run signed."""
    root = make_root(acx, tmp_path, server)
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[distill]\nlicense = "cc-by-4.0"\nlanguage = ["en", "de"]\n')
    prompts = write_prompts(tmp_path / "prompts.jsonl", PROMPTS)
    out = tmp_path / "otter-facts"
    acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--teachers", "gpu", "--drafter", "gpu")
    acx("-w", root, "dataset", "push", out, "--repo", REPO, "--private")

    repo = hub.repos[REPO]
    assert repo.private is True
    data = DatasetCard(repo.files["README.md"].decode("utf-8")).data.to_dict()
    manifest = json.loads(repo.files["manifest.json"])
    assert (data["license"], data["language"], data["size_categories"]) == ("cc-by-4.0", ["en", "de"], ["n<1K"])
    assert data["arcticcodex"]["teachers"] == [{"name": "gpu", "model": "fake-model"}]
    assert data["arcticcodex"]["signing_key_id"] == manifest["key_id"]
    assert data["arcticcodex"]["merkle_root"] == manifest["merkle_root"]
    for name in published_files(out):
        assert repo.files[name] == (out / name).read_bytes(), name


def test_a_hub_that_fails_mid_upload_is_retried_by_its_client(dataset: Path, hub: FakeHubServer, acx: Acx) -> None:
    hub.fail(503, times=1, path="/preupload/")  # huggingface_hub itself retries the upload's requests
    acx("dataset", "push", dataset, "--repo", REPO)
    paths = [request.path for request in hub.requests]
    assert paths.count(f"/api/datasets/{REPO}/preupload/main") == 2 and len(hub.repos[REPO].commits) == 1
    assert hub.repos[REPO].files["train.jsonl"] == (dataset / "train.jsonl").read_bytes()


def test_pushing_the_current_folder(
    dataset: Path, hub: FakeHubServer, acx: Acx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dataset)
    acx("dataset", "push", ".", "--repo", REPO)
    assert sorted(hub.repos[REPO].files) == sorted(published_files(dataset))

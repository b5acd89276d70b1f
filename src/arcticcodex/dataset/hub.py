"""Publishing a verified dataset folder to the Hugging Face Hub as a dataset repository.

Why verify a copy: what is uploaded must be exactly what was verified.  The folder's signed files
(the manifest, the files it names, the card and the shipped public key; nothing else, so a stray
export or a note never rides along unsigned) are copied into a private temporary folder, the copy is
verified for integrity and trust as ``dataset export`` does (:func:`.verify.require_verified`), and
the copy is uploaded: an edit to the folder after the check cannot reach the Hub.

The client is ``huggingface_hub``'s ``HfApi``: ``create_repo(repo_type="dataset", exist_ok=True)``
then ``upload_folder``, which the Hub applies as one commit, so a failed push leaves the repository as
it was (or empty) and is never reported as done.  The token comes from ``HF_TOKEN`` and the endpoint
from ``HF_ENDPOINT``, both read from ``environ``; the token is never part of a message this module
raises.  A Hub that is unreachable or answers 429/5xx is retried with :class:`~arcticcodex.retry.RetryPolicy`
(``huggingface_hub`` also retries each upload request on its own); a refusal (401, 403, 404, 422) is not.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, DatasetError, HubError, HubUnavailableError, TrustError, UnsafeFileError
from ..fileio import open_plain_file, read_plain_file
from ..layout import CARD_FILE, MANIFEST_FILE, REJECTED_FILE, TRAIN_FILE, VALIDATION_FILE
from ..provenance.trust import KeyRing
from ..retry import RetryPolicy, parse_retry_after
from .verify import MAX_MANIFEST_BYTES, VerificationReport, read_manifest, require_verified

__all__ = ["DEFAULT_ENDPOINT", "ENDPOINT_ENV", "TOKEN_ENV", "PushResult", "published_files", "push_dataset"]

TOKEN_ENV = "HF_TOKEN"  # noqa: S105 - the name of the variable, not a token
ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=20.0)
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_PUBLIC_KEY = re.compile(r"keys/[0-9a-f]{64}\.pub")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PushResult:
    """What was published: the repository, the commit, and the files in it (paths in the repository)."""

    repo_id: str
    url: str
    commit_url: str
    commit_oid: str
    private: bool
    files: tuple[str, ...]
    report: VerificationReport


def published_files(directory: Path) -> list[str]:
    """The folder's signed files, as paths relative to it: the manifest, the record files and the card it
    names, and the public key it ships.  Only those names: the manifest is not yet verified here."""
    manifest = read_manifest(directory)
    names = [MANIFEST_FILE]
    files = manifest.get("files")
    for name in (TRAIN_FILE, VALIDATION_FILE, REJECTED_FILE):
        if isinstance(files, dict) and name in files:
            names.append(name)
    if manifest.get("card") is not None:
        names.append(CARD_FILE)
    public_key = manifest.get("public_key")
    if isinstance(public_key, str) and _PUBLIC_KEY.fullmatch(public_key):
        names.append(public_key)
    return names


def push_dataset(
    directory: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    keyring: KeyRing | None = None,
    allow_untrusted: bool = False,
    workers: int = 1,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushResult:
    """Verify the dataset in ``directory`` and publish it to the dataset repository ``repo_id`` (ORG/NAME).

    Raises :class:`DatasetError` / :class:`TrustError` as :func:`.verify.require_verified` does (nothing
    is sent), :class:`ConfigError` without a token, :class:`HubError` when the Hub refuses, and
    :class:`HubUnavailableError` when it stays unreachable; in every one of those cases the dataset is
    not published (a repository may have been created, empty or as it was).
    """
    environ = os.environ if environ is None else environ
    directory = Path(directory)
    if not _REPO_ID.fullmatch(repo_id):
        raise ConfigError(
            f"repo_id {repo_id!r} is not a Hub repository id: write ORG/NAME (letters, digits, '-', '_', '.'), "
            "for example my-org/my-dataset",
            parameters=["repo_id"],
        )
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            f"no Hugging Face token: set the environment variable {TOKEN_ENV} to a token with write access "
            "(https://huggingface.co/settings/tokens) and push again; the token is read from the environment "
            "only, never from a file or an option"
        )
    endpoint = (environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="arcticcodex-push-") as staging:
        copy = Path(staging) / (directory.resolve().name or "dataset")
        names = _copy_signed_files(directory, copy)
        try:
            report = require_verified(copy, keyring=keyring, allow_untrusted=allow_untrusted, workers=workers)
        except TrustError as exc:  # the same verdict, said of the user's folder rather than the copy
            raise TrustError(_of_folder(exc, copy, directory), parameters=exc.parameters) from exc
        except DatasetError as exc:
            raise DatasetError(_of_folder(exc, copy, directory), parameters=exc.parameters) from exc
        report.directory = directory
        publish = _Publisher(endpoint, token, repo_id, private)
        info = _with_retries(lambda: publish.upload(copy, names), publish, retry or DEFAULT_RETRY, sleep)
    return PushResult(
        repo_id=repo_id,
        url=f"{endpoint}/datasets/{repo_id}",
        commit_url=str(info.commit_url),
        commit_oid=str(info.oid),
        private=private,
        files=tuple(names),
        report=report,
    )


def _of_folder(error: Exception, copy: Path, directory: Path) -> str:
    """A verification message about the private copy, said of the folder the user named."""
    return str(error).replace(str(copy), str(directory)) + "; nothing was published"


def _copy_signed_files(directory: Path, copy: Path) -> list[str]:
    """Copy the signed files into ``copy`` (plain files only: no symlink, FIFO or device is followed)."""
    names = published_files(directory)
    (copy / "keys").mkdir(parents=True)
    for name in names:
        source = directory / name
        try:
            if name == MANIFEST_FILE:
                (copy / name).write_bytes(read_plain_file(source, limit=MAX_MANIFEST_BYTES, what="the manifest"))
                continue
            with open_plain_file(source, what=f"the dataset's {name}") as handle, (copy / name).open("wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
        except FileNotFoundError:
            continue  # verification names the missing file, with the rest of what is wrong
        except UnsafeFileError as exc:
            # from None: the message is the UnsafeFileError's own, with what was not done and the fix
            raise DatasetError(f"{exc}; nothing was published: see `arcticcodex dataset verify {directory}`") from None
    return names


class _Publisher:
    """One push: the client, and the words for what the Hub answered (never the token)."""

    def __init__(self, endpoint: str, token: str, repo_id: str, private: bool) -> None:
        self.endpoint, self.token, self.repo_id, self.private = endpoint, token, repo_id, private

    def upload(self, folder: Path, names: list[str]) -> Any:
        from huggingface_hub import HfApi  # imported on push only: it is heavy, and nothing else needs it

        api = HfApi(
            endpoint=self.endpoint, token=self.token, library_name="arcticcodex", library_version=version("arcticcodex")
        )
        api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
        return api.upload_folder(
            repo_id=self.repo_id,
            repo_type="dataset",
            folder_path=folder,
            allow_patterns=names,
            commit_message="Publish a signed ArcticCodex dataset",
            commit_description="Verify it with `arcticcodex dataset verify DIR` after downloading.",
        )

    def scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def failure(self, error: Exception) -> tuple[int, str, bool]:
        """(status, what happened in words, whether to retry)."""
        from huggingface_hub.errors import HfHubHTTPError

        if isinstance(error, HfHubHTTPError) and error.response is not None:
            status = error.response.status_code
            detail = self.scrub(str(getattr(error, "server_message", "") or "").strip())
            said = f" ({detail})" if detail else ""
            return status, f"the Hub at {self.endpoint} answered {status}{said}", status in RETRIED_STATUSES
        if isinstance(error, ValueError) and "README.md" in str(error):  # the Hub's check of the card's YAML
            return 400, f"the Hub refused the dataset card: {self.scrub(str(error))}", False
        if _is_network_error(error):
            reason = self.scrub(str(error)) or type(error).__name__
            return 0, f"the Hub at {self.endpoint} could not be reached ({reason})", True
        raise error

    def refusal(self, status: int, said: str) -> HubError:
        where = f"the dataset repository {self.repo_id}"
        if status == 401:
            fix = (
                f"the token in {TOKEN_ENV} was refused: it is wrong, expired or revoked; set {TOKEN_ENV} to a valid "
                "token with write access (https://huggingface.co/settings/tokens) and push again"
            )
        elif status == 403:
            fix = f"the token in {TOKEN_ENV} may not write to {where}: use a token with write access to its owner"
        elif status == 404:
            fix = f"{where} or its owner was not found at {self.endpoint}: check the ORG/NAME and {ENDPOINT_ENV}"
        else:
            fix = "nothing was published; push again once the cause is fixed"
        return HubError(f"publishing to {where} failed: {said}; {fix}; the dataset is NOT published", status=status)


def _with_retries(
    attempt: Callable[[], _T], publisher: _Publisher, retry: RetryPolicy, sleep: Callable[[float], None]
) -> _T:
    """Run ``attempt`` again after a network failure or a 408/429/5xx, as ``retry`` says; a push is
    idempotent (an unchanged file is not committed again), so trying again is safe."""
    number = 0
    while True:
        number += 1
        try:
            return attempt()
        except Exception as error:
            status, said, transient = publisher.failure(error)
            if not transient:
                # from None: the message holds the status and the Hub's own words; the client's wrapping adds none
                raise publisher.refusal(status, said) from None
            retry_after = _retry_after(error)
            delay = retry.delay(number, retry_after)
            if delay is None:
                # from None: as above, the message says what the Hub answered (or that it did not)
                raise HubUnavailableError(
                    f"publishing to the dataset repository {publisher.repo_id} failed after {number} attempt(s): "
                    f"{said}; the dataset is NOT published; check {ENDPOINT_ENV} and the Hub's status, then push "
                    "again",
                    status=status,
                ) from None
            sleep(delay)


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return parse_retry_after(headers.get("Retry-After")) if headers is not None else None


def _is_network_error(error: Exception) -> bool:
    """A connection refused, reset or timed out, from the HTTP stack ``huggingface_hub`` rides on."""
    import httpx2

    return isinstance(error, httpx2.TransportError | ConnectionError | TimeoutError)

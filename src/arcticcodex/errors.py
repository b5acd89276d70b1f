"""Every error ArcticCodex raises on purpose, in one tree.

::

    ArcticCodexError 500             base: catch this to catch everything below
    ├── UserError 400                the input or the set-up is wrong; the message says how to fix it
    │   ├── ConfigError 400          arcticcodex.toml or an option is invalid
    │   ├── WorkspaceNotFoundError 404 no workspace here, above here, or where --workspace points
    │   ├── RecordNotFoundError 404  no live vault record has this id (never existed, or forgotten)
    │   ├── DatasetError 422         a dataset record or folder cannot be read: names the record and field
    │   ├── PromptFileError 422      a prompts file (JSONL/CSV) has a bad record: file, line, field, fix
    │   ├── ForgeError 422           ForgeNumerics-S text or values are wrong (code, place, hint)
    │   │   ├── ParseError 422       text that is not valid ForgeNumerics-S
    │   │   ├── ValidationError 422  a well-formed frame that breaks its TYPE's schema
    │   │   └── EncodeError 422      a Python value that has no encoding in the asked profile
    │   ├── KeyFileError 400         a signing key is missing, malformed, or readable by others
    │   ├── TrustError 403           intact but not trusted (a dataset's signer, a teacher entry); names the
    │   │                            command that records the trust (`keys trust`, `teachers trust`)
    │   ├── UnsafeFileError 400      a file is a symlink, FIFO or device, or over its size limit: not read
    │   └── ToolError 400            an agent tool call was refused or failed (bad arguments, limits)
    │       ├── SandboxError 403     a path leaves the tool root (.., absolute, symlink) or breaks a size limit
    │       └── ApprovalRequiredError 403 a tool that writes was called without approval
    ├── SignatureError 422           a signature does not verify (tampering, wrong key, wrong signer)
    ├── TeacherError 502             a teacher call did not produce a usable result (never a pass)
    │   ├── TeacherUnavailableError 503 retries spent on 429/5xx/timeouts/dropped connections, or circuit open
    │   ├── TeacherRejectedError 502 the endpoint refused the request: 400/401/402/403/404/422 (not retried)
    │   ├── TeacherResponseError 502 the reply was not valid JSON of the expected shape, even after a re-ask
    │   └── BudgetExceededError 409  the run's money budget is spent: no new calls are made
    ├── StoreError 500               the workspace database cannot be opened or migrated
    │   └── MigrationError 500       a schema migration failed (it was rolled back) or is unknown
    ├── HubError 502                 publishing to the Hugging Face Hub failed: refused (a bad token, no
    │   │                            write access), or the upload did not finish; nothing is claimed published
    │   └── HubUnavailableError 503  retries spent: the Hub stayed unreachable or kept answering 429/5xx
    └── GpuError 502                 renting or using a GPU instance went wrong
        ├── VastApiError 502         Vast.ai answered an error (status, code and its message)
        │   └── VastUnavailableError 503 retries spent on 429/5xx/timeouts, or the daily search quota is used
        ├── InstanceFailedError 502  an instance never became usable (fatal state, deadline); it was destroyed
        ├── TunnelError 502          the SSH tunnel could not be opened or kept open
        ├── GpuBudgetError 409       a launch would exceed the GPU budget, or the budget is spent
        └── RemoteTrainingError 502  training on a rented GPU failed or dropped, or its artifacts do not match
                                     its receipt (the remote log's last lines, or what differs)

Library code raises these and nothing else for conditions a user can hit; bare ``ValueError`` and
friends only escape for programming errors.  Messages are complete sentences that name the thing, the
place and the fix, because the CLI and the Studio print ``str(error)`` as-is (once, at their boundary)
and must never need a traceback to be understood.

Each class carries ``http_status``, the number after its name above: the status the Studio answers
with when the error reaches it.  Mistakes in what the visitor sent or asked for are 4xx (400 bad input,
403 refused by trust or the sandbox, 404 not found, 409 a budget the user set is spent, 422 content that
is well-formed but wrong); failures on the server's side are 5xx (500 the workspace database, 502 a
teacher or Vast.ai answered badly, 503 one stayed unreachable after every retry), so a broken database
or a teacher outage is never blamed on the visitor's input.  The Studio reads ``error.http_status`` in
one place, its exception handler; nothing else maps errors to statuses.

Errors carry structured fields as attributes (``code``, ``line``, ``column`` …) so that callers can
act on them without parsing the message.

The library speaks in its own terms: a message about a value the caller passed names the *parameter*
(``budget_usd must not be negative``), and lists it in ``error.parameters``.  The CLI, which knows
which option set which parameter, writes the option in its place (``--budget-usd must not be
negative``) — so a Python caller is never told about options it never saw, and the terminal user
never about parameter names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ApprovalRequiredError",
    "ArcticCodexError",
    "BudgetExceededError",
    "ConfigError",
    "DatasetError",
    "EncodeError",
    "ForgeError",
    "GpuBudgetError",
    "GpuError",
    "HubError",
    "HubUnavailableError",
    "InstanceFailedError",
    "KeyFileError",
    "MigrationError",
    "ParseError",
    "PromptFileError",
    "RecordNotFoundError",
    "RemoteTrainingError",
    "SandboxError",
    "SignatureError",
    "SourceLocation",
    "StoreError",
    "TeacherError",
    "TeacherRejectedError",
    "TeacherResponseError",
    "TeacherUnavailableError",
    "ToolError",
    "TrustError",
    "TunnelError",
    "UnsafeFileError",
    "UserError",
    "ValidationError",
    "VastApiError",
    "VastUnavailableError",
    "WorkspaceNotFoundError",
]


class ArcticCodexError(Exception):
    """Base of every error ArcticCodex raises on purpose."""

    http_status: int = 500
    """The HTTP status the Studio answers with when this error reaches it (4xx: the visitor's; 5xx: ours)."""

    parameters: tuple[str, ...] = ()
    """The caller's parameters the message names, as written in Python (the CLI writes their options)."""

    def __init__(self, *args: object, parameters: Iterable[str] = ()) -> None:
        super().__init__(*args)
        if parameters:
            self.parameters = tuple(parameters)


class UserError(ArcticCodexError):
    """The caller's input or set-up is wrong; the message says what to change."""

    http_status = 400


class ConfigError(UserError):
    """A configuration file, option or environment variable is invalid or missing."""

    http_status = 400


class WorkspaceNotFoundError(UserError):
    """No workspace could be found from the current directory, --workspace or ARCTICCODEX_WORKSPACE."""

    http_status = 404


class RecordNotFoundError(UserError):
    """No live record has this id: it never existed, or it was forgotten."""

    http_status = 404


class KeyFileError(UserError):
    """A signing key cannot be used: missing, unreadable, malformed, or with unsafe permissions."""

    http_status = 400


class TrustError(UserError):
    """Something is intact but nobody vouched for it: a dataset's signer, a teacher entry of a workspace.

    Integrity and trust are separate verdicts: a stranger's key verifies a stranger's data perfectly.
    The message names what is untrusted and the command that trusts it.
    """

    http_status = 403


class UnsafeFileError(UserError):
    """A file that must be a plain, small file is a symlink, FIFO, device or too large; it was not read.

    ``reason`` is the message without the file's name (for reports that name the file themselves).
    """

    http_status = 400

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DatasetError(UserError):
    """A dataset record or folder is malformed; the message names the file, line, record and field."""

    http_status = 422


class PromptFileError(UserError):
    """A record in a prompts file cannot be used; ``path``, ``line`` and ``field`` say where."""

    http_status = 422

    def __init__(self, message: str, *, path: str, line: int | None = None, field: str | None = None) -> None:
        place = f"{path}:{line}" if line is not None else path
        super().__init__(f"{place}: {message}")
        self.path = path
        self.line = line
        self.field = field


class ToolError(UserError):
    """An agent tool refused or failed a call; the message says why, so the model (or user) can fix it."""

    http_status = 400


class SandboxError(ToolError):
    """A path that leaves the tool root, or a file or listing over the size limits."""

    http_status = 403


class ApprovalRequiredError(ToolError):
    """A tool that changes files was called without an approval."""

    http_status = 403


class SignatureError(ArcticCodexError):
    """A signature does not verify against the bytes, key or signer it claims."""

    http_status = 422


class TeacherError(ArcticCodexError):
    """A teacher call failed.  Carries the teacher's name; a failure is never turned into a score."""

    http_status = 502

    def __init__(self, message: str, *, teacher: str = "", attempts: int = 0, parameters: Iterable[str] = ()) -> None:
        super().__init__(message, parameters=parameters)
        self.teacher = teacher
        self.attempts = attempts


class TeacherUnavailableError(TeacherError):
    """Transient failures (429, 5xx, timeouts, dropped connections) outlasted the retry budget."""

    http_status = 503


class TeacherRejectedError(TeacherError):
    """The endpoint refused the request (bad key, no balance, unknown model, invalid request)."""

    http_status = 502

    def __init__(self, message: str, *, teacher: str = "", attempts: int = 0, status: int = 0) -> None:
        super().__init__(message, teacher=teacher, attempts=attempts)
        self.status = status


class TeacherResponseError(TeacherError):
    """The reply could not be read as the expected JSON, even after asking once more."""

    http_status = 502


class BudgetExceededError(TeacherError):
    """The money budget is spent; the pool makes no new calls."""

    http_status = 409


class StoreError(ArcticCodexError):
    """The workspace database cannot be opened or used."""

    http_status = 500


class MigrationError(StoreError):
    """A schema migration failed (and was rolled back) or the database is newer than this code."""

    http_status = 500


class HubError(ArcticCodexError):
    """Publishing to the Hugging Face Hub failed; ``status`` is what the Hub answered (0: no answer).

    Messages never hold the token.  When this is raised the dataset is not (fully) published."""

    http_status = 502

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class HubUnavailableError(HubError):
    """The Hub stayed unreachable, or kept answering 429/5xx, after every retry."""

    http_status = 503


class GpuError(ArcticCodexError):
    """Renting, reaching or paying for a GPU instance went wrong."""

    http_status = 502


class VastApiError(GpuError):
    """Vast.ai refused a request; ``status`` and ``code`` are what it answered (never the API key)."""

    http_status = 502

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class VastUnavailableError(VastApiError):
    """Vast.ai kept answering 429/5xx or timing out after every retry, or the daily search quota is spent."""

    http_status = 503


class InstanceFailedError(GpuError):
    """An instance did not become usable (fatal state or deadline); ``instance_id`` names it."""

    http_status = 502

    def __init__(self, message: str, *, instance_id: int | None = None) -> None:
        super().__init__(message)
        self.instance_id = instance_id


class TunnelError(GpuError):
    """The SSH tunnel to an instance could not be opened, or died and could not be reopened."""

    http_status = 502


class GpuBudgetError(GpuError):
    """A launch would exceed the GPU budget, or the budget is spent (instances were destroyed)."""

    http_status = 409


class RemoteTrainingError(GpuError):
    """A run on a rented GPU failed, dropped, or brought back artifacts its receipt does not vouch for."""

    http_status = 502


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in a text something happened: offset in code points, 1-based line and column."""

    offset: int
    line: int
    column: int

    @classmethod
    def of(cls, text: str, offset: int) -> SourceLocation:
        """Locate ``offset`` (a code-point index, clamped into the text) in ``text``."""
        offset = max(0, min(offset, len(text)))
        line = text.count("\n", 0, offset) + 1
        line_start = text.rfind("\n", 0, offset) + 1
        return cls(offset=offset, line=line, column=offset - line_start + 1)


def context_snippet(text: str, offset: int, radius: int = 30) -> str:
    """Return the part of the current line around ``offset`` with a ``▼`` marker in front of the spot.

    A lone surrogate in the snippet is written as its ``\\udXXX`` escape: the message must print on a
    UTF-8 terminal, and the surrogate is often the very thing being reported.
    """
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    start = max(line_start, offset - radius)
    end = min(line_end, offset + radius)
    before = ("…" if start > line_start else "") + text[start:offset]
    after = text[offset:end] + ("…" if end < line_end else "")
    return (before + "▼" + after).encode("utf-8", "backslashreplace").decode("utf-8")


class ForgeError(UserError):
    """Base of ForgeNumerics-S errors: a stable ``code``, an optional location and a ``hint``.

    ``code`` keeps the original format's meanings (``PARSE_001`` … ``PARSE_007``, ``VALIDATE_001`` …)
    and adds new ones; the catalogue lives in :mod:`arcticcodex.forge.codes`.
    """

    http_status = 422

    def __init__(
        self,
        code: str,
        message: str,
        *,
        hint: str = "",
        text: str | None = None,
        offset: int | None = None,
        source: str | None = None,
    ) -> None:
        self.code = code
        self.detail = message
        self.hint = hint
        self.source = source
        self.location: SourceLocation | None = None
        self.context = ""
        if text is not None and offset is not None:
            self.location = SourceLocation.of(text, offset)
            self.context = context_snippet(text, self.location.offset)
        super().__init__(self._render())

    @property
    def offset(self) -> int | None:
        return self.location.offset if self.location else None

    @property
    def line(self) -> int | None:
        return self.location.line if self.location else None

    @property
    def column(self) -> int | None:
        return self.location.column if self.location else None

    def relocated(self, *, line_offset: int = 0, source: str | None = None) -> ForgeError:
        """Return the same error placed ``line_offset`` lines further down a larger input.

        Used when a document is read one line at a time: the error was raised against one line, and
        the user needs the line number in the whole file.
        """
        if self.location is not None:
            self.location = SourceLocation(
                offset=self.location.offset,
                line=self.location.line + line_offset,
                column=self.location.column,
            )
        if source is not None:
            self.source = source
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        place = ""
        if self.location is not None:
            where = f"{self.source}:" if self.source else "line "
            place = f"{where}{self.location.line}:{self.location.column}: "
        elif self.source:
            place = f"{self.source}: "
        text = f"{place}{self.code} {self.detail}"
        if self.context:
            text += f"\n    {self.context}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self._render()


class ParseError(ForgeError):
    """Text that is not valid ForgeNumerics-S; located at the first offending code point."""

    http_status = 422


class ValidationError(ForgeError):
    """A well-formed frame that does not satisfy the schema of its TYPE."""

    http_status = 422

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        hint: str = "",
        text: str | None = None,
        offset: int | None = None,
        source: str | None = None,
    ) -> None:
        self.field = field
        super().__init__(code, message, hint=hint, text=text, offset=offset, source=source)


class EncodeError(ForgeError):
    """A value that cannot be encoded in the requested profile (wrong type, out of range)."""

    http_status = 422

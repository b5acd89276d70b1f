"""Every error ArcticCodex raises on purpose, in one tree.

::

    ArcticCodexError                 base: catch this to catch everything below
    ├── UserError                    the input or the set-up is wrong; the message says how to fix it
    │   ├── ConfigError              arcticcodex.toml or an option is invalid
    │   ├── WorkspaceNotFoundError   no workspace here, above here, or where --workspace points
    │   ├── RecordNotFoundError      no live vault record has this id (never existed, or forgotten)
    │   ├── DatasetError             a dataset record or folder cannot be read: names the record and field
    │   ├── PromptFileError          a prompts file (JSONL/CSV) has a bad record: file, line, field, fix
    │   ├── ForgeError               ForgeNumerics-S text or values are wrong (code, place, hint)
    │   │   ├── ParseError           text that is not valid ForgeNumerics-S
    │   │   ├── ValidationError      a well-formed frame that breaks its TYPE's schema
    │   │   └── EncodeError          a Python value that has no encoding in the asked profile
    │   ├── KeyFileError             a signing key is missing, malformed, or readable by others
    │   ├── TrustError               intact but not trusted (a dataset's signer, a teacher entry); names the
    │   │                            command that records the trust (`keys trust`, `teachers trust`)
    │   ├── UnsafeFileError          a file is a symlink, FIFO or device, or over its size limit: not read
    │   └── ToolError                an agent tool call was refused or failed (bad arguments, limits)
    │       ├── SandboxError         a path leaves the tool root (.., absolute, symlink) or breaks a size limit
    │       └── ApprovalRequiredError  a tool that writes was called without approval
    ├── SignatureError               a signature does not verify (tampering, wrong key, wrong signer)
    ├── TeacherError                 a teacher call did not produce a usable result (never a pass)
    │   ├── TeacherUnavailableError  retries spent on 429/5xx/timeouts/dropped connections, or circuit open
    │   ├── TeacherRejectedError     the endpoint refused the request: 400/401/402/403/404/422 (not retried)
    │   ├── TeacherResponseError     the reply was not valid JSON of the expected shape, even after a re-ask
    │   └── BudgetExceededError      the run's money budget is spent: no new calls are made
    ├── StoreError                   the workspace database cannot be opened or migrated
    │   └── MigrationError           a schema migration failed (it was rolled back) or is unknown
    └── GpuError                     renting or using a GPU instance went wrong
        ├── VastApiError             Vast.ai answered an error (status, code and its message)
        │   └── VastUnavailableError retries spent on 429/5xx/timeouts, or the daily search quota is used
        ├── InstanceFailedError      an instance never became usable (fatal state, deadline); it was destroyed
        ├── TunnelError              the SSH tunnel could not be opened or kept open
        └── GpuBudgetError           a launch would exceed the GPU budget, or the budget is spent

Library code raises these and nothing else for conditions a user can hit; bare ``ValueError`` and
friends only escape for programming errors.  Messages are complete sentences that name the thing, the
place and the fix, because the CLI and the Studio print ``str(error)`` as-is (once, at their boundary)
and must never need a traceback to be understood.

Errors carry structured fields as attributes (``code``, ``line``, ``column`` …) so that callers can
act on them without parsing the message.
"""

from __future__ import annotations

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
    "InstanceFailedError",
    "KeyFileError",
    "MigrationError",
    "ParseError",
    "PromptFileError",
    "RecordNotFoundError",
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


class UserError(ArcticCodexError):
    """The caller's input or set-up is wrong; the message says what to change."""


class ConfigError(UserError):
    """A configuration file, option or environment variable is invalid or missing."""


class WorkspaceNotFoundError(UserError):
    """No workspace could be found from the current directory, --workspace or ARCTICCODEX_WORKSPACE."""


class RecordNotFoundError(UserError):
    """No live record has this id: it never existed, or it was forgotten."""


class KeyFileError(UserError):
    """A signing key cannot be used: missing, unreadable, malformed, or with unsafe permissions."""


class TrustError(UserError):
    """Something is intact but nobody vouched for it: a dataset's signer, a teacher entry of a workspace.

    Integrity and trust are separate verdicts: a stranger's key verifies a stranger's data perfectly.
    The message names what is untrusted and the command that trusts it.
    """


class UnsafeFileError(UserError):
    """A file that must be a plain, small file is a symlink, FIFO, device or too large; it was not read.

    ``reason`` is the message without the file's name (for reports that name the file themselves).
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DatasetError(UserError):
    """A dataset record or folder is malformed; the message names the file, line, record and field."""


class PromptFileError(UserError):
    """A record in a prompts file cannot be used; ``path``, ``line`` and ``field`` say where."""

    def __init__(self, message: str, *, path: str, line: int | None = None, field: str | None = None) -> None:
        place = f"{path}:{line}" if line is not None else path
        super().__init__(f"{place}: {message}")
        self.path = path
        self.line = line
        self.field = field


class ToolError(UserError):
    """An agent tool refused or failed a call; the message says why, so the model (or user) can fix it."""


class SandboxError(ToolError):
    """A path that leaves the tool root, or a file or listing over the size limits."""


class ApprovalRequiredError(ToolError):
    """A tool that changes files was called without an approval."""


class SignatureError(ArcticCodexError):
    """A signature does not verify against the bytes, key or signer it claims."""


class TeacherError(ArcticCodexError):
    """A teacher call failed.  Carries the teacher's name; a failure is never turned into a score."""

    def __init__(self, message: str, *, teacher: str = "", attempts: int = 0) -> None:
        super().__init__(message)
        self.teacher = teacher
        self.attempts = attempts


class TeacherUnavailableError(TeacherError):
    """Transient failures (429, 5xx, timeouts, dropped connections) outlasted the retry budget."""


class TeacherRejectedError(TeacherError):
    """The endpoint refused the request (bad key, no balance, unknown model, invalid request)."""

    def __init__(self, message: str, *, teacher: str = "", attempts: int = 0, status: int = 0) -> None:
        super().__init__(message, teacher=teacher, attempts=attempts)
        self.status = status


class TeacherResponseError(TeacherError):
    """The reply could not be read as the expected JSON, even after asking once more."""


class BudgetExceededError(TeacherError):
    """The money budget is spent; the pool makes no new calls."""


class StoreError(ArcticCodexError):
    """The workspace database cannot be opened or used."""


class MigrationError(StoreError):
    """A schema migration failed (and was rolled back) or the database is newer than this code."""


class GpuError(ArcticCodexError):
    """Renting, reaching or paying for a GPU instance went wrong."""


class VastApiError(GpuError):
    """Vast.ai refused a request; ``status`` and ``code`` are what it answered (never the API key)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class VastUnavailableError(VastApiError):
    """Vast.ai kept answering 429/5xx or timing out after every retry, or the daily search quota is spent."""


class InstanceFailedError(GpuError):
    """An instance did not become usable (fatal state or deadline); ``instance_id`` names it."""

    def __init__(self, message: str, *, instance_id: int | None = None) -> None:
        super().__init__(message)
        self.instance_id = instance_id


class TunnelError(GpuError):
    """The SSH tunnel to an instance could not be opened, or died and could not be reopened."""


class GpuBudgetError(GpuError):
    """A launch would exceed the GPU budget, or the budget is spent (instances were destroyed)."""


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


class ValidationError(ForgeError):
    """A well-formed frame that does not satisfy the schema of its TYPE."""

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

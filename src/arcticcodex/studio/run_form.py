"""The "Start a run" form: what a person typed, checked, into the source, settings and folder of a run.

The same objects ``arcticcodex distill`` builds from its options (:class:`~arcticcodex.distill.sourcing.Source`,
:class:`~arcticcodex.distill.settings.RunSettings`), with the workspace's ``[distill]`` defaults for
everything the form does not ask; then :meth:`Distiller.start` checks and creates the run as the
command does.  What only a web form needs is checked here:

* the teachers offered are the configured ones the user trusts (the offline local judge when none is
  ticked), and a name that is not among them is refused — a form field is not a way to reach others;
* the dataset folder is a name *under the workspace* (``datasets/v1``): no absolute path, no ``..``,
  no hidden folder, not the data folder, and not a symbolic link that leads out — a web page must not
  be able to make the Studio write anywhere else on the disk;
* an uploaded prompts file is kept under the data folder (``prompt-uploads/ID/NAME``, private), as the
  file the run's recipe names; when the run is refused it is removed again, and the error names the
  file by the name it was uploaded as (``prompts.jsonl:3: …``).
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from ..distill.defaults import DistillDefaults
from ..distill.run import Distiller, StartedRun
from ..distill.settings import RunSettings
from ..distill.sourcing import Source
from ..errors import UserError
from ..fileio import write_atomically
from ..teachers.entries import load_teachers
from ..workspace import Workspace

__all__ = ["MAX_PROMPTS_BYTES", "RunForm", "StartRequest", "dataset_folder"]

MAX_PROMPTS_BYTES = 20_000_000
SOURCES = {
    "prompts": "a prompts file (.jsonl or .csv)",
    "from_vault": "questions about the vault's documents",
    "from_conversations": "the vault's conversations",
}
PROMPT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv")
_FOLDER_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
LOCAL_JUDGE = "local"


def dataset_folder(workspace: Workspace, name: str) -> Path:
    """The folder ``name`` (relative, e.g. ``datasets/v1``) under the workspace; refuses any other place."""
    text = name.strip()
    example = "a name under the workspace such as datasets/v1"
    if not text:
        raise UserError(f"give the dataset folder: {example}", parameters=["out"])
    if text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", text):
        raise UserError(f"the dataset folder {text!r} is not a name under the workspace; give {example}")
    parts = text.replace("\\", "/").split("/")
    bad = next((part for part in parts if not _FOLDER_PART.fullmatch(part)), None)
    if bad is not None or len(parts) > 5:
        raise UserError(
            f"the dataset folder {text!r} is not a name under the workspace ({bad!r} is not a folder name: "
            f"letters, digits, '.', '_' and '-', not starting with a dot); give {example}"
            if bad is not None
            else f"the dataset folder {text!r} is nested too deep; give {example}"
        )
    root = workspace.root.resolve()
    target = root.joinpath(*parts).resolve()  # resolved: a symbolic link on the way is followed here
    if not target.is_relative_to(root) or target == root:
        raise UserError(f"the dataset folder {text!r} leads outside the workspace (a symbolic link?); give {example}")
    if target.is_relative_to(workspace.data_dir.resolve()):
        raise UserError(f"the dataset folder {text!r} is inside the workspace's private data folder; give {example}")
    return target


@dataclass
class StartRequest:
    """A checked form: the run to start, and the uploaded prompts file's folder (or None)."""

    source: Source
    settings: RunSettings
    out: Path
    teachers_origin: str
    upload_folder: Path | None = None

    def begin(self, distiller: Distiller) -> Coroutine[Any, Any, StartedRun]:
        """The library call that creates the run (what ``arcticcodex distill`` calls)."""
        return distiller.start(self.source, self.settings, self.out, teachers_origin=self.teachers_origin)

    def shown(self, message: str) -> str:
        """``message`` naming the uploaded file as it was uploaded, not where the Studio keeps it."""
        if self.upload_folder is None:
            return message
        return message.replace(str(self.upload_folder) + "/", "")

    def discard(self) -> None:
        """The run was refused: the uploaded prompts file is not kept."""
        if self.upload_folder is not None:
            shutil.rmtree(self.upload_folder, ignore_errors=True)


class RunForm:
    """Reads and checks the form; gives the page its choices and the values to show again."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def trusted_teachers(self) -> list[str]:
        """The teachers a run may use: configured, trusted, and not the offline local judge (always offered)."""
        teachers, _ = load_teachers(self.workspace.config)
        return [teacher.name for teacher in teachers if teacher.trusted and teacher.preset != LOCAL_JUDGE]

    def context(self, fields: dict[str, str], teachers: list[str]) -> dict[str, Any]:
        """The form's choices and values: what was typed (after a refusal), else the workspace's defaults."""
        defaults = DistillDefaults.load(self.workspace.config).settings
        trusted = self.trusted_teachers()
        chosen = teachers if fields else [name for name in defaults.teachers if name in trusted]
        budget = defaults.budget_usd
        values = {
            "source": "prompts",
            "limit": str(defaults.limit or ""),
            "questions_by": defaults.questions_by,
            "threshold": str(defaults.threshold),
            "max_rounds": str(defaults.max_rounds),
            "budget_usd": "" if budget is None else str(budget),
            "review": "on" if defaults.review else "",
            "out": datetime.now().strftime("datasets/%Y-%m-%d-%H%M"),  # a new folder, which the person may rename
        }
        if fields:
            values = {**values, "review": "", **{name: fields[name] for name in values if name in fields}}
        return {
            "values": values,
            "sources": SOURCES,
            "teachers": trusted,
            "chosen": chosen,
            "questioners": ["offline", *trusted],
        }

    def read(self, fields: dict[str, str], teachers: list[str], filename: str, data: bytes) -> StartRequest:
        """The run the form asks for; raises UserError naming the field at fault.  Keeps an uploaded file."""
        defaults = DistillDefaults.load(self.workspace.config)
        kind = fields.get("source", "")
        if kind not in SOURCES:
            raise UserError(f"choose a source: {', '.join(SOURCES.values())}")
        trusted = self.trusted_teachers()
        unknown = [name for name in teachers if name not in trusted and name != LOCAL_JUDGE]
        if unknown:
            listed = ", ".join(trusted) or "none is configured and trusted"
            raise UserError(
                f"{', '.join(map(repr, unknown))} is not a trusted teacher of this workspace (teachers: {listed}, "
                "and the offline local judge)"
            )
        questions_by = fields.get("questions_by", "offline") or "offline"
        if kind == "from_vault" and questions_by not in ("offline", *trusted):
            raise UserError(f"questions by {questions_by!r}: choose 'offline' or a trusted teacher")
        out = dataset_folder(self.workspace, fields.get("out", ""))
        limit = _whole(fields.get("limit", ""), "limit")
        budget = self.budget(fields.get("budget_usd", "")) if fields.get("budget_usd", "").strip() else None
        key, key_origin = defaults.key(None)
        chosen = tuple(teachers) or (LOCAL_JUDGE,)
        source_fields = {
            "kind": kind,
            "questions_by": questions_by if kind == "from_vault" else "offline",
            "questions_per_chunk": defaults.pick("questions_per_chunk", None),
            "limit": defaults.pick("limit", limit),
        }
        settings = {
            "threshold": _number(fields.get("threshold", ""), "threshold"),
            "max_rounds": _whole(fields.get("max_rounds", ""), "max rounds") or defaults.pick("max_rounds", None),
            "concurrency": defaults.pick("concurrency", None),
            "budget_usd": budget,
            "teachers": chosen,
            "drafter": defaults.pick("drafter", None),
            "key": key,
            "key_origin": key_origin,
            "near_duplicate_threshold": None if defaults.settings.keep_near_duplicates else 0.95,
            "near_duplicate_mode": defaults.pick("near_duplicate_mode", None),
            "validation_fraction": defaults.pick("validation", None),
            "human_review": fields.get("review") == "on",
            "sensitive_data": defaults.pick("sensitive_data", None),
        }
        origin = "teachers" if teachers else "the offline local judge (no teacher was chosen)"
        if kind != "prompts":
            source = Source(**source_fields)
            return StartRequest(source, RunSettings(**settings, source=source.label), out, origin)
        if not filename:
            raise UserError("choose the prompts file to upload (.jsonl, one JSON object per line, or .csv)")
        if len(data) > MAX_PROMPTS_BYTES:
            raise UserError(
                f"{PurePath(filename).name} is over {MAX_PROMPTS_BYTES // 1_000_000} MB; start the run with "
                "`arcticcodex distill --prompts FILE`"
            )
        name = _prompts_name(filename)
        folder = self.workspace.data_dir / "prompt-uploads" / secrets.token_hex(8)
        source = Source(**{**source_fields, "prompts": folder / name})
        run_settings = RunSettings(**settings, source=f"prompts: {name} (uploaded to the Studio)")
        folder.mkdir(mode=0o700, parents=True)
        write_atomically(folder / name, data, mode=0o600)
        return StartRequest(source, run_settings, out, origin, upload_folder=folder)

    def budget(self, text: str) -> float:
        value = _number(text, "budget (USD)")
        if value < 0:
            raise UserError(f"the budget must not be negative, not {text.strip()!r}")
        return value


def _prompts_name(filename: str) -> str:
    name = PurePath(filename.replace("\\", "/")).name  # never a path from the browser
    if not name or name.startswith(".") or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise UserError(f"{name!r} is not a file name the Studio keeps; rename the file and upload it again")
    if not name.lower().endswith(PROMPT_SUFFIXES):
        raise UserError(f"{name!r} is not a prompts file; upload a .jsonl (one JSON object per line) or .csv file")
    return name


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        # from None: the ValueError adds nothing the message does not already say
        raise UserError(f"{what} must be a number, not {text.strip()!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UserError(f"{what} must be a number, not {text.strip()!r}")
    return value


def _whole(text: str, what: str) -> int | None:
    if not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        # from None: the ValueError adds nothing the message does not already say
        raise UserError(f"{what} must be a whole number, not {text.strip()!r}") from None
    if value < 1:
        raise UserError(f"{what} must be 1 or more, not {value}")
    return value

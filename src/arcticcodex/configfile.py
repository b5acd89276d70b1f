"""Every change to ``arcticcodex.toml`` goes through here, so the user's file keeps its comments and stays valid.

Why one module: ``init``, ``teachers add``/``remove``, ``gpu up``'s teacher entries and its budget
each used to write the file their own way, and one left ``teachers = []`` behind, which the next
``teachers add`` turned into ``teachers = [name = …`` — a file no command could read.  Here:

* edits are made on the tomlkit document, so comments, blank lines and the order of keys stay as the
  user wrote them.  tomlkit files a comment written above a table header at the end of the table
  before it; while the teacher list changes such comments are set aside and put back in front of
  the table they preceded, so removing a teacher never takes the ``# GPU settings`` line above
  ``[gpu]`` with it;
* an empty teacher list is left out, never written inline, and an inline one (``teachers = []`` as
  older versions left it) becomes ``[[teachers]]`` tables again;
* the new text must read back — with tomllib, the parser every command uses — as exactly the values
  the command meant, and must pass every check a command makes when it loads the file
  (:meth:`Config.from_text`, the teacher entries), before it replaces the file; the replacement is
  atomic, under a lock, so two commands changing the file at once cannot lose one's change, and the
  file is read back once more afterwards.
"""

from __future__ import annotations

import copy
import fcntl
import itertools
import json
import os
import re
import stat
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Comment, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from .config import CONFIG_TEMPLATE, Config, read_config_text
from .errors import ConfigError
from .fileio import write_atomically

__all__ = ["add_teacher", "create", "put_teachers", "remove_teacher", "set_values"]

Raw = dict[str, Any]


def create(path: Path, *, data_dir: str) -> Config:
    """Write a new configuration from the template; an existing file is never overwritten."""
    text = CONFIG_TEMPLATE.format(data_dir=json.dumps(data_dir))
    Config.from_text(text, path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(text, encoding="utf-8")
    try:
        os.link(temporary, path)  # fails if path exists: never clobber a user's config
    finally:
        temporary.unlink()
    return _read_back(path, tomllib.loads(text))


def add_teacher(path: Path, entry: Mapping[str, Any]) -> Config:
    """Append the ``[[teachers]]`` table ``entry`` (its ``name`` must be new)."""
    name = entry["name"]

    def change(document: TOMLDocument) -> None:
        teachers = _Teachers(document)
        if name in teachers.names():
            raise ConfigError(
                f"a teacher named {name!r} already exists in {path}; remove it first "
                f"(`arcticcodex teachers remove {name}`) or choose another name"
            )
        teachers.append(entry)
        teachers.store()

    def intend(raw: Raw) -> None:
        raw["teachers"] = [*raw.get("teachers", []), dict(entry)]

    return _edit(path, change, intend)


def remove_teacher(path: Path, name: str) -> Config:
    """Remove the teacher ``name``; the last one removed leaves no ``teachers`` key at all."""

    def change(document: TOMLDocument) -> None:
        teachers = _Teachers(document)
        if name not in teachers.names():
            known = ", ".join(teachers.names()) or "none"
            raise ConfigError(f"no teacher named {name!r} in {path} (teachers there: {known}); see `teachers list`")
        teachers.remove(name)
        teachers.store()

    def intend(raw: Raw) -> None:
        kept = [entry for entry in raw.get("teachers", []) if entry.get("name") != name]
        if kept:
            raw["teachers"] = kept
        else:
            raw.pop("teachers", None)

    return _edit(path, change, intend)


def put_teachers(
    path: Path, entries: Sequence[Mapping[str, Any]], *, replaceable: Callable[[Mapping[str, Any]], bool]
) -> Config:
    """Make the replaceable teachers exactly ``entries``: update same-named ones in place, drop the rest, add new ones.

    ``replaceable`` says which entries the caller owns (``gpu up``'s); the others are never touched, and
    an entry of ``entries`` whose name one of them uses is refused.
    """
    wanted = {entry["name"]: dict(entry) for entry in entries}

    def change(document: TOMLDocument) -> None:
        teachers = _Teachers(document)
        for table in list(teachers.tables):
            current = table.unwrap()
            name = current.get("name")
            if not replaceable(current):
                if name in wanted:
                    raise ConfigError(
                        f"{path}: a teacher named {name!r} exists and was not written by this command; "
                        "choose another name, or remove it with `arcticcodex teachers remove`"
                    )
            elif name in wanted:
                teachers.update(table, wanted[name])
            else:
                teachers.remove(str(name))
        for name, entry in wanted.items():
            if name not in teachers.names():
                teachers.append(entry)
        teachers.store()

    def intend(raw: Raw) -> None:
        kept = [
            wanted.get(entry.get("name"), entry) if replaceable(entry) else entry
            for entry in raw.get("teachers", [])
            if not replaceable(entry) or entry.get("name") in wanted
        ]
        kept += [entry for name, entry in wanted.items() if name not in {e.get("name") for e in kept}]
        if kept:
            raw["teachers"] = kept
        else:
            raw.pop("teachers", None)

    return _edit(path, change, intend)


def set_values(path: Path, table_name: str, values: Mapping[str, Any]) -> Config:
    """Set ``values`` in the table ``[table_name]`` (made at the end of the file if missing; none: no change)."""
    if not values:
        return Config.load(path)

    def change(document: TOMLDocument) -> None:
        table = document.get(table_name)
        if table is None:
            document.append(table_name, tomlkit.table())
            table = document[table_name]
        tail = _trailing(table) if isinstance(table, Table) else ""
        for key, value in values.items():
            table[key] = value
        if tail:
            table.value.body.append((None, Whitespace(tail)))

    def intend(raw: Raw) -> None:
        raw.setdefault(table_name, {}).update(values)

    return _edit(path, change, intend)


# -- the edit itself ----------------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[TOMLDocument], None], intend: Callable[[Raw], None]) -> Config:
    """Apply ``change`` to the file's document; write the result only if it reads back as ``intend`` says."""
    with _locked(path):
        current = read_config_text(path)  # the file as it is now, with the lock held
        before = Config.from_text(current, path)
        try:
            document = tomlkit.parse(current)
        except TOMLKitError as exc:
            # from None: the TOMLKitError adds nothing the message does not already say
            raise ConfigError(f"{path} cannot be edited ({exc}); fix the file by hand") from None
        change(document)
        text = tomlkit.dumps(document)
        intended = copy.deepcopy(dict(before.raw))
        intend(intended)
        config = Config.from_text(text, path)
        if config.raw != intended:
            raise ConfigError(
                f"{path} was not changed: the edit would not have read back as intended "
                "(please report this with the file attached)"
            )
        _check_teachers(config)
        write_atomically(path, text.encode("utf-8"), mode=stat.S_IMODE(os.stat(path).st_mode))
        return _read_back(path, intended)


def _read_back(path: Path, intended: Mapping[str, Any]) -> Config:
    written = Config.load(path)
    if written.raw != intended:
        raise ConfigError(f"{path} changed while it was written (another program?); check it and run the command again")
    return written


def _check_teachers(config: Config) -> None:
    """Every check the teachers' loader makes before trust: the entries, the pool, each key file's place."""
    config.teacher_pool  # noqa: B018 - reading it validates the entries and [teacher_pool] (ConfigError)
    for entry in config.teachers:
        if entry.api_key_file:
            config.key_file(entry.name, entry.api_key_file)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the configuration file itself (no lock file is left in the workspace).

    A writer replaces the file (rename), so a command that waited for the lock checks that it holds
    the file now at ``path``, and tries again if not.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            # from None: the OSError adds nothing the message does not already say
            raise ConfigError(
                f"cannot open {path} to change it ({exc.strerror}); check that the file is still there and yours"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held, current = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                yield
                return
        finally:
            os.close(fd)


# -- the teacher list, comments kept ------------------------------------------------------------------


class _Teachers:
    """The ``[[teachers]]`` tables of a document, as a list that can change without losing a comment.

    While it is open, the comments and blank lines written above a teacher's header travel with that
    teacher (in its header's indent), and those above whatever follows the list are kept apart (``tail``).
    :meth:`store` puts the document back together.
    """

    def __init__(self, document: TOMLDocument) -> None:
        self.document = document
        self.tables: list[Table] = []
        self.tail = ""
        self.aot: AoT | None = None
        item = document.get("teachers")
        if isinstance(item, AoT):
            self.aot = item
            self.tables = list(item.body)
            for before, table in itertools.pairwise(self.tables):
                table.trivia.indent = _trailing(before) + table.trivia.indent
            self.tail = _trailing(self.tables[-1]) if self.tables else ""
        elif item is not None:  # an inline array: `teachers = []`, or `teachers = [{name = …}]` written by hand
            self.tables = [_new_table(entry) for entry in item.unwrap()]
            document.remove("teachers")

    def names(self) -> list[str]:
        return [str(table.get("name")) for table in self.tables]

    def append(self, entry: Mapping[str, Any]) -> None:
        table = _new_table(entry)
        if self.tables:
            table.trivia.indent = "\n"  # a blank line between teachers
        self.tables.append(table)

    def remove(self, name: str) -> None:
        index = self.names().index(name)
        carried = self.tables.pop(index).trivia.indent  # the comments above it stay where they were
        if index < len(self.tables):
            following = self.tables[index]
            following.trivia.indent = _merge(carried, following.trivia.indent, first=index == 0)
        else:
            self.tail = _merge(carried, self.tail, first=not self.tables)

    def update(self, table: Table, entry: Mapping[str, Any]) -> None:
        for key in [key for key in table if key not in entry]:
            del table[key]
        for key, value in entry.items():
            if table.get(key) != value:
                table[key] = value

    def store(self) -> None:
        if self.tables and self.tail:
            self.tables[-1].value.body.append((None, Whitespace(self.tail)))
        if self.aot is None:
            if self.tables:
                aot = tomlkit.aot()
                for table in self.tables:
                    aot.append(table)
                self.document.append("teachers", aot)
            return
        self.aot.body[:] = self.tables
        if not self.tables:  # no `teachers = []` left behind: the comments that followed the list stay
            body = self.document.body
            index = next(i for i, (_, item) in enumerate(body) if item is self.aot)
            self.document.remove("teachers")
            body[index] = (None, Whitespace(self.tail))


def _new_table(entry: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in entry.items():
        table[key] = value
    return table


def _trailing(table: Table) -> str:
    """Take the comments and blank lines at the end of ``table``'s body (the ones above the next header)."""
    body = table.value.body
    text = ""
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
        text = body.pop()[1].as_string() + text
    return text


_BLANK_LINES = re.compile(r"(?:^|(?<=\n))(?:[ \t]*\n){2,}")


def _merge(carried: str, existing: str, *, first: bool) -> str:
    """Comments and blank lines from a removed table joined to the next one's, one blank line at most in a row.

    ``first``: nothing of the list comes before, so the text follows the table above the list, whose
    own blank line already separates them: leading blank lines are dropped.
    """
    text = _BLANK_LINES.sub("\n", carried + existing)
    return text.lstrip(" \t\n") if first else text

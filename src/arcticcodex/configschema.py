"""The model of the whole ``arcticcodex.toml``, and the messages that refuse what it does not allow.

Why strict: a misspelt setting (``embeding_model``, ``[gpus]``) used to be ignored without a word, so
the default silently won and the user believed their setting was in force.  Each unknown name is now
an error naming the line, and the nearest valid name.  The names come from one place, :class:`Settings`
(its tables are in :mod:`.configsections`, the ``[[teachers]]`` entry in :mod:`.configteachers`): a
module that starts reading a new setting adds a field there, and nothing else refuses or allows a name.

Values are checked by the same models, each table when the file is read (:func:`read_tables`); a
table's error is kept and raised where that table is used, so a wrong ``[gpu]`` value stops the GPU
commands, not ``vault import``.  Every message names the file, the line, the setting, what it must be
and an example.  The line is found by a light scan of the text (:class:`_Lines`), made only when a
message needs it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .configsections import (
    DistillSettings,
    GpuSettings,
    Must,
    SettingValueError,
    SigningSettings,
    Table,
    TeacherPoolSettings,
    VaultSettings,
    WorkspaceSettings,
)
from .configteachers import OLDER_TEACHER_KEYS, TeacherEntry
from .errors import ConfigError

__all__ = ["SECTIONS", "TABLES", "TEACHER_KEYS", "Settings", "check_names", "read_tables", "teacher_entry"]


class Settings(Table):
    """All of ``arcticcodex.toml``: its tables in the order the file is documented, then the teachers."""

    workspace: WorkspaceSettings = WorkspaceSettings()
    signing: SigningSettings = SigningSettings()
    vault: VaultSettings = VaultSettings()
    teacher_pool: TeacherPoolSettings = TeacherPoolSettings()
    gpu: GpuSettings = GpuSettings()
    distill: DistillSettings = DistillSettings()
    teachers: tuple[TeacherEntry, ...] = ()


# [table] -> its model; [table] -> the keys it takes; [[teachers]] -> the keys each entry takes
TABLES: dict[str, type[Table]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Table)
}
SECTIONS: dict[str, frozenset[str]] = {name: frozenset(model.model_fields) for name, model in TABLES.items()}
TEACHER_KEYS: frozenset[str] = frozenset(TeacherEntry.model_fields)
ARRAYS_OF_TABLES: dict[str, frozenset[str]] = {"teachers": TEACHER_KEYS}
# keys an older file may hold: read into their successors by the model, so accepted, never offered or written
OLDER_KEYS: dict[str, frozenset[str]] = {"teachers": OLDER_TEACHER_KEYS}


def check_names(raw: Mapping[str, Any], text: str, path: Path) -> None:
    """Raise ConfigError for the first table or key of ``raw`` that the schema does not know.

    ``text`` is the file ``raw`` was parsed from, scanned only to name the line.
    """
    lines = _Lines(text)
    for name, value in raw.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{_at(path, lines.key(name))}[{name}] must be a table: write its settings under a [{name}] line"
                )
            _check_keys(value, SECTIONS[name], path, lines, f"[{name}]", (name, 0))
        elif name in ARRAYS_OF_TABLES:
            if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
                raise ConfigError(
                    f"{_at(path, lines.key(name))}{name} must be an array of tables: write each entry "
                    f"under its own [[{name}]] line"
                )
            for number, entry in enumerate(value):
                label = f"[[{name}]] number {number + 1}"
                if isinstance(entry.get("name"), str):
                    label = f"{name[:-1]} {entry['name']!r} ([[{name}]] number {number + 1})"
                current = {key: value for key, value in entry.items() if key not in OLDER_KEYS.get(name, ())}
                _check_keys(current, ARRAYS_OF_TABLES[name], path, lines, label, (name, number))
        else:
            _unknown_top_level(name, value, path, lines)


def _check_keys(
    table: Mapping[str, Any], known: frozenset[str], path: Path, lines: _Lines, label: str, header: tuple[str, int]
) -> None:
    """``header``: the table's name and which of its headers (the n-th ``[[teachers]]``) it is."""
    for key in table:
        if key in known:
            continue
        line = lines.after(lines.header((header[0],), header[1]), key)
        where = _either([f"[{section}]" for section, keys in SECTIONS.items() if key in keys])
        hint = _suggest(key, known)
        if hint:
            hint = f"did you mean {hint!r}? "
        elif where:
            hint = f"{key!r} belongs in {where}. "
        else:
            hint = ""
        raise ConfigError(
            f"{_at(path, line)}unknown setting {key!r} in {label}; {hint}"
            f"Valid settings there: {', '.join(sorted(known))}. Rename or remove it"
        )


def _unknown_top_level(name: str, value: object, path: Path, lines: _Lines) -> None:
    tables = [*SECTIONS, *ARRAYS_OF_TABLES]
    listed = ", ".join([*(f"[{t}]" for t in SECTIONS), *(f"[[{t}]]" for t in ARRAYS_OF_TABLES)])
    if isinstance(value, dict):
        hint = _suggest(name, tables)
        line = lines.header((name,), 0) or lines.key(name)
        raise ConfigError(
            f"{_at(path, line)}unknown table [{name}]; {f'did you mean [{hint}]? ' if hint else ''}"
            f"The tables are {listed}. Rename or remove it"
        )
    homes = _either([f"[{section}]" for section, keys in SECTIONS.items() if name in keys])
    hint = f"it belongs under {homes}" if homes else f"the tables are {listed}"
    raise ConfigError(
        f"{_at(path, lines.key(name))}unknown setting {name!r} outside any table; {hint}. "
        "Move it under its table's [header], or remove it"
    )


def _either(names: list[str]) -> str:
    return " or ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


def _suggest(word: str, candidates: Sequence[str] | frozenset[str]) -> str | None:
    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}: " if line is not None else f"{path}: "


# -- values -------------------------------------------------------------------------------------------

Read = Table | tuple[TeacherEntry, ...] | ConfigError  # a table as its model, or the error refusing it
Place = Callable[[str | None], str]  # a setting's name (None: its table) -> "file:line: " for a message


def read_tables(raw: Mapping[str, Any], text: str, path: Path) -> dict[str, Read]:
    """Every table of ``raw`` (and ``teachers``) checked by its model; a refused one holds its ConfigError.

    ``text`` is the file ``raw`` was parsed from, scanned only to name the line in a message.
    """
    lines = _Lines(text)
    read: dict[str, Read] = {}
    for name, model in TABLES.items():
        place = _place(path, lines, lines.header((name,), 0))
        read[name] = _kept(_table, model, raw.get(name, {}), f"[{name}]", place)
    read["teachers"] = _kept(_teachers, raw.get("teachers", []), path, lines)
    pool, teachers = read["teacher_pool"], read["teachers"]
    if isinstance(pool, TeacherPoolSettings) and isinstance(teachers, tuple):
        read["teacher_pool"] = _kept(
            _critics_known, pool, teachers, _place(path, lines, lines.header(("teacher_pool",), 0))
        )
    return read


def teacher_entry(entry: object, *, where: str) -> TeacherEntry:
    """One teacher entry (from the file, or a command's options) checked; ConfigError names ``where``."""
    return _teacher(entry, lambda key: f"{where}: ")


def _kept(read: Callable[..., Read], *args: Any) -> Read:
    try:
        return read(*args)
    except ConfigError as error:
        return error


def _place(path: Path, lines: _Lines, header: int | None) -> Place:
    return lambda key: _at(path, lines.after(header, key) if key is not None else header)


def _table(model: type[Table], table: object, label: str, place: Place) -> Table:
    try:
        return model.model_validate(table)
    except ValidationError as error:
        # from None: the ValidationError adds nothing the message does not already say
        raise _explained(error, model, table, label=label, between=" ", place=place) from None


def _teachers(entries: object, path: Path, lines: _Lines) -> tuple[TeacherEntry, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: teachers must be an array of tables ([[teachers]])")
    teachers = tuple(
        _teacher(entry, _place(path, lines, lines.header(("teachers",), number)))
        for number, entry in enumerate(entries)
    )
    names = [teacher.name for teacher in teachers]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        second = next(number for number, name in enumerate(names) if name in names[:number])
        raise ConfigError(
            f"{_at(path, lines.header(('teachers',), second))}teacher names must be unique; repeated: {repeated}"
        )
    return teachers


def _teacher(entry: object, place: Place) -> TeacherEntry:
    try:
        return TeacherEntry.model_validate(entry)
    except ValidationError as error:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        label = f"teacher {name!r}" if isinstance(name, str) and name.strip() else "a teacher"
        # from None: the ValidationError adds nothing the message does not already say
        raise _explained(error, TeacherEntry, entry, label=label, between=": ", place=place) from None


def _critics_known(pool: TeacherPoolSettings, teachers: tuple[TeacherEntry, ...], place: Place) -> TeacherPoolSettings:
    names = {teacher.name for teacher in teachers} | {"local"}
    for critic in pool.critics:
        if critic not in names:
            raise ConfigError(f"{place('critics')}[teacher_pool] critics names unknown teacher {critic!r}")
    return pool


def _explained(
    error: ValidationError, model: type[BaseModel], given: object, *, label: str, between: str, place: Place
) -> ConfigError:
    """The first problem of ``error`` as one sentence: place, setting, what it must be, the value, an example.

    ``label`` names the table or entry (``[vault]``, ``teacher 'ds'``), ``between`` joins it to a setting's name.
    """
    problems = error.errors(include_url=False)
    unknown = [str(problem["loc"][0]) for problem in problems if problem["type"] == "extra_forbidden"]
    if unknown:  # only a table not read from a file gets here: check_names names them, with the nearest name
        return ConfigError(f"{place(unknown[0])}{label} has unknown settings {sorted(unknown)}")
    first = problems[0]
    key = str(first["loc"][0]) if first["loc"] else None
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, SettingValueError):  # a rule a validator states in its own words
        if cause.whole or key is None:
            return ConfigError(f"{place(key)}{label} {cause.text}")
        return ConfigError(f"{place(key)}{label}{between}{key} {cause.text}")
    if key is None:
        return ConfigError(f"{place(None)}{label} must be a table of settings, not {type(given).__name__}")
    value = given.get(key) if isinstance(given, Mapping) else None
    return ConfigError(f"{place(key)}{label}{between}{key} {_must_be(model, key, value, first['msg'])}")


def _must_be(model: type[BaseModel], key: str, value: object, fallback: str) -> str:
    """What the setting ``key`` must be, the value it is, and an example."""
    field = model.model_fields.get(key)
    must = next((item for item in field.metadata if isinstance(item, Must)), None) if field is not None else None
    if must is None:
        return f"is not valid: {fallback}"
    return f"must be {must.what}, not {value!r}; e.g. {key} = {must.example}"


_HEADER = re.compile(r"\s*\[\[?([^\]]*)\]")  # no two parts can match the same characters: linear
_KEY = re.compile(r"""\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'""")
_MULTILINE_QUOTES = ('"""', "'''")


class _Lines:
    """Where each header and key of a TOML text is, to name the line in a message.

    A light scan, not a parser (the text is already known to be valid TOML), made only when a message
    needs a line: it skips the inside of multi-line strings and arrays, which could hold lines that
    look like keys or headers, and its patterns take time in proportion to a line's length whatever
    the line holds.  When it cannot tell, a message names the file without a line rather than a wrong one.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._headers: list[tuple[tuple[str, ...], int]] | None = None  # (table path, line), in order
        self._keys: list[tuple[int | None, tuple[str, ...], int]] = []  # (header index, key path, line)

    @property
    def headers(self) -> list[tuple[tuple[str, ...], int]]:
        if self._headers is None:
            self._headers = []
            self._scan()
        return self._headers

    @property
    def keys(self) -> list[tuple[int | None, tuple[str, ...], int]]:
        return self._keys if self.headers is not None else []

    def _scan(self) -> None:
        headers = self.headers
        inside: str | None = None  # the quotes of the multi-line string the scan is in
        depth = 0  # the brackets of the multi-line array the scan is in
        for number, line in enumerate(self.text.splitlines(), 1):
            if inside is not None:
                if line.count(inside) % 2 == 1:
                    inside = None
                continue
            if depth > 0:
                depth += _brackets(line)
                continue
            header, key = _HEADER.match(line), _KEY.match(line)
            if header:
                headers.append((_parts(header.group(1)), number))
            elif key:
                self._keys.append((len(headers) - 1 if headers else None, _parts(key.group(1)), number))
                value = line[key.end() :]
                inside = next((quotes for quotes in _MULTILINE_QUOTES if value.count(quotes) % 2 == 1), None)
                depth = _brackets(value) if inside is None else 0

    def header(self, table: tuple[str, ...], occurrence: int) -> int | None:
        """The line of the ``occurrence``-th (from 0) header naming ``table``."""
        found = [line for path, line in self.headers if path == table]
        return found[occurrence] if occurrence < len(found) else None

    def after(self, header_line: int | None, key: str) -> int | None:
        """The line of ``key`` in the table whose header is on ``header_line`` (or of its sub-table's header)."""
        if header_line is None:
            return None
        index = next(i for i, (_, line) in enumerate(self.headers) if line == header_line)
        for owner, path, line in self.keys:
            if owner == index and path[0] == key:
                return line
        table = self.headers[index][0]
        for path, line in self.headers[index + 1 :]:
            if path[: len(table) + 1] == (*table, key):
                return line
        return None

    def key(self, key: str) -> int | None:
        """The line of a key written before any table header."""
        return next((line for owner, path, line in self.keys if owner is None and path[0] == key), None)


def _brackets(value: str) -> int:
    """How many brackets ``value`` opens and leaves open, outside strings and comments."""
    bare = _STRING.sub("", value).split("#", 1)[0]
    return bare.count("[") - bare.count("]")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))

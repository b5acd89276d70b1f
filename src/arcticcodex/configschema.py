"""Every table and key ``arcticcodex.toml`` may hold, in one place, and the check that refuses the rest.

Why strict: a misspelt setting (``embeding_model``, ``[gpus]``) used to be ignored without a word, so
the default silently won and the user believed their setting was in force.  Each unknown name is now
an error naming the line, and the nearest valid name.  A module that starts reading a new setting adds
it to :data:`SECTIONS` (or :data:`TEACHER_KEYS`) below: nothing else refuses or allows a name.

The values themselves are checked where they are used (``[vault]`` by the vault, ``[[teachers]]`` by
:mod:`arcticcodex.teachers.config`, …); this module only knows names and which ones are tables.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["SECTIONS", "TEACHER_KEYS", "check_names"]

# [table] -> the keys it takes.  Each list is what the code reads (grep for the table's name to see where).
SECTIONS: dict[str, frozenset[str]] = {
    "workspace": frozenset({"data_dir"}),  # config.py
    "signing": frozenset({"key"}),  # config.py; the key `distill` signs with
    "vault": frozenset({"embedding_model", "chunk_chars", "overlap_chars", "rrf_k", "fusion"}),  # vault/store.py
    "teacher_pool": frozenset({"critics", "aggregate", "budget_usd"}),  # teachers/config.py
    # cli/gpu.py and gpu/manager.py
    "gpu": frozenset({"budget_usd", "run_budget_usd", "poll_interval_s", "boot_timeout_s", "vllm_timeout_s"}),
    "distill": frozenset(  # defaults of `arcticcodex distill`'s options (cli/distill.py); one line per key
        {
            "teachers",
            "drafter",
            "threshold",
            "max_rounds",
            "concurrency",
            "budget_usd",
            "validation",
            "key",
            "questions_per_chunk",
            "questions_by",
            "limit",
            "review",
            "keep_near_duplicates",
        }
    ),
}

# [[teachers]] -> the keys each entry takes: TeacherConfig's fields, less the ones load_teachers decides.
TEACHER_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "preset",
        "model",
        "base_url",
        "api_key_env",
        "api_key_file",
        "replicas",
        "roles",
        "price_input",
        "price_cached_input",
        "price_output",
        "concurrency",
        "timeout",
        "max_attempts",
        "temperature",
        "max_tokens",
        "json_mode",
    }
)
ARRAYS_OF_TABLES: dict[str, frozenset[str]] = {"teachers": TEACHER_KEYS}


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
                _check_keys(entry, ARRAYS_OF_TABLES[name], path, lines, label, (name, number))
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

"""``arcticcodex forge``: encode, decode, validate, canonicalize and diff ForgeNumerics-S.

Every command reads a file or standard input, one token or frame per line (blank lines are skipped),
and reports a bad line as ``FILE:LINE:COLUMN: CODE message`` with a context snippet and a hint,
exiting with status 1.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import IO

import click

from ..errors import ArcticCodexError, ForgeError, UserError
from ..forge import Frame, Item, parse_frame, parse_item, token_to_json
from ..forge.blob import utf8_bytes
from ..forge.frame import decimal_int, decimal_text, item_from_json
from ..forge.legacy import read_legacy
from ..forge.schemas import problems
from ..forge.tokens import Blob, Dec, Float, SInt, Text, UInt

INPUT = click.argument("source", type=click.File("r", encoding="utf-8"), default="-", required=False)
LEGACY = click.option(
    "--legacy",
    is_flag=True,
    help="Read frames as the original ArcticCodex wrote them (≛≗ headers, ' ∷ ' FLOAT-T).",
)


@click.group()
def forge() -> None:
    """Work with ForgeNumerics-S tokens, frames and .fn documents (one frame per line)."""


def _lines(source: IO[str]) -> Iterator[tuple[int, str]]:
    number = 0
    try:
        for number, line in enumerate(source, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield number, text
    except UnicodeDecodeError as exc:
        # from None: the UnicodeDecodeError adds nothing the message does not already say
        raise UserError(
            f"{_name(source)}:{number + 1}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
            "ForgeNumerics-S files are UTF-8"
        ) from None


def _json(text: str) -> object:
    """JSON without NaN/Infinity extensions (so ``NaN`` is text) and with a clear error for huge numbers."""

    def refuse(constant: str) -> object:
        raise json.JSONDecodeError(f"{constant} is not JSON", constant, 0)

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # Python refuses integers past 4,300 digits (and says to change a limit)
        digits = str(exc).partition("value has ")[2].partition(" digits")[0] or "too many"
        # from None: the ValueError adds nothing the message does not already say
        raise UserError(
            f"cannot read {text[:40]!r}…: an integer of {digits} digits is past the 4,300 JSON numbers may have "
            'here; write it as digits in a string: {"uint": "123…"} (or {"sint": "-123…"})'
        ) from None
    except RecursionError:
        # from None: the RecursionError adds nothing the message does not already say
        raise UserError(
            f"cannot read {text[:40]!r}…: nested too deeply for JSON (at most about 1,000 levels)"
        ) from None


def _name(source: IO[str]) -> str:
    name = getattr(source, "name", "-")
    return "<stdin>" if name in ("-", "<stdin>") else str(name)


def _read_item(text: str, *, legacy: bool) -> Item:
    if legacy and text.lstrip().startswith("⧆"):
        return read_legacy(text)
    return parse_item(text)


def _located(error: ForgeError, source: IO[str], line: int) -> ForgeError:
    return error.relocated(line_offset=line - 1, source=_name(source))


def _read_all(source: IO[str], *, legacy: bool) -> Iterator[tuple[int, Item]]:
    for number, text in _lines(source):
        try:
            item = _read_item(text, legacy=legacy)
        except ForgeError as error:
            # from None: _located returns this same error, placed in the file; it cannot be its own cause
            raise _located(error, source, number) from None
        yield number, item


def _read_frames(source: IO[str], *, legacy: bool) -> Iterator[tuple[int, Frame]]:
    for number, text in _lines(source):
        try:
            frame = read_legacy(text) if legacy else parse_frame(text)
        except ForgeError as error:
            # from None: _located returns this same error, placed in the file; it cannot be its own cause
            raise _located(error, source, number) from None
        yield number, frame


# --- encode --------------------------------------------------------------------------------------

_KINDS = ("auto", "text", "uint", "uint-l", "sint", "decimal", "float", "blob", "blob-hex", "blob-base64")


def _encode_argument(value: str, kind: str) -> Item:
    if kind == "auto":
        try:
            parsed = _json(value)
        except json.JSONDecodeError:
            return Text(value)
        return item_from_json(parsed)
    if kind == "text":
        return Text(value)
    if kind in ("uint", "uint-l", "sint"):
        try:
            number = decimal_int(value) if value.lstrip("+-").isdigit() else int(value, 0)
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise UserError(f"{value[:40]!r} is not an integer (decimal, or 0x… / 0o… / 0b…)") from None
        return SInt(number) if kind == "sint" else UInt(number, length_prefixed=kind == "uint-l")
    if kind == "decimal":
        return Dec(value)
    if kind == "float":
        try:
            return Float(float(value))
        except ValueError:
            # from None: the ValueError adds nothing the message does not already say
            raise UserError(f"{value!r} is not a float (e.g. 0.1, -2.5e3, nan, inf)") from None
    if kind == "blob":
        return Blob(utf8_bytes(value, "the value"))
    try:
        return Blob(bytes.fromhex(value) if kind == "blob-hex" else base64.b64decode(value, validate=True))
    except ValueError as exc:
        # from None: the ValueError adds nothing the message does not already say
        raise UserError(f"cannot decode {value!r} as {kind[5:]}: {exc}") from None


@forge.command(context_settings={"ignore_unknown_options": True})
@click.argument("values", nargs=-1)
@click.option("--as", "kind", type=click.Choice(_KINDS), default="auto", show_default=True, help="Profile of VALUES.")
@click.option("--input", "source", type=click.File("r", encoding="utf-8"), help="Read JSON values, one per line.")
def encode(values: tuple[str, ...], kind: str, source: IO[str] | None) -> None:
    """Encode values as canonical tokens or frames, one per line.

    VALUES are taken as KIND; with --as auto each is JSON (a number, a string, a typed object such
    as {"decimal": "0.95"}, {"float": "nan"}, {"utf8": "text"}, {"uint": 5, "length_prefixed": true},
    or a frame {"header": {...}, "payload": [...]}) and anything that is not JSON is text.  Without
    VALUES, JSON values are read one per line from --input or standard input.

    \b
    Examples:
      arcticcodex forge encode 42 -14 '"hello world"' '{"decimal": "-12.34"}'
      arcticcodex forge encode --as float 0.1 nan -0.0
      echo '{"header": {"TYPE": "LOG"}, "payload": ["MSG", "hi"]}' | arcticcodex forge encode
    """
    if values:
        for value in values:
            click.echo(_encode_argument(value, kind).to_text())
        return
    stream: IO[str] = source if source is not None else sys.stdin
    for number, text in _lines(stream):
        try:
            parsed = _json(text)
        except json.JSONDecodeError as exc:
            # from None: the JSONDecodeError adds nothing the message does not already say
            raise UserError(
                f"{_name(stream)}:{number}:{exc.colno}: not JSON ({exc.msg}); one JSON value per line"
            ) from None
        try:
            click.echo(item_from_json(parsed).to_text())
        except ArcticCodexError as error:
            # from None: the ArcticCodexError adds nothing the message does not already say
            raise UserError(f"{_name(stream)}:{number}: {error}") from None


# --- decode --------------------------------------------------------------------------------------


def _describe(item: Item, indent: str = "") -> Iterator[str]:
    if isinstance(item, Frame):
        yield f"{indent}frame {item.type or '(no TYPE)'}"
        for key in sorted(item.header):
            yield f"{indent}  {key} = {_short(item.header[key])}"
        for position, entry in enumerate(item.payload):
            if isinstance(entry, Frame):
                yield f"{indent}  [{position}]"
                yield from _describe(entry, indent + "    ")
            else:
                yield f"{indent}  [{position}] {_short(entry)}"
    else:
        yield indent + _short(item)


def _short(token: Item) -> str:
    names = {Text: "text", UInt: "INT-U3", SInt: "INT-S3", Dec: "DECIMAL-T", Float: "FLOAT-T", Blob: "BLOB-T"}
    name = names.get(type(token), "token")
    if isinstance(token, UInt) and token.length_prefixed:
        name = "INT-U3-L"
    if isinstance(token, UInt | SInt) and not isinstance(token_to_json(token), int):
        digits = decimal_text(token.value)  # beyond the JSON limit: show the digits, not a typed object
        return f"{name} {digits[:60]}… ({len(digits.lstrip('-')):,} digits)"
    value = json.dumps(token_to_json(token), ensure_ascii=False)
    if len(value) > 120:
        value = value[:117] + "…"
    return f"{name} {value}"


@forge.command()
@INPUT
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with one item per input line.")
@LEGACY
def decode(source: IO[str], as_json: bool, legacy: bool) -> None:
    """Decode tokens and frames, one per line, into readable values.

    With --json the output is one JSON list, one item per non-blank input line: a token as its value,
    a frame as {"header": {...}, "payload": [...]}; integers are numbers, decimals strings, floats
    numbers ("nan", "inf", "-inf" as strings), blobs {"utf8": text} or {"base64": ...}.  Integers
    of more than 4,300 decimal digits (more than most JSON readers accept as a number) are written
    as {"uint": "digits"} or {"sint": "-digits"}, which `forge encode` reads back.

    \b
    Examples:
      echo '≗⊙⊙⊗⊗Φ⊙' | arcticcodex forge decode          # INT-U3 42
      arcticcodex forge decode --json frames.fn
    """
    if not as_json:
        for _, item in _read_all(source, legacy=legacy):
            for line in _describe(item):
                click.echo(line)
        return
    items = [json.dumps(token_to_json(item), ensure_ascii=False) for _, item in _read_all(source, legacy=legacy)]
    click.echo("[" + ",\n ".join(items) + "]")


# --- validate ------------------------------------------------------------------------------------


@forge.command()
@INPUT
@LEGACY
@click.pass_context
def validate(ctx: click.Context, source: IO[str], legacy: bool) -> None:
    """Check that every line is a well-formed frame that satisfies its TYPE's schema.

    Reports every problem (not just the first) as FILE:LINE:COLUMN: CODE message; exits 1 if any.

    \b
    Example:
      arcticcodex forge validate dataset.fn
    """
    name, count, bad = _name(source), 0, 0
    for number, text in _lines(source):
        count += 1
        try:
            frame = read_legacy(text) if legacy else parse_frame(text)
        except ForgeError as error:
            bad += 1
            click.echo(str(_located(error, source, number)), err=True)
            continue
        for problem in problems(frame):
            bad += 1
            click.echo(f"{name}:{number}:1: {problem}", err=True)
    if bad:
        click.echo(f"{bad} problem(s) in {count} frame(s)", err=True)
        ctx.exit(1)
    click.echo(f"ok: {count} frame(s) valid")


# --- canonicalize --------------------------------------------------------------------------------


@forge.command()
@INPUT
@LEGACY
@click.option("--check", is_flag=True, help="Print nothing; exit 1 if any line is not already canonical.")
@click.pass_context
def canonicalize(ctx: click.Context, source: IO[str], legacy: bool, check: bool) -> None:
    """Print the canonical form of each frame, one per line.

    Canonical: header fields sorted by key, numbers without leading zeros or redundant scale, −0 as
    0, strings as words where possible, no whitespace outside literals.  Idempotent.  With --legacy,
    frames written by the original ArcticCodex are read as it meant them and re-written canonically.

    \b
    Examples:
      arcticcodex forge canonicalize frames.fn > frames.canonical.fn
      arcticcodex forge canonicalize --legacy old-export.fn
    """
    differing = 0
    for number, text in _lines(source):
        try:
            frame = read_legacy(text) if legacy else parse_frame(text)
        except ForgeError as error:
            # from None: _located returns this same error, placed in the file; it cannot be its own cause
            raise _located(error, source, number) from None
        canonical = frame.to_text()
        if check:
            if canonical != text:
                differing += 1
                click.echo(f"{_name(source)}:{number}: not canonical", err=True)
        else:
            click.echo(canonical)
    if differing:
        ctx.exit(1)


# --- diff ----------------------------------------------------------------------------------------


def _frame_diff(left: Frame, right: Frame) -> Iterator[str]:
    for key in sorted(set(left.header) | set(right.header)):
        a, b = left.header.get(key), right.header.get(key)
        if a is None and b is not None:
            yield f"  + header {key} = {_short(b)}"
        elif b is None and a is not None:
            yield f"  - header {key} = {_short(a)}"
        elif a is not None and b is not None and a != b:
            yield f"  ~ header {key}: {_short(a)} → {_short(b)}"
    for position in range(max(len(left.payload), len(right.payload))):
        a_item = left.payload[position] if position < len(left.payload) else None
        b_item = right.payload[position] if position < len(right.payload) else None
        if a_item == b_item:
            continue
        if a_item is None:
            yield f"  + payload[{position}] {_summary(b_item)}"
        elif b_item is None:
            yield f"  - payload[{position}] {_summary(a_item)}"
        else:
            yield f"  ~ payload[{position}]: {_summary(a_item)} → {_summary(b_item)}"


def _summary(item: Item | None) -> str:
    if isinstance(item, Frame):
        return f"frame {item.type or '(no TYPE)'}"
    return _short(item) if item is not None else "(none)"


@forge.command()
@click.argument("left", type=click.File("r", encoding="utf-8"))
@click.argument("right", type=click.File("r", encoding="utf-8"))
@LEGACY
@click.pass_context
def diff(ctx: click.Context, left: IO[str], right: IO[str], legacy: bool) -> None:
    """Compare two .fn documents frame by frame, by value (formatting differences do not count).

    Exits 0 when they hold the same frames, 1 when they differ.

    \b
    Example:
      arcticcodex forge diff before.fn after.fn
    """
    left_frames = [frame for _, frame in _read_frames(left, legacy=legacy)]
    right_frames = [frame for _, frame in _read_frames(right, legacy=legacy)]
    changes = 0
    for index in range(max(len(left_frames), len(right_frames))):
        a = left_frames[index] if index < len(left_frames) else None
        b = right_frames[index] if index < len(right_frames) else None
        if a == b:
            continue
        changes += 1
        if a is None or b is None:
            sign, frame = ("+", b) if a is None else ("-", a)
            click.echo(f"{sign} frame {index + 1}: {frame.type if frame else ''}")
            continue
        click.echo(f"~ frame {index + 1} ({a.type or 'no TYPE'}):")
        for line in _frame_diff(a, b):
            click.echo(line)
    if changes:
        click.echo(f"{changes} frame(s) differ", err=True)
        ctx.exit(1)
    click.echo(f"same: {len(left_frames)} frame(s)", err=True)
    sys.stdout.flush()

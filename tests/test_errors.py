"""The error tree: ForgeError rendering, relocation, locations, and the documented hierarchy."""

from __future__ import annotations

import inspect
import re

import pytest

import arcticcodex.errors as errors_module
from arcticcodex.errors import (
    ArcticCodexError,
    EncodeError,
    ForgeError,
    ParseError,
    SourceLocation,
    UserError,
    ValidationError,
    context_snippet,
)
from arcticcodex.forge import parse_frame

TEXT = "⧆≛TYPE⦙≛A∷\n≛x⦙≗⊙⊙x⧈"


def test_rendering_has_place_code_context_and_hint() -> None:
    offset = TEXT.index("x⧈")
    error = ParseError("PARSE_006", "not a base-3 digit", hint="digits are ⊙ ⊗ Φ", text=TEXT, offset=offset)
    assert (error.line, error.column, error.offset) == (2, 7, offset)
    assert str(error) == "line 2:7: PARSE_006 not a base-3 digit\n    ≛x⦙≗⊙⊙▼x⧈\n    hint: digits are ⊙ ⊗ Φ"
    assert error.code == "PARSE_006"
    assert error.detail == "not a base-3 digit"
    assert error.context == "≛x⦙≗⊙⊙▼x⧈"  # only the current line, marker before the spot
    assert isinstance(error, ForgeError) and isinstance(error, UserError)


def test_rendering_without_location_or_hint() -> None:
    assert str(EncodeError("ENCODE_001", "too big")) == "ENCODE_001 too big"
    error = ValidationError("VALIDATE_004", "no TYPE", field="TYPE", source="doc.fn")
    assert str(error) == "doc.fn: VALIDATE_004 no TYPE"
    assert error.field == "TYPE"
    assert (error.line, error.column, error.offset) == (None, None, None)
    assert error.location is None and error.context == ""


def test_source_replaces_the_word_line() -> None:
    error = ParseError("PARSE_001", "expected ⧆", text="abc", offset=0, source="in.fn")
    assert str(error).startswith("in.fn:1:1: PARSE_001 expected ⧆\n    ▼abc")


def test_relocated_shifts_the_line_and_names_the_source() -> None:
    error = ParseError("PARSE_006", "bad digit", hint="h", text="≗⊙⊙x", offset=3)
    assert str(error).startswith("line 1:4: PARSE_006")
    moved = error.relocated(line_offset=41, source="data/train.fn")
    assert moved is error
    assert (moved.line, moved.column, moved.offset) == (42, 4, 3)
    assert moved.source == "data/train.fn"
    assert str(moved) == "data/train.fn:42:4: PARSE_006 bad digit\n    ≗⊙⊙▼x\n    hint: h"
    assert moved.args == (str(moved),)
    # relocating again keeps adding; relocating with no source keeps the one it has
    assert str(moved.relocated(line_offset=1)).startswith("data/train.fn:43:4: ")


def test_relocated_without_a_location_only_names_the_source() -> None:
    error = ValidationError("VALIDATE_006", "no schema for TYPE NOPE").relocated(line_offset=5, source="x.fn")
    assert error.line is None
    assert str(error) == "x.fn: VALIDATE_006 no schema for TYPE NOPE"


def test_raised_and_caught_errors_keep_their_message() -> None:
    with pytest.raises(ParseError) as caught:
        parse_frame("⧆≛TYPE⦙≛A∷≗⊙⊙x⧈")
    error = caught.value
    assert (error.code, error.line, error.column) == ("PARSE_006", 1, 14)
    assert str(error).startswith("line 1:14: PARSE_006 ")
    assert "▼x⧈" in str(error)
    assert "hint: " in str(error)


def test_context_snippet_is_clipped_to_the_line_and_radius() -> None:
    line = "a" * 50 + "X" + "b" * 50
    text = "first line\n" + line + "\nlast line"
    offset = text.index("X")
    assert context_snippet(text, offset, radius=5) == "…aaaaa▼Xbbbb…"
    assert context_snippet("ab\ncd", 3) == "▼cd"
    assert context_snippet("ab\ncd", 2) == "ab▼"  # at a line end
    assert context_snippet("", 0) == "▼"


def test_source_location_counts_code_points_across_lines() -> None:
    text = "a😀b\n𝄞x😀y\n\n🎉"
    assert len(text) == 11  # astral characters are one code point each…
    assert len(text.encode("utf-16-le")) // 2 == 15  # …not two UTF-16 units
    assert SourceLocation.of(text, 0) == SourceLocation(offset=0, line=1, column=1)
    assert SourceLocation.of(text, 2) == SourceLocation(offset=2, line=1, column=3)  # 'b'
    assert SourceLocation.of(text, 3) == SourceLocation(offset=3, line=1, column=4)  # the newline
    assert SourceLocation.of(text, text.index("y")) == SourceLocation(offset=7, line=2, column=4)
    assert SourceLocation.of(text, 9) == SourceLocation(offset=9, line=3, column=1)  # empty line
    assert SourceLocation.of(text, text.index("🎉")) == SourceLocation(offset=10, line=4, column=1)
    assert SourceLocation.of(text, 11) == SourceLocation(offset=11, line=4, column=2)  # the end
    # offsets are clamped into the text
    assert SourceLocation.of(text, -5) == SourceLocation(offset=0, line=1, column=1)
    assert SourceLocation.of(text, 999) == SourceLocation(offset=11, line=4, column=2)


def test_parse_error_columns_are_code_points() -> None:
    text = "⧆≛TYPE⦙≛⟦😀🎉 x⟧∷≗⊙⊙x⧈"
    with pytest.raises(ParseError) as caught:
        parse_frame(text)
    assert caught.value.offset == text.index("x⧈") == 18
    assert caught.value.column == 19
    assert "▼x⧈" in str(caught.value)


# --- the documented tree -------------------------------------------------------------------------


def documented_tree() -> dict[str, str | None]:
    """Class name → parent name, read from the box drawing in the module docstring."""
    doc = errors_module.__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"    [│├└─ ]*([A-Z][A-Za-z]*Error)\b", line)  # indented: the drawing
        if not match:
            continue
        name, depth = match.group(1), match.start(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def error_classes() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors_module, inspect.isclass)
        if cls.__module__ == errors_module.__name__ and issubclass(cls, BaseException)
    }


def test_every_exported_error_is_in_the_docstring_tree_under_its_real_parent() -> None:
    tree = documented_tree()
    exported = [name for name in errors_module.__all__ if name in error_classes()]
    assert exported, "no error classes exported"
    for name in exported:
        assert name in tree, f"{name} is exported but missing from the errors.py docstring tree"
        cls = error_classes()[name]
        parent = tree[name]
        if parent is None:
            assert cls is ArcticCodexError
        else:
            assert cls.__bases__ == (getattr(errors_module, parent),), f"{name} is not under {parent}"
    assert set(tree) == set(exported)  # and the tree names nothing that is not exported


def test_every_error_class_is_exported() -> None:
    classes = error_classes()
    assert set(classes) <= set(errors_module.__all__)
    for name in errors_module.__all__:
        assert hasattr(errors_module, name), f"__all__ names {name}, which errors.py does not define"
    assert all(issubclass(cls, ArcticCodexError) for cls in classes.values())
    non_errors = set(errors_module.__all__) - set(classes)
    assert non_errors == {"SourceLocation"}
    assert errors_module.__all__ == sorted(errors_module.__all__)

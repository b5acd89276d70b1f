"""Prompts files: JSONL and CSV read as the same prompts, streamed, and every bad record named by file, line, field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.distill import PromptItem, read_prompts
from arcticcodex.errors import PromptFileError, UserError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_fields_are_read_and_normalised(tmp_path: Path) -> None:
    lines = [
        {"instruction": "  What is a vault?  ", "evidence": "The vault is SQLite.", "reference": "A SQLite store."},
        {"instruction": "Name two formats.", "evidence": ["JSONL is one.", "  ", "CSV is two."], "topic": "formats"},
        {"instruction": "No evidence here."},
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2])
    path = _write(tmp_path / "p.jsonl", text)

    items = list(read_prompts(path))

    assert [item.instruction for item in items] == ["What is a vault?", "Name two formats.", "No evidence here."]
    assert items[0].evidence == ("The vault is SQLite.",) and items[0].reference == "A SQLite store."
    assert items[1].evidence == ("JSONL is one.", "CSV is two.") and items[1].metadata == {"topic": "formats"}
    assert items[2].evidence == () and items[2].reference is None
    assert [item.origin for item in items] == [f"{path}:1", f"{path}:2", f"{path}:4"]


def test_csv_reads_the_same_prompts_as_jsonl_including_quoted_line_breaks(tmp_path: Path) -> None:
    csv_path = _write(
        tmp_path / "p.csv",
        "instruction,evidence,reference\n"
        '"What is a vault?","The vault\nis SQLite.",A SQLite store.\n'
        'Name two formats.,"[""JSONL is one."", ""CSV is two.""]",\n'
        "\n"
        "No evidence here.,,\n",
    )
    jsonl_path = _write(
        tmp_path / "p.jsonl",
        "\n".join(
            json.dumps(record)
            for record in (
                {
                    "instruction": "What is a vault?",
                    "evidence": "The vault\nis SQLite.",
                    "reference": "A SQLite store.",
                },
                {"instruction": "Name two formats.", "evidence": ["JSONL is one.", "CSV is two."]},
                {"instruction": "No evidence here."},
            )
        ),
    )

    from_csv = list(read_prompts(csv_path))
    from_jsonl = list(read_prompts(jsonl_path))

    assert [(i.instruction, i.evidence, i.reference) for i in from_csv] == [
        (i.instruction, i.evidence, i.reference) for i in from_jsonl
    ]
    assert [item.key for item in from_csv] == [item.key for item in from_jsonl]
    # Lines are where each record starts: the first spans lines 2-3, the blank line 5 is skipped.
    assert [item.origin.rsplit(":", 1)[1] for item in from_csv] == ["2", "4", "6"]


def test_tsv_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_bytes("\ufeffinstruction\tevidence\nWhy?\tBecause.\n".encode())
    assert list(read_prompts(path)) == [PromptItem("Why?", ("Because.",), origin=f"{path}:2")]


def test_key_depends_on_content_only() -> None:
    base = PromptItem("Q", ("a", "b"), "r", origin="x:1")
    assert base.key == PromptItem("Q", ("a", "b"), "r", metadata={"k": 1}, origin="y:9").key
    different = [
        PromptItem("Q", ("a",), "r"),
        PromptItem("Q", ("ab",), "r"),
        PromptItem("Q", ("a", "b")),
        PromptItem("Q "),
    ]
    assert len({base.key, *(item.key for item in different)}) == 5
    # Boundaries are length-prefixed: moving text between evidence items changes the key.
    assert PromptItem("Q", ("ab", "c")).key != PromptItem("Q", ("a", "bc")).key


def test_reading_is_lazy_so_large_files_stream(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", json.dumps({"instruction": "fine"}) + "\n{broken\n")
    prompts = read_prompts(path)
    assert next(prompts).instruction == "fine"  # the bad second line is not read until asked for
    with pytest.raises(PromptFileError):
        next(prompts)


@pytest.mark.parametrize(
    ("name", "text", "line", "field", "phrase"),
    [
        ("p.jsonl", '{"instruction": "ok"}\n{"instruction": "a",\n', 2, None, "not valid JSON"),
        ("p.jsonl", '["a list"]\n', 1, None, "expected a JSON object, found a list"),
        ("p.jsonl", '{"evidence": "x"}\n', 1, "instruction", "'instruction' must be a non-empty text, found missing"),
        ("p.jsonl", '{"instruction": "  "}\n', 1, "instruction", "non-empty text"),
        ("p.jsonl", '{"instruction": 7}\n', 1, "instruction", "found a number"),
        ("p.jsonl", '{"instruction": "q", "evidence": 3}\n', 1, "evidence", "text or a list of texts, found a number"),
        ("p.jsonl", '{"instruction": "q", "evidence": ["a", {}]}\n', 1, "evidence", "item 1 is an object"),
        ("p.jsonl", '{"instruction": "q", "reference": ["a"]}\n', 1, "reference", "'reference' must be a text"),
        ("p.jsonl", '{"instruction": "q", "evidnce": "a"}\n', 1, "evidnce", "did you mean 'evidence'"),
        ("p.csv", "question,evidence\nq,e\n", 1, "instruction", "no 'instruction' column"),
        ("p.csv", "instuction,evidence\nq,e\n", 1, "instuction", "did you mean 'instruction'"),
        ("p.csv", "instruction,instruction\nq,e\n", 1, None, "more than once"),
        ("p.csv", "instruction,evidence\nq,e\nq,e,extra\n", 3, None, "3 cells but the header has 2"),
        ("p.csv", "instruction,evidence\nq,[not json\n", 2, "evidence", "not a JSON list"),
        ("p.csv", 'instruction,evidence\nq,e\n"unterminated,e\n', 3, None, "not valid CSV"),
        ("p.csv", "instruction,evidence\n,e\n", 2, "instruction", "non-empty text"),
    ],
)
def test_bad_records_are_named_by_file_line_and_field(
    tmp_path: Path, name: str, text: str, line: int, field: str | None, phrase: str
) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(PromptFileError) as caught:
        list(read_prompts(path))
    error = caught.value
    assert isinstance(error, UserError)
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert str(error).startswith(f"{path}:{line}: ")
    assert phrase in str(error)


def test_file_level_problems_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match=r"unknown prompts file type '\.txt'.*\*\.jsonl"):
        list(read_prompts(_write(tmp_path / "p.txt", "instruction\n")))
    with pytest.raises(PromptFileError, match="cannot open the prompts file"):
        list(read_prompts(tmp_path / "missing.jsonl"))
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"instruction": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(PromptFileError, match=r"not UTF-8.*re-save it as UTF-8"):
        list(read_prompts(latin1))


def test_an_empty_file_has_no_prompts(tmp_path: Path) -> None:
    assert list(read_prompts(_write(tmp_path / "p.csv", ""))) == []
    assert list(read_prompts(_write(tmp_path / "p.jsonl", "\n\n"))) == []

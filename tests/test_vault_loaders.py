"""The loaders: text, Markdown, HTML, PDF and JSONL conversations, and every way a file can be wrong."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfWriter

from arcticcodex.errors import UserError
from arcticcodex.vault.chunker import chunk_text
from arcticcodex.vault.loaders import (
    SUPPORTED_SUFFIXES,
    Conversation,
    LoadedDocument,
    Message,
    load_document,
)


def build_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF, one Helvetica text line per string, written by hand (xref offsets and all)."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        content = "".join(f"BT /F1 12 Tf 72 {720 - 20 * n} Td ({line}) Tj ET\n" for n, line in enumerate(lines))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content.encode()))
    trailer = b"/Root 1 0 R"
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        trailer += b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def encrypted(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def jsonl(*records: object) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


# --- text and Markdown -------------------------------------------------------------------------------


def test_plain_text_is_stored_unchanged_so_byte_offsets_match_the_file() -> None:
    data = "Crème brûlée 😀\r\n\r\nSecond\tparagraph.\r\n".encode()
    doc = load_document(Path("notes/my_first-note.txt"), data)
    assert doc == LoadedDocument(title="my first note", text=data.decode(), media_type="text/plain")
    for chunk in chunk_text(doc.text):
        assert data[chunk.start_byte : chunk.end_byte] == doc.text[chunk.start : chunk.end].encode()


def test_bom_is_kept_so_offsets_still_match_the_file() -> None:
    data = "\ufeff# Guide\n\nBody.".encode()
    doc = load_document(Path("guide.MD"), data)
    assert doc.text.encode() == data
    assert (doc.title, doc.media_type) == ("Guide", "text/markdown")
    [chunk] = chunk_text(doc.text)
    assert chunk.start_byte == 0 and chunk.heading == "Guide"


def test_markdown_title_is_the_first_heading_outside_code() -> None:
    text = "Intro line\n\n```sh\n# not a title\n```\n\n## Real Title ##\n\n# Later\n"
    assert load_document(Path("a.markdown"), text.encode()).title == "Real Title"
    assert load_document(Path("read-me.md"), b"no headings").title == "read me"
    assert load_document(Path("x.text"), b"# Heading").title == "x"  # plain text: only the stem


def test_invalid_utf8_names_the_file_byte_and_fix() -> None:
    """UTF-8 with a stray byte is damaged, not another encoding (a latin-1 file is decoded: issue 12)."""
    data = "ok liné\n".encode() + b"caf\xe9 au lait"
    with pytest.raises(UserError) as caught:
        load_document(Path("menu.txt"), data)
    message = str(caught.value)
    assert "menu.txt" in message and "byte 12" in message and "0xe9" in message and "line 2" in message
    assert "iconv -f latin1 -t utf-8" in message


def test_unsupported_suffix_lists_the_supported_ones() -> None:
    with pytest.raises(UserError, match=r"'\.docx'.*\.htm \.html \.jsonl \.markdown \.md \.pdf \.rst \.text \.txt"):
        load_document(Path("report.docx"), b"")
    with pytest.raises(UserError, match="no suffix"):
        load_document(Path("Makefile"), b"")
    assert {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".jsonl"} == SUPPORTED_SUFFIXES


# --- HTML --------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>  The   Page &amp; Title </title>
<style>p { color: red }</style><script>var x = "<p>not text</p>";</script></head>
<body>
  <noscript>enable JS</noscript><template><p>hidden</p></template>
  <h1>Main heading</h1>
  <div><p>First   <b>bold</b>
     paragraph &lt;tag&gt; &eacute;&#233;&#x1F600;.</p><div>Nested <i>block</i></div></div>
  <ul><li>one</li><li>two<br>lines</li></ul>
  <pre>
  code  line 1
    indented

  after blank</pre>
  <table><tr><td>a</td><td>b</td></tr></table>
  <p>Non&nbsp;breaking</p>
</body></html>"""


def test_html_extracts_visible_text_as_paragraphs() -> None:
    doc = load_document(Path("page.html"), PAGE.encode())
    assert doc.title == "The Page & Title"
    assert doc.media_type == "text/html"
    assert doc.text.split("\n\n") == [
        "Main heading",
        "First bold paragraph <tag> éé😀.",
        "Nested block",
        "one",
        "two\nlines",  # <br> breaks a line, not a paragraph (issue 12)
        "  code  line 1\n    indented",
        "  after blank",
        "a b",
        "Non breaking",  # a non-breaking space is a space (issue 12)
    ]
    for hidden in ("color", "not text", "enable JS", "hidden", "var x"):
        assert hidden not in doc.text


def test_html_title_falls_back_to_first_h1_then_stem() -> None:
    page = b"<html><body><h1></h1><h1>  First <em>real</em> h1 </h1><h1>Second</h1></body></html>"
    assert load_document(Path("x.htm"), page).title == "First real h1"
    assert load_document(Path("my_page.htm"), b"<p>just text</p>").title == "my page"


def test_html_without_closing_head_keeps_the_body() -> None:
    page = b"<html><head><title>T</title><p>Body text</p></html>"
    assert load_document(Path("x.html"), page).text == "Body text"


def test_html_meta_charset_is_honoured_and_bad_bytes_rejected() -> None:
    page = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><p>café</p>'
    assert load_document(Path("x.html"), page.encode("latin-1")).text == "café"
    unknown = b'<meta charset="no-such-charset"><p>caf\xc3\xa9</p>'
    assert load_document(Path("x.html"), unknown).text == "café"
    not_text = b'<meta charset="rot13"><p>plain</p>'
    assert load_document(Path("x.html"), not_text).text == "plain"
    with pytest.raises(UserError, match=r"page\.html is not valid utf-8: byte 25 \(0xff"):
        load_document(Path("page.html"), b'<meta charset="utf-8"><p>\xff</p>')  # declared: no guessing


# --- PDF ---------------------------------------------------------------------------------------------


def test_pdf_text_per_page_and_metadata_title() -> None:
    data = build_pdf([["Hello PDF world.", "Second line"], [], ["Page three"]], title="Quarterly Report")
    doc = load_document(Path("q3-report.pdf"), data)
    assert doc.media_type == "application/pdf"
    assert doc.title == "Quarterly Report"
    assert doc.text == "Hello PDF world.\nSecond line\n\nPage three"
    assert load_document(Path("q3-report.pdf"), build_pdf([["Text"]])).title == "q3 report"


def test_pdf_encrypted_with_empty_user_password_opens() -> None:
    doc = load_document(Path("open.pdf"), encrypted(build_pdf([["Readable"]]), ""))
    assert doc.text == "Readable"


def test_pdf_encrypted_with_a_password_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"locked\.pdf is encrypted with a password.*decrypt"):
        load_document(Path("locked.pdf"), encrypted(build_pdf([["Secret"]]), "secret"))


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a pdf at all",
        b"",
        build_pdf([["Cut short"]])[:150],
        b"%PDF-1.4\n" + bytes(range(256)) * 4,
    ],
)
def test_damaged_pdf_is_a_user_error(data: bytes) -> None:
    with pytest.raises(UserError, match=r"broken\.pdf (could not be read as a PDF|has no pages)"):
        load_document(Path("broken.pdf"), data)


def test_pdf_without_text_asks_for_ocr() -> None:
    with pytest.raises(UserError, match=r"scan\.pdf has no extractable text.*OCR"):
        load_document(Path("scan.pdf"), build_pdf([[], []]))


# --- JSONL conversations -----------------------------------------------------------------------------


def test_jsonl_one_message_per_line_is_one_conversation() -> None:
    data = jsonl(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the vault?", "citations": ["doc-1:0"]},
        {"role": "assistant", "content": "A local store.", "evidence": ["doc-1:0", "doc-1:2"]},
        {"role": "tool", "content": "{}"},
    )
    doc = load_document(Path("chat.jsonl"), b"\n" + data + b"\n\n")
    assert doc.media_type == "application/x-ndjson"
    [conversation] = doc.conversations
    assert conversation == Conversation(
        title="What is the vault?",
        messages=(
            Message("system", "Be brief."),
            Message("user", "What is the vault?", ("doc-1:0",)),
            Message("assistant", "A local store.", ("doc-1:0", "doc-1:2")),
            Message("tool", "{}"),
        ),
    )
    assert doc.title == "What is the vault?"
    assert doc.text == (
        "# What is the vault?\n\nSystem: Be brief.\n\nUser: What is the vault?\n\nAssistant: A local store.\n\nTool: {}"
    )
    assert {c.heading for c in chunk_text(doc.text)} == {"What is the vault?"}


def test_jsonl_one_conversation_per_line() -> None:
    long_question = "Please explain " + "in great detail " * 10
    data = jsonl(
        {"id": "c-1", "title": "  Greeting\n", "messages": [{"role": "user", "content": "Hi"}]},
        {"id": 7, "messages": [{"role": "user", "content": long_question}, {"role": "assistant", "content": "Ok"}]},
        {"messages": [{"role": "assistant", "content": "Unprompted"}]},
    )
    doc = load_document(Path("many_chats.jsonl"), data)
    first, second, third = doc.conversations
    assert (first.title, first.external_id) == ("Greeting", "c-1")
    assert second.external_id == "7" and len(second.title) == 60 and second.title.endswith("…")
    assert second.title.startswith("Please explain in great detail")
    assert (third.title, third.external_id) == ("many chats 3", None)
    assert doc.title == "Greeting"
    assert doc.text.startswith("# Greeting\n\nUser: Hi\n\n# Please explain")


def test_jsonl_sharegpt() -> None:
    data = jsonl(
        {
            "id": "sg-1",
            "conversations": [
                {"from": "system", "value": "Sys"},
                {"from": "human", "value": "Question?"},
                {"from": "gpt", "value": "Answer.", "citations": ["d:1"]},
            ],
        }
    )
    [conversation] = load_document(Path("sharegpt.jsonl"), data).conversations
    assert conversation.external_id == "sg-1"
    assert [(m.role, m.content, m.citations) for m in conversation.messages] == [
        ("system", "Sys", ()),
        ("user", "Question?", ()),
        ("assistant", "Answer.", ("d:1",)),
    ]


def test_jsonl_title_falls_back_to_stem_and_surrogates_are_replaced() -> None:
    doc = load_document(Path("sys_only.jsonl"), b'{"role": "system", "content": "lone \\ud800 half"}')
    assert doc.title == "sys only"
    assert doc.conversations[0].messages[0].content == "lone \ufffd half"
    doc.text.encode("utf-8")  # storable


@pytest.mark.parametrize(
    ("lines", "line_number", "problem"),
    [
        (['{"role": "user", "content": "ok"}', "{not json"], 2, "not valid JSON"),
        (["[1, 2]"], 1, "expected a JSON object, found list"),
        (['{"role": "user"}'], 1, "needs both 'role' and 'content'"),
        (['{"content": "x"}'], 1, "needs both 'role' and 'content'"),
        (['{"role": "robot", "content": "x"}'], 1, "unknown role 'robot'"),
        (['{"role": "user", "content": ["parts"]}'], 1, "'content' must be a string, found list"),
        (['{"role": "user", "content": null}'], 1, "'content' must be a string, found NoneType"),
        (['{"role": "user", "content": "x", "citations": [1]}'], 1, "'citations' must be a list"),
        (['{"role": "user", "content": "x", "evidence": "d:1"}'], 1, "'evidence' must be a list"),
        (["", "", '{"messages": []}'], 3, "'messages' must be a non-empty list"),
        (['{"messages": [{"role": "user", "content": 1}]}'], 1, "'content' must be a string"),
        (['{"messages": ["hi"]}'], 1, "a message must be a JSON object, found str"),
        (['{"conversations": [{"from": "user", "value": "x"}]}'], 1, "unknown from 'user'"),
        (['{"conversations": [{"from": "human"}]}'], 1, "needs both 'from' and 'value'"),
        (['{"id": [1], "messages": [{"role": "user", "content": "x"}]}'], 1, "'id' must be"),
        (['{"title": 3, "messages": [{"role": "user", "content": "x"}]}'], 1, "'title' must be"),
        (
            ['{"messages": [{"role": "user", "content": "x"}]}', '{"role": "user", "content": "y"}'],
            2,
            "not both",
        ),
        (["[" * 100_000], 1, "not valid JSON"),
    ],
)
def test_bad_jsonl_line_names_file_line_and_problem(lines: list[str], line_number: int, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        load_document(Path("chats.jsonl"), "\n".join(lines).encode())
    message = str(caught.value)
    assert message.startswith(f"chats.jsonl, line {line_number}: "), message
    assert problem in message


def test_empty_jsonl_and_bad_utf8_jsonl() -> None:
    with pytest.raises(UserError, match="contains no messages"):
        load_document(Path("empty.jsonl"), b"\n  \n")
    with pytest.raises(UserError, match="byte 12"):
        load_document(Path("bad.jsonl"), b'{"role": "us\xff"}')


# --- any bytes -----------------------------------------------------------------------------------


HTML_BITS = st.sampled_from(
    ["<p>", "</p>", "<pre>", "</pre>", "<script>", "</script>", "<head>", "<title>", "</title>", "<br/>",
     "<!--", "-->", "<!", "&amp", "&#", "&#x110000;", "<meta charset=latin1>", "text", " \n ", "<", ">"]
)  # fmt: skip
JSONL_BITS = st.sampled_from(
    ['{"role": "user", "content": "x"}', '{"messages": [', "]}", "\n", "{", '"', "null", "[]", "\\ud800"]
)


@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(HTML_BITS, max_size=40).map(lambda bits: "".join(bits).encode()),
        st.lists(JSONL_BITS, max_size=40).map(lambda bits: "".join(bits).encode()),
        st.binary(max_size=200).map(lambda tail: build_pdf([["Text"]])[:300] + tail),
    ),
    st.sampled_from(sorted(SUPPORTED_SUFFIXES)),
)
def test_any_bytes_load_or_raise_user_error(data: bytes, suffix: str) -> None:
    try:
        doc = load_document(Path(f"input{suffix}"), data)
    except UserError as error:
        assert str(error).startswith("input")
        return
    doc.text.encode("utf-8")
    for conversation in doc.conversations:
        for message in conversation.messages:
            message.content.encode("utf-8")
    assert doc.title.strip()

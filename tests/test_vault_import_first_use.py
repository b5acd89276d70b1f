"""What a new user's corpus holds (issue 12, item 10): HTML pages with menus, footers, <br> and &nbsp;, PDFs
whose metadata title is a placeholder, and Windows (cp1252) or latin-1 text files — imported through the CLI
as they would be, and read back from the vault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcticcodex.errors import UserError
from arcticcodex.vault.loaders import load_document
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_vault_loaders import build_pdf

SITE_PAGE = """<!doctype html><html><head><title>Otters · Wildlife Guide</title></head><body>
<header class="site"><a href="/">Wildlife Guide</a> <a href="/login">Log in</a></header>
<nav><ul><li><a href="/">Home</a></li><li><a href="/otters">Otters</a><nav>Sub menu</nav></li></ul></nav>
<div role="navigation" class="breadcrumbs"><div>Animals</div> › Otters</div>
<main><article><header><h1>Otters</h1><p class="byline">By the editors</p></header>
<p>Otters&nbsp;eat&nbsp;&nbsp;mostly fish.<br>They also eat crabs.</p>
<p>Sea otters live in kelp forests.<br/>River otters live in rivers.<br><br>Both are weasels.</p>
<footer>Article updated in May.</footer></article></main>
<div role="contentinfo">© 2026 Wildlife Guide · Privacy · Terms</div>
<footer><p>Contact us</p></footer>
</body></html>"""


def test_html_keeps_the_article_and_drops_the_sites_menus_and_footers() -> None:
    doc = load_document(Path("otters.html"), SITE_PAGE.encode())
    assert doc.text.split("\n\n") == [
        "Otters",  # an article's own header is content
        "By the editors",
        "Otters eat mostly fish.\nThey also eat crabs.",  # <br> is a line, &nbsp; a space
        "Sea otters live in kelp forests.\nRiver otters live in rivers.",
        "Both are weasels.",  # <br><br>: an empty line ends the paragraph
        "Article updated in May.",
    ]
    for boilerplate in ("Log in", "Home", "Sub menu", "Animals", "Privacy", "Contact us"):
        assert boilerplate not in doc.text
    assert doc.title == "Otters · Wildlife Guide"


def test_a_menu_the_page_never_closes_does_not_swallow_the_page() -> None:
    broken = b"<body><nav><a href='/'>Home</a><p>The whole article is here.</p></body></html>"
    assert load_document(Path("x.html"), broken).text == "Home\n\nThe whole article is here."
    unclosed = b"<div role='banner navigation'>Site<div>name</div><p>Body text"
    assert load_document(Path("y.html"), unclosed).text == "Site\n\nname\n\nBody text"
    roles = b"<p>Keep</p><span ROLE = \"Navigation\">menu</span><p data-role='navigation'>kept too</p>"
    assert load_document(Path("z.html"), roles).text == "Keep\n\nkept too"


@pytest.mark.parametrize(
    "title", ["about:blank", "Untitled", "untitled-3", "Microsoft Word - q3 report.docx", "  ", "Document1", "null"]
)
def test_placeholder_pdf_titles_fall_back_to_the_file_name(title: str) -> None:
    doc = load_document(Path("q3-report.pdf"), build_pdf([["Revenue rose."]], title=title))
    assert doc.title == "q3 report"


def test_a_real_pdf_title_is_kept_and_html_placeholders_fall_back_too() -> None:
    assert load_document(Path("a.pdf"), build_pdf([["x"]], title="About Blank Verse")).title == "About Blank Verse"
    page = b"<title>about:blank</title><h1>Printed page</h1><p>text</p>"
    assert load_document(Path("saved.html"), page).title == "Printed page"


WINDOWS_TEXT = "“Otters” eat fish – and crabs; a guide costs 5 €.\r\nCafé notes.\r\n"


def test_cp1252_and_latin1_text_is_detected_not_refused_or_garbled() -> None:
    windows = load_document(Path("notes.txt"), WINDOWS_TEXT.encode("cp1252"))
    assert (windows.text, windows.encoding) == (WINDOWS_TEXT, "cp1252")
    latin = load_document(Path("menu.md"), "# Menu\n\nCafé crème, 3 ½ €?".replace("€?", "").encode("latin-1"))
    assert (latin.text, latin.encoding, latin.title) == ("# Menu\n\nCafé crème, 3 ½ ", "latin-1", "Menu")
    page = load_document(Path("old.html"), "<p>“Smart” quotes</p>".encode("cp1252"))
    assert (page.text, page.encoding) == ("“Smart” quotes", "cp1252")
    assert load_document(Path("new.txt"), "déjà vu".encode()).encoding == "utf-8"


def test_binary_or_damaged_text_is_still_refused_with_the_place_and_the_fix() -> None:
    with pytest.raises(UserError, match=r"blob\.txt is not valid utf-8: byte 1 \(0xff, line 1\).*iconv"):
        load_document(Path("blob.txt"), b"\x00\xff\xfe binary")
    with pytest.raises(UserError, match=r"wide\.txt is not valid utf-8: byte 0 \(0xff"):
        load_document(Path("wide.txt"), "UTF-16, not an 8-bit text".encode("utf-16"))
    with pytest.raises(UserError, match=r"mixed\.md is not valid utf-8: byte 10 \(0xe9, line 2\)"):
        load_document(Path("mixed.md"), "naïve\n".encode() + b"caf\xe9")


def test_import_names_the_decoding_and_the_vault_holds_the_right_text(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_bytes(WINDOWS_TEXT.encode("cp1252"))
    (corpus / "menu.md").write_bytes("# Menu\n\nCafé crème".encode("latin-1"))
    (corpus / "plain.md").write_text("# Plain\n\nJust UTF-8 — fine.\n")
    (corpus / "scan.pdf").write_bytes(build_pdf([["Quarterly revenue rose."]], title="about:blank"))
    (corpus / "site.html").write_text(SITE_PAGE)
    result = acx("-w", workspace.root, "vault", "import", corpus)
    assert "5 added" in result.output and "0 failed" in result.output
    assert "decoded corpus/menu.md as latin-1: it is not UTF-8" in result.output.replace(str(tmp_path) + "/", "")
    assert "notes.txt as cp1252: it is not UTF-8" in result.output and "plain.md as" not in result.output
    documents = {
        Path(d["source"]).name: d for d in json.loads(acx("-w", workspace.root, "vault", "docs", "--json").output)
    }
    assert documents["scan.pdf"]["title"] == "scan" and documents["menu.md"]["title"] == "Menu"
    hits = json.loads(
        acx("-w", workspace.root, "vault", "search", "Otters eat fish", "--mode", "bm25", "--json").output
    )
    assert any("“Otters” eat fish – and crabs" in hit["text"] for hit in hits)
    site = json.loads(
        acx("-w", workspace.root, "vault", "search", "Privacy Terms Contact", "--mode", "bm25", "--json").output
    )
    assert not any(Path(hit["source"]).name == "site.html" for hit in site)

    (corpus / "more.txt").write_bytes("Crème brûlée".encode("cp1252"))
    report = json.loads(acx("-w", workspace.root, "vault", "import", corpus / "more.txt", "--json").stdout)
    assert [d["encoding"] for d in report["decoded"]] == ["latin-1"]  # no 0x80–0x9F byte: plain latin-1

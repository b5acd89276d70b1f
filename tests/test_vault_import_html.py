"""Hostile HTML: nesting past the cap is a failed file (named, with depth and cap), never a partial import;
constructs that made ``html.parser`` quadratic are read in one pass.  (Speed is shown in
benchmarks/vault_import.py; these tests assert results only.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arcticcodex.errors import UserError
from arcticcodex.vault import HashingBackend, Searcher, Vault, import_paths
from arcticcodex.vault.html_text import MAX_NESTING
from arcticcodex.vault.loaders import load_document
from arcticcodex.workspace import Workspace
from conftest import Acx

DEPTH = 40_000


def nested(tag: str, depth: int, inner: str) -> str:
    return f"<{tag}>" * depth + inner + f"</{tag}>" * depth


def test_a_40k_deep_template_page_is_a_failed_file_not_a_partial_import(tmp_path: Path, acx: Acx) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[vault]\nembedding_model = "hashing-64"\n')
    pages = workspace.root / "pages"
    pages.mkdir()
    (pages / "deep.html").write_text("<p>VISIBLE-BEFORE-9d2 text</p>\n" + nested("template", DEPTH, "inside"))
    (pages / "fine.html").write_text("<title>Fine</title><p>Otters eat fish.</p>")

    result = acx("-w", workspace.root, "vault", "import", pages, "--json", code=1)  # a failed file: exit status 1
    report = json.loads(result.stdout)
    assert report["added"] == ["pages/fine.html"]
    [failure] = report["failed"]
    assert failure["source"] == "pages/deep.html"
    reason = failure["reason"]
    assert "deep.html" in reason and f"{DEPTH:,} deep" in reason and f"cap of {MAX_NESTING}" in reason
    assert "remove the nesting" in reason  # the fix
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        assert [d.source for d in vault.list_documents()] == ["pages/fine.html"]  # nothing of deep.html
        assert Searcher(vault).search("VISIBLE-BEFORE-9d2", mode="bm25") == []


def test_nesting_at_the_cap_is_read_and_one_more_level_is_refused() -> None:
    at_cap = "<p>before</p>" + nested("template", MAX_NESTING, "hidden") + "<p>after</p>"
    assert load_document(Path("ok.html"), at_cap.encode()).text == "before\n\nafter"
    with pytest.raises(UserError, match=rf"over\.html nests .* {MAX_NESTING + 1} deep .*cap of {MAX_NESTING}"):
        load_document(Path("over.html"), nested("pre", MAX_NESTING + 1, "x").encode())


def test_40k_nested_noscript_is_handled_as_a_browser_does() -> None:
    """noscript is raw text (as with scripting on): the first end tag closes it, so it cannot nest."""
    page = "<p>visible before</p>" + nested("noscript", DEPTH, "hidden text") + "<p>visible after</p>"
    doc = load_document(Path("n.html"), page.encode())
    assert doc.text == "visible before\n\nvisible after"


@pytest.mark.parametrize(
    ("name", "page", "expected"),
    [
        ("unclosed attribute runs", "<p>kept</p>" + "<a " * 20_000, "kept"),
        ("unclosed comments", "<p>kept</p>" + "<!--" * 20_000, "kept"),
        ("unclosed tags", "<p>kept</p>" + "<a" * 20_000, "kept"),
        ("unclosed CDATA", "<p>kept</p>" + "<![CDATA[" * 20_000, "kept"),
        ("unclosed end tags", "<p>kept</p>" + "</a" * 20_000, "kept"),
        ("unclosed quotes", '<p>kept</p><a x="' + "<b>" * 20_000, "kept"),
        ("stray end tags", "<p>kept</p>" + "</template></pre>" * 20_000 + "<p>end</p>", "kept\n\nend"),
        ("empty headings", "<h1> </h1>" * 20_000 + "<h1>Title</h1><p>kept</p>", "Title\n\nkept"),
    ],
)
def test_constructs_that_made_html_parser_quadratic_are_read_in_one_pass(name: str, page: str, expected: str) -> None:
    assert load_document(Path("hostile.html"), page.encode()).text == expected, name


def test_a_character_reference_too_long_for_int_is_replacement_not_a_crash() -> None:
    page = "<p>a &#" + "0" * 5_000 + "65; b &#" + "9" * 5_000 + "; c &#x41;</p>"
    assert load_document(Path("refs.html"), page.encode()).text == "a A b \ufffd c A"


def test_raw_text_elements_hide_markup_and_titles_keep_theirs() -> None:
    page = (
        "<title>A <b>bold</b> &amp; title</title><script>document.write('<p>no</p>')</script>"
        "<style>p{}</style><iframe><p>fallback</p></iframe><p>Body <script/>still script</p><p>after</p>"
    )
    doc = load_document(Path("raw.html"), page.encode())
    assert doc.title == "A <b>bold</b> & title"
    assert doc.text == "Body"  # <script/> starts raw text as in a browser: it runs to the end
    assert "no" not in doc.text and "fallback" not in doc.text


HOSTILE_BITS = st.sampled_from(
    ["<template>", "</template>", "<pre>", "</pre>", "<noscript>", "</noscript>", "<a ", "<!--", "-->", "<![CDATA[",
     "</", "<", ">", '"', "'", "=", "&#99999999999;", "&amp", "<head>", "</head>", "<title>", "</title>", "text", " "]
)  # fmt: skip


@given(st.lists(HOSTILE_BITS, max_size=60).map("".join))
def test_any_mix_of_hostile_bits_loads_or_fails_with_a_located_message(page: str) -> None:
    try:
        doc = load_document(Path("mix.html"), page.encode())
    except UserError as error:
        assert str(error).startswith("mix.html nests")
        return
    assert doc.title.strip()
    doc.text.encode("utf-8")


def test_the_vault_imports_html_after_the_extractor_change(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    page = workspace.root / "page.html"
    page.write_text("<html><head><title>Otters</title></head><body><h1>Otters</h1><p>They eat fish.</p></body></html>")
    with Vault(workspace, embedder=HashingBackend(64)) as vault:
        report = import_paths(vault, [page])
        assert report.added == ["page.html"]
        [hit] = Searcher(vault).search("fish", mode="bm25")
        assert hit.title == "Otters" and "They eat fish." in hit.text

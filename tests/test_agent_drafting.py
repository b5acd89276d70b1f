"""The offline extractive drafter: only evidence sentences, the most relevant ones, in evidence order, or nothing."""

from __future__ import annotations

import pytest

from arcticcodex.distill import ExtractiveDrafter
from arcticcodex.teachers.results import EvidenceItem

OTTERS = EvidenceItem(
    number=1,
    text=(
        "# Otters\n\n"
        "Sea otters live along the coasts of the North Pacific Ocean.\n"
        "Sea otters eat sea urchins, crabs and clams.\n"
        "They use stones as tools to open clams.\n\n"
        "| table | row |\n"
    ),
    chunk_id="c-1",
)
BEAVERS = EvidenceItem(number=2, text="Beavers build dams from branches and mud. Beavers eat bark.", chunk_id="c-2")
REPEAT = EvidenceItem(number=3, text="Sea otters eat sea urchins, crabs and clams.", chunk_id="c-3")


def test_picks_the_most_relevant_sentences_and_keeps_evidence_order() -> None:
    draft = ExtractiveDrafter(max_sentences=2).draft("What do sea otters eat?", [BEAVERS, OTTERS, REPEAT])
    assert draft is not None
    # "eat" also matches the beavers' sentence, but the two otter sentences share more words.
    assert draft.text == (
        "Sea otters live along the coasts of the North Pacific Ocean. Sea otters eat sea urchins, crabs and clams."
    )
    assert draft.evidence_used == (1,)  # the repeated sentence in item 3 is not used twice
    assert "offline" in draft.drafter


def test_every_sentence_comes_from_the_evidence_verbatim() -> None:
    draft = ExtractiveDrafter(max_sentences=5).draft("Which animals eat or build things?", [OTTERS, BEAVERS])
    assert draft is not None
    evidence_text = OTTERS.text + " " + BEAVERS.text
    for sentence in draft.text.split(". "):
        assert sentence.rstrip(".") in evidence_text
    assert "table" not in draft.text and "#" not in draft.text  # headings and tables are not prose
    assert draft.evidence_used == (1, 2)


def test_no_related_sentence_means_no_draft() -> None:
    assert ExtractiveDrafter().draft("How are volcanoes formed?", [OTTERS, BEAVERS]) is None
    assert ExtractiveDrafter().draft("What do sea otters eat?", []) is None


def test_max_sentences_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExtractiveDrafter(max_sentences=0)


# -- issue 12, item 4: stems, headings apart, table rows, and a fallback instead of giving up ----------------------


def item(text: str, number: int = 1) -> EvidenceItem:
    return EvidenceItem(number=number, text=text, chunk_id=f"c-{number}")


def test_stemming_matches_plural_and_tense() -> None:
    policy = item("Accounts are locked after five wrong guesses.\nEvery password expires after ninety days.\n")
    draft = ExtractiveDrafter(max_sentences=1).draft("When do passwords expire?", [policy])
    assert draft is not None and draft.text == "Every password expires after ninety days."
    retries = item("Calls that fail are retried with exponential backoff. Results are cached on disk.")
    draft = ExtractiveDrafter(max_sentences=1).draft("How are retries and failures handled?", [retries])
    assert draft is not None and draft.text == "Calls that fail are retried with exponential backoff."


def test_a_bare_heading_is_not_glued_to_the_sentence_after_it() -> None:
    page = item(  # text as HTML and PDF extraction give it: headings are lines of their own, without '#'
        "Password policy\n"
        "Passwords must be at least twelve characters long. They expire after ninety days.\n\n"
        "NAME\n    hashlib - hashlib module - A common interface to many hash functions.\n"
    )
    draft = ExtractiveDrafter(max_sentences=2).draft("How long must a password be?", [page])
    assert draft is not None
    assert draft.text.startswith("Passwords must be at least twelve characters long.")
    assert "Password policy" not in draft.text
    module = ExtractiveDrafter(max_sentences=1).draft("What is the hashlib module?", [page])
    assert module is not None and module.text == "hashlib - hashlib module - A common interface to many hash functions."


def test_sentences_under_the_asked_heading_are_preferred() -> None:
    guide = item(
        "# Teachers\n\nA teacher is a model that judges answers.\n\n"
        "## Retries and failures\n\nCalls are repeated with backoff when an endpoint answers 429.\n"
        "A circuit breaker stops calling an endpoint that keeps erring.\n\n"
        "## The local judge\n\nThe local judge needs no key.\n"
    )
    draft = ExtractiveDrafter().draft("What does Teachers say about retries and failures?", [guide])
    assert draft is not None
    assert draft.text == (
        "Calls are repeated with backoff when an endpoint answers 429. "
        "A circuit breaker stops calling an endpoint that keeps erring."
    )  # neither sentence says "retries" or "failures": the heading they sit under does


def test_markdown_table_rows_are_evidence() -> None:
    settings = item(
        "## Settings\n\n| Key | Default | Meaning |\n|-----|---------|---------|\n"
        "| threshold | 0.8 | accept a pair at this quality |\n| max_rounds | 3 | critique rounds per prompt |\n"
    )
    draft = ExtractiveDrafter(max_sentences=1).draft("What is the default threshold?", [settings])
    assert draft is not None and draft.text == "Key: threshold; Default: 0.8; Meaning: accept a pair at this quality."


def test_the_fallback_offers_the_leading_passages_instead_of_giving_up() -> None:
    unrelated = [item("Beavers build dams from branches and mud. Their dams make ponds.", 1), REPEAT]
    assert ExtractiveDrafter().draft("How are volcanoes formed?", unrelated) is None  # the agent's `ask` says so
    draft = ExtractiveDrafter(fallback=True).draft("How are volcanoes formed?", unrelated)
    assert draft is not None and draft.fallback
    assert draft.text == "Beavers build dams from branches and mud. Their dams make ponds." and draft.evidence_used == (
        1,
    )
    matched = ExtractiveDrafter(fallback=True).draft("What do sea otters eat?", [OTTERS])
    assert matched is not None and not matched.fallback
    assert ExtractiveDrafter(fallback=True).draft("Anything?", [item("```\ncode only\n```")]) is None  # no prose

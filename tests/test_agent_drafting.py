"""The offline extractive drafter: only evidence sentences, the most relevant ones, in evidence order, or nothing."""

from __future__ import annotations

import pytest

from arcticcodex.distill import ExtractiveDrafter
from arcticcodex.teachers.models import EvidenceItem

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

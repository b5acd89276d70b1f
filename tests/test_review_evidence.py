"""Which passages of a pair's evidence the review page marks: the sentences its answer repeats, as (text, marked)
segments that put the evidence back together unchanged."""

from __future__ import annotations

from arcticcodex.distill.pair_evidence import cited_segments

EVIDENCE = "# Otters\n\nOtters eat mostly fish. They also eat crabs.\nBeavers build dams from wood."


def test_the_sentences_the_answer_repeats_are_marked() -> None:
    segments = cited_segments(EVIDENCE, "Otters eat mostly fish [1]. Beavers build dams.")
    assert "".join(text for text, _ in segments) == EVIDENCE  # nothing lost, nothing added
    assert [text for text, marked in segments if marked] == ["Otters eat mostly fish.", "Beavers build dams from wood."]


def test_a_short_line_is_marked_only_when_quoted_whole() -> None:
    assert not any(marked for _, marked in cited_segments(EVIDENCE, "Otters are mammals."))  # "# Otters": one word
    assert ("# Otters", True) in cited_segments(EVIDENCE, "Under # Otters it says so.")


def test_an_answer_that_repeats_nothing_marks_nothing() -> None:
    assert cited_segments(EVIDENCE, "Something else entirely.") == ((EVIDENCE, False),)
    assert cited_segments("", "anything") == ()


def test_markup_in_the_evidence_stays_text_in_the_segments() -> None:
    hostile = "Lake Alpha is 10 m deep. <script>alert('owned')</script> It is cold."
    segments = cited_segments(hostile, "Lake Alpha is 10 m deep.")
    assert segments[0] == ("Lake Alpha is 10 m deep.", True)
    assert "".join(text for text, _ in segments) == hostile  # the template escapes it; nothing here is markup

"""The pending review queue is filtered, counted and paged on its index, never read whole (issue 16).

At 100k pending pairs, reading each pair's JSON to filter it made the Studio's review page take half a
second; the quality, source kind and final teachers now sit beside each pair in a covering index
(``add_review_columns``).  What matters is that the index and the pair say the same thing: the SQL
filter chooses exactly the pairs :meth:`PairFilter.matches` chooses, and pairs recorded before the
columns existed are filled in by the migration.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

from arcticcodex.db import Migrations
from arcticcodex.db.schema import add_review_columns, create_distill_reviews, create_run_tables
from arcticcodex.distill.journal import RunJournal, TaskOutcome
from arcticcodex.distill.pair_review import PairFilter, PairReviews
from arcticcodex.distill.tasks import Task
from arcticcodex.workspace import Workspace

SOURCES = ("prompts", "conversation", "curriculum")


def varied_pair(n: int) -> dict[str, Any]:
    teachers = [["deepseek"], ["deepseek", "gpu"], ["local"], []][n % 4]
    revisions = [{"round": 1, "teachers": ["old"], "score": 0.5}, {"round": 2, "teachers": teachers, "score": 0.9}]
    return {
        "instruction": f"question {n}",
        "completion": f"answer {n}",
        "quality": round(0.80 + (n % 21) / 100, 2),
        "source": {"kind": SOURCES[n % 3], "ref": f"ref-{n}"},
        "revisions": revisions if n % 5 else [],  # a pair without revisions: its own teachers count
        "teachers": ["fallback"],
    }


def reviewed_workspace(tmp_path: Path, count: int) -> tuple[Workspace, str]:
    workspace, _ = Workspace.init(tmp_path / "ws")
    with RunJournal(workspace) as journal:
        tasks = (Task(f"k{n}", {"instruction": f"question {n}"}) for n in range(count))
        run = journal.create_run({"human_review": True}, str(tmp_path / "out"), tasks)
        for n in range(count):
            outcome = TaskOutcome("rejected" if n % 11 == 0 else "accepted", pair=varied_pair(n))
            journal.finish_task(run.id, n, outcome, 0.0)
        journal.decide_pair(run.id, 1, "approved", by="someone")  # decided: no longer pending
    return workspace, run.id


def test_the_index_chooses_exactly_what_the_filter_chooses(tmp_path: Path) -> None:
    workspace, run_id = reviewed_workspace(tmp_path, 120)
    with RunJournal(workspace) as journal:
        reviews = PairReviews(journal)
        everything = reviews.pairs("pending")  # the whole queue, read through the journal
        assert len(everything) == reviews.pending_count() == journal.awaiting_review_count() == 120 - 11 - 1
        filters = [
            PairFilter(*choice)
            for choice in itertools.product(
                (None, run_id), (None, 0.9), (None, 0.95), (None, "conversation"), (None, "gpu", "fallback", "old")
            )
        ]
        for where in filters:
            chosen = [pair.id for pair in everything if where.matches(pair)]
            assert [pair.id for pair in reviews.pending_page(where, limit=None)] == chosen, where
            assert reviews.pending_count(where) == len(chosen), where
        # "old" judged only a first round: the final revision's teachers are what count
        assert reviews.pending_count(PairFilter(teacher="old")) == 0
        assert reviews.pending_count(PairFilter(teacher="fallback")) > 0  # pairs without revisions
        # pages of 7 cover the queue once, in order
        pages = [reviews.pending_page(PairFilter(), limit=7, offset=start) for start in range(0, len(everything), 7)]
        assert [pair.id for page in pages for pair in page] == [pair.id for pair in everything]
        runs, sources, teachers = reviews.pending_choices()
        assert runs == [run_id] and sources == sorted(SOURCES)
        assert teachers == ["deepseek", "fallback", "gpu", "local"]


def test_pairs_recorded_before_the_index_existed_are_filled_in(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    conn = sqlite3.connect(database)
    Migrations("distill", [create_run_tables, create_distill_reviews]).apply(conn)  # a workspace from before
    conn.execute(
        "INSERT INTO distill_runs (id, created_at, updated_at, status, settings, out, task_count)"
        " VALUES ('r', 'now', 'now', 'stopped', '{\"human_review\": true}', '/out', 3)"
    )
    for n in range(3):
        conn.execute(
            "INSERT INTO distill_tasks (run_id, position, key, task, status, pair) VALUES ('r', ?, ?, '{}', ?, ?)",
            (n, f"k{n}", "accepted", json.dumps(varied_pair(n))),
        )
    conn.commit()
    Migrations("distill", [create_run_tables, create_distill_reviews, add_review_columns]).apply(conn)
    rows = conn.execute("SELECT quality, source_kind, judged_by FROM distill_tasks ORDER BY position").fetchall()
    conn.close()
    assert rows == [
        (0.8, "prompts", '["fallback"]'),  # no revisions: the pair's own teachers
        (0.81, "conversation", '["deepseek","gpu"]'),
        (0.82, "curriculum", '["local"]'),
    ]

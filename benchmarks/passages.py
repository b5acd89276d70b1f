"""Passage-level retrieval: recall@5 and MRR@10 at chunk level over a reference manual, generated or real.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/passages.py [--corpus generated|stdlib] [--workspace DIR] [--json]``

Two corpora, each with its own questions (see the fixtures' READMEs):

- ``generated`` (the default): 22 module pages of a generated reference, ~2,900 short definitions
  (2,882 chunks), most of them template-made distractors sharing the questions' words; 60 questions
  (``tests/fixtures/retrieval/passages``).  Harder than a real manual by construction.
- ``stdlib``: a reference manual no one here wrote, 31 standard-library modules rendered
  from the running interpreter's own docstrings in the shape of the Python documentation's text edition
  (``tests/fixtures/retrieval/stdlib``, ~770 definitions), and 71 paraphrased questions of ours, each
  labelled with the name of the one definition that answers it (``heapq.nsmallest(``).  The corpus the
  issue's goal names: a public manual of about 800 chunks.

A hit is a chunk holding the answer's marker.  The real model (all-MiniLM-L6-v2, offline) embeds
everything.  With ``--workspace`` the vault is kept there and re-used (unchanged files are not
re-imported, so re-runs skip embedding).

Every search mode is scored, plus the alternatives the module docstrings of
:mod:`arcticcodex.vault.search` and :mod:`arcticcodex.vault.rerank` discuss (the first stage alone,
convex fusion, the second stage at other depths), each with its median time per search, so one run
gives the table in benchmarks/README.md.
Goal (issue 20): hybrid recall@5 ≥ 0.90 and MRR@10 ≥ 0.75; exit status 1 when the default search misses it.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from arcticcodex.vault import Searcher, Vault, import_paths
from arcticcodex.vault.retrieval_quality import PassageScores, evaluate_passages, load_passage_queries
from arcticcodex.vault.search import Mode
from arcticcodex.workspace import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "retrieval"
CORPORA = ("generated", "stdlib")
GOAL_RECALL, GOAL_MRR = 0.90, 0.75


def variants(vault: Vault) -> list[tuple[str, Searcher]]:
    """(label, searcher) for every configuration worth a row in the table."""
    return [
        ("default", Searcher(vault)),
        ("first stage only", Searcher(vault, rerank_depth=0)),
        ("rerank top 20", Searcher(vault, rerank_depth=20)),
        ("rerank top 100", Searcher(vault, rerank_depth=100)),
        ("convex", Searcher(vault, fusion="convex")),
        ("convex, 1st stage", Searcher(vault, fusion="convex", rerank_depth=0)),
        ("rrf_k=5", Searcher(vault, rrf_k=5)),
    ]


def render_stdlib_manual(out: Path) -> Path:
    """The stdlib corpus written into ``out`` by the fixture's own renderer (tests/fixtures/retrieval/stdlib)."""
    spec = importlib.util.spec_from_file_location("stdlib_render", FIXTURES / "stdlib" / "render.py")
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load tests/fixtures/retrieval/stdlib/render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.render(out)
    return out


def run(root: Path, corpus: str) -> tuple[list[tuple[str, PassageScores]], int]:
    workspace = Workspace.open(root) if (root / "arcticcodex.toml").exists() else Workspace.init(root)[0]
    if corpus == "stdlib":
        fixture, manual = FIXTURES / "stdlib", render_stdlib_manual(root / "stdlib-manual")
    else:
        fixture = FIXTURES / "passages"
        manual = fixture / "manual"
    queries = load_passage_queries(fixture / "queries.jsonl")
    rows: list[tuple[str, PassageScores]] = []
    with Vault(workspace) as vault:
        started = time.perf_counter()
        report = import_paths(vault, [manual])
        if report.failed:
            raise SystemExit(f"import failed: {report.failed}")
        print(f"import: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        chunks = int(vault.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        for label, searcher in variants(vault):
            modes: tuple[Mode, ...] = ("bm25", "vector", "hybrid") if label == "default" else ("hybrid",)
            for score in evaluate_passages(searcher, queries, modes=modes):
                rows.append((label if label != "default" else score.mode, score))
    return rows, chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=CORPORA, default="generated", help="which manual and questions")
    parser.add_argument("--workspace", type=Path, help="keep the vault here and re-use it on later runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.workspace:
        args.workspace.mkdir(parents=True, exist_ok=True)
        rows, chunks = run(args.workspace, args.corpus)
    else:
        with tempfile.TemporaryDirectory() as folder:
            rows, chunks = run(Path(folder) / "ws", args.corpus)
    if args.json:
        print(json.dumps({"chunks": chunks, "rows": [{"label": label, **s.to_json()} for label, s in rows]}))
    else:
        print(f"{chunks} chunks, {rows[0][1].queries} questions")
        print(f"{'mode':18} recall@5  MRR@10  ms/search  misses")
        for label, score in rows:
            misses = " ".join(score.misses)
            print(f"{label:18} {score.recall_at_5:8.3f}  {score.mrr_at_10:6.3f}  {score.median_ms:9.1f}  {misses}")
    hybrid = next(score for label, score in rows if label == "hybrid")
    missed = hybrid.recall_at_5 < GOAL_RECALL or hybrid.mrr_at_10 < GOAL_MRR
    print(f"goal recall@5 ≥ {GOAL_RECALL}, MRR@10 ≥ {GOAL_MRR}: {'missed' if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

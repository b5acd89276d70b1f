"""Vault throughput: ingest rate against the raw embedding model, and search latency at 10k / 100k chunks.

Run: ``.venv/bin/python benchmarks/vault.py [--repeats 3] [--sizes 10000 100000]``

* **Ingest.**  A synthetic corpus (paragraphs of ~70 words) is imported into a fresh workspace with
  the default model (all-MiniLM-L6-v2); the rate in chunks/s is printed as a ratio of the raw
  model's rate (``encode`` on the very same chunk texts, same batch size) measured in the same run.
  Bound: ≥ 0.8 — the vault may add at most 20% on top of embedding, which is the real cost.
* **Search.**  Vaults of 10k and 100k chunks are filled directly (zipf-distributed words so BM25
  sees realistic posting lists; random unit vectors labelled as the default model, since only the
  cost matters here), then 60 queries run end to end — query embedding with MiniLM, FTS5 BM25,
  exact cosine over all vectors, fusion, snippets.  Bound: p95 ≤ 100 ms at 100k chunks, on one core
  (torch, BLAS and OpenMP are limited to one thread).
* **A million chunks** (issue 20).  Past ``APPROXIMATE_FROM`` chunks the vector ranking comes from the
  persisted ANN index (:mod:`arcticcodex.vault.vector_index`), written by the filling process as an
  import writes it; BM25 past 5,000 chunks sums kept term postings (:mod:`arcticcodex.vault.term_postings`).
  The search side runs in a fresh process of its own (its peak RSS is the search's alone): the first
  answer's time, a first pass that makes each common term's postings once, then the timed passes.
  Goals: hybrid p95 ≤ 20 ms at 100k and ≤ 50 ms at 1M chunks, BM25 alone (common terms) inside the same
  p95 with its top 10 the chunks FTS5 itself ranks first (≥ 0.98), recall@10 of the index against exact
  ≥ 0.98 (queries near stored vectors; the synthetic vectors are clustered, as real embeddings are —
  uniformly random ones have no near neighbours to find), search RSS at 1M ≤ 1 GB.  Also printed: exact
  vs index cost of the vector ranking alone, FTS5 scoring every match, the query embedding alone.
* Peak RSS is printed after each part: ingest streams in batches, so it stays flat as files grow.

Exit status 1 when a bound is missed.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # one core, before NumPy and torch start their pools

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from arcticcodex.vault import Searcher, SentenceTransformerBackend, Vault, import_paths  # noqa: E402
from arcticcodex.vault.chunker import chunk_text  # noqa: E402
from arcticcodex.vault.onnx_minilm import OnnxMiniLMBackend  # noqa: E402
from arcticcodex.vault.query import phrase, query_terms  # noqa: E402
from arcticcodex.vault.search import Mode  # noqa: E402
from arcticcodex.vault.store import PreparedChunk, PreparedDocument  # noqa: E402
from arcticcodex.vault.vector_index import VectorIndex, refresh_index  # noqa: E402
from arcticcodex.workspace import Workspace  # noqa: E402

INGEST_BOUND = 0.8
P95_BOUND_MS = 100.0
P95_GOALS_MS = {100_000: 20.0, 1_000_000: 50.0}  # issue 20; sizes in between take the 1M goal
RECALL_GOAL = 0.98
RSS_GOAL_MB = 1024.0
WORDS = [
    *"""the service queue latency disk restart owner team config limit error timeout retry batch worker
    node cluster region deploy rollback incident page alert metric dashboard budget storage index shard
    replica leader follower snapshot backup restore policy review approval access token secret rotate
    certificate network packet route gateway proxy cache memory thread process kernel driver firmware
    sensor relay pump valve turbine battery charger voltage current thermal fan airflow rack cabinet""".split()
]


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): ``ru_maxrss`` would carry the parent's across fork and exec."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sentence(rng: random.Random) -> str:
    words = [WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)] for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, number: int) -> str:
    return f"Item {number}. " + " ".join(sentence(rng) for _ in range(5))


def ingest_benchmark(files: int, repeats: int) -> bool:
    import torch  # only here: the search part runs without it, as a user's search does

    torch.set_num_threads(1)
    rng = random.Random(7)
    texts = ["\n\n".join(paragraph(rng, f * 100 + p) for p in range(6)) for f in range(files)]
    chunk_texts = [text[s.start : s.end] for text in texts for s in chunk_text(text)]
    model = SentenceTransformerBackend()
    model.embed(chunk_texts[:64])  # load and warm up
    raw_rates, ingest_rates = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model.embed(chunk_texts)
        raw_rates.append(len(chunk_texts) / (time.perf_counter() - start))
        with tempfile.TemporaryDirectory() as folder:
            workspace, _ = Workspace.init(Path(folder) / "ws")
            corpus = workspace.root / "corpus"
            corpus.mkdir()
            for index, text in enumerate(texts):
                (corpus / f"doc{index:05}.md").write_text(text, encoding="utf-8")
            with Vault(workspace, embedder=model) as vault:
                start = time.perf_counter()
                report = import_paths(vault, [corpus])
                seconds = time.perf_counter() - start
            if report.chunks != len(chunk_texts) or report.failed:
                raise SystemExit(f"ingest wrote {report.chunks} chunks, expected {len(chunk_texts)}")
            ingest_rates.append(report.chunks / seconds)
    raw, ingest = statistics.median(raw_rates), statistics.median(ingest_rates)
    ratio = ingest / raw
    print(f"Ingest, {files} files → {len(chunk_texts)} chunks, all-MiniLM-L6-v2 on one core, median of {repeats}:")
    print(f"  raw model {raw:7.1f} chunks/s   vault import {ingest:7.1f} chunks/s")
    print(f"  ratio {ratio:.2f} (bound ≥ {INGEST_BOUND})   peak RSS {peak_rss_mb():.0f} MB")
    return ratio >= INGEST_BOUND


def fill(vault: Vault, chunks: int, rng: random.Random) -> None:
    dimensions = 384
    per_document = 100
    vectors_rng = np.random.default_rng(11)
    centres = vectors_rng.standard_normal((max(1, chunks // 50), dimensions)).astype(np.float32)
    for first in range(0, chunks, 5000):
        documents, vectors = [], {}
        for doc_index in range(first // per_document, min(chunks, first + 5000) // per_document):
            pieces = []
            for sequence in range(per_document):
                text = paragraph(rng, doc_index * per_document + sequence)
                pieces.append(PreparedChunk(sequence, 0, len(text), None, text))
                vector = centres[vectors_rng.integers(len(centres))] * 0.6
                vector += vectors_rng.standard_normal(dimensions).astype(np.float32) * 0.35
                vectors[pieces[-1].sha256] = vector / np.linalg.norm(vector)
            documents.append(
                PreparedDocument(
                    source=f"synthetic/{doc_index:06}.txt",
                    title=f"Synthetic {doc_index}",
                    media_type="text/plain",
                    source_sha256=f"{doc_index:064x}",
                    text="",
                    size_bytes=0,
                    source_modified_at=None,
                    chunks=tuple(pieces),
                )
            )
        vault.write_documents(documents, vectors)


def query_texts(queries: int) -> list[str]:
    rng = random.Random(3)
    question_words = [WORDS[rng.randrange(len(WORDS))] for _ in range(queries * 4)]
    texts = [" ".join(question_words[i * 4 : i * 4 + rng.randint(2, 4)]) for i in range(queries)]
    texts[::6] = [f"item {rng.randrange(1000)} {WORDS[rng.randrange(10)]}" for _ in texts[::6]]  # identifiers
    return texts


def search_benchmark(sizes: list[int], queries: int) -> bool:
    """Fill and index in this process (as an import would), then search from a fresh one (as a user would)."""
    ok = True
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            workspace, _ = Workspace.init(Path(folder) / "ws")
            with Vault(workspace) as vault:  # the default model's name; its vectors are synthetic
                start = time.perf_counter()
                fill(vault, size, random.Random(size))
                fill_seconds = time.perf_counter() - start
                start = time.perf_counter()
                refresh_index(vault.conn, workspace.database_path, vault.model_name)  # what import_paths does
                index_seconds = time.perf_counter() - start
            filling_rss = peak_rss_mb()
            report = Path(folder) / "measured.json"
            subprocess.run(
                [sys.executable, __file__, "--measure-in", str(workspace.root), "--queries", str(queries)],
                check=True,
                stdout=subprocess.DEVNULL,
                env={**os.environ, "ARCTICCODEX_MEASURED": str(report)},
            )
            measured = json.loads(report.read_text(encoding="utf-8"))
        ok = report_search(size, queries, fill_seconds, index_seconds, filling_rss, measured) and ok
    return ok


def measure_search(root: Path, queries: int, report: Path) -> None:
    """The search side, in a process of its own: latencies, agreement with FTS5 and exact, peak RSS."""
    texts = query_texts(queries)
    start = time.perf_counter()
    model = OnnxMiniLMBackend(threads=1, runtime="onnxruntime")  # what a search runs (backend_named), one core
    with Vault(Workspace.open(root), embedder=model) as vault:
        searcher = Searcher(vault)
        searcher.search("the first search of a fresh process", k=10)
        first_search = time.perf_counter() - start
        embedding = []
        for text in texts:
            start = time.perf_counter()
            model.embed([text])
            embedding.append((time.perf_counter() - start) * 1000)
        first_use = timed(searcher, texts, "bm25")  # each common term's postings made once, kept
        hybrid = timed(searcher, texts, "hybrid")
        bm25 = timed(searcher, texts, "bm25")
        rss = peak_rss_mb()
        agreement = bm25_agreement(vault, searcher, texts)
        approximate = searcher._index is not None
        recall, index_ms, exact_ms = compare_with_exact(vault, random.Random(5)) if approximate else (1.0, 0.0, 0.0)
    figures = {
        "first_search_s": first_search,
        "embedding": embedding,
        "first_use": first_use,
        "hybrid": hybrid,
        "bm25": bm25,
        "rss_mb": rss,
        "agreement": agreement,
        "approximate": approximate,
        "recall": recall,
        "index_ms": index_ms,
        "exact_ms": exact_ms,
    }
    report.write_text(json.dumps(figures), encoding="utf-8")


def report_search(
    size: int, queries: int, fill_seconds: float, index_seconds: float, filling_rss: float, measured: dict[str, Any]
) -> bool:
    ok = True
    hybrid, bm25, first_use, embedding = (
        measured["hybrid"],
        measured["bm25"],
        measured["first_use"],
        measured["embedding"],
    )
    p50, p95 = statistics.median(hybrid), percentile95(hybrid)
    goal = P95_GOALS_MS.get(size, 50.0 if size > 100_000 else P95_BOUND_MS)
    print(f"Search, {size} chunks, {queries} queries, one core:")
    print(
        f"  filled in {fill_seconds:.0f} s; ANN index written as an import does in {index_seconds:.1f} s"
        f" (that process's peak RSS {filling_rss:.0f} MB)"
    )
    print(
        f"  a fresh search process: first hybrid answer after {measured['first_search_s']:.2f} s"
        f" (model load and index file included); query embedding alone p50 {statistics.median(embedding):.1f} ms"
    )
    print(
        f"  hybrid p50 {p50:6.1f} ms   p95 {p95:6.1f} ms = {p95 / goal:.2f}× the {goal:.0f} ms goal"
        f"   ({'ANN index' if measured['approximate'] else 'exact'})"
    )
    bm25_p95 = percentile95(bm25)
    print(
        f"  bm25   p50 {statistics.median(bm25):6.1f} ms   p95 {bm25_p95:6.1f} ms = {bm25_p95 / goal:.2f}× the goal"
        f"   (first use of each term, postings made and kept: total {sum(first_use) / 1000:.1f} s,"
        f" p95 {percentile95(first_use):.0f} ms)"
    )
    same, fts5_p50, fts5_p95 = measured["agreement"]
    print(
        f"  bm25 top 10 against FTS5 scoring every match: {same:.3f} of the chunks the same"
        f" = {same / RECALL_GOAL:.2f}× the {RECALL_GOAL} bound"
        f" (FTS5 alone: p50 {fts5_p50:.1f} ms, p95 {fts5_p95:.1f} ms)"
    )
    ok = ok and same >= RECALL_GOAL
    rss = measured["rss_mb"]
    print(f"  the search process's peak RSS {rss:.0f} MB", end="")
    if size >= 1_000_000:
        print(f" = {rss / RSS_GOAL_MB:.2f}× the {RSS_GOAL_MB:.0f} MB goal", end="")
        ok = ok and rss <= RSS_GOAL_MB
    print()
    if measured["approximate"]:
        recall = measured["recall"]
        print(
            f"  vector ranking alone: index {measured['index_ms']:.2f} ms"
            f" vs exact {measured['exact_ms']:.2f} ms a query;"
            f" recall@10 {recall:.3f} = {recall / RECALL_GOAL:.2f}× the {RECALL_GOAL} goal"
        )
        ok = ok and recall >= RECALL_GOAL
    if size >= 100_000:
        ok = ok and p95 <= goal and bm25_p95 <= goal
    return ok


def bm25_agreement(vault: Vault, searcher: Searcher, texts: list[str]) -> tuple[float, float, float]:
    """Top-10 overlap of the BM25 ranking with FTS5 scoring every match (what it replaces), and FTS5's ms."""
    same, total, latencies = 0, 0, []
    for text in texts:
        terms = query_terms(text)
        useful = [
            term for term in dict.fromkeys(terms) if searcher._chunk_total() // 2 >= searcher._matches(phrase(term))
        ]
        expression = " OR ".join(map(phrase, useful or dict.fromkeys(terms)))
        start = time.perf_counter()
        truth = [row[0] for row in vault.conn.execute(FTS5_TOP10, (expression,))]
        latencies.append((time.perf_counter() - start) * 1000)
        found = [hit.chunk_id for hit in searcher.search(text, k=10, mode="bm25")]
        ids = {
            row[0]
            for row in vault.conn.execute(f"SELECT id FROM chunks WHERE rowid IN ({','.join('?' * len(truth))})", truth)
        }
        same += len(ids & set(found))
        total += len(truth)
    return same / max(total, 1), statistics.median(latencies), percentile95(latencies)


FTS5_TOP10 = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 10"


def percentile95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(searcher: Searcher, texts: list[str], mode: Mode) -> list[float]:
    latencies = []
    for text in texts:
        start = time.perf_counter()
        results = searcher.search(text, k=10, mode=mode)
        latencies.append((time.perf_counter() - start) * 1000)
        if not results and mode != "bm25":
            raise SystemExit(f"no results for {text!r}")
    return latencies


def compare_with_exact(vault: Vault, rng: random.Random, queries: int = 100) -> tuple[float, float, float]:
    """Recall@10 of the ANN index against exact cosine, with queries near stored vectors; ms a query of each."""
    index = VectorIndex(vault.conn, vault.workspace.database_path, vault.model_name)
    index.sync()
    rowids = np.array([row[0] for row in vault.conn.execute("SELECT rowid FROM chunks ORDER BY rowid")])
    noise = np.random.default_rng(rng.randrange(1 << 30))
    found, index_seconds, exact_seconds = 0, 0.0, 0.0
    for _ in range(queries):
        picked = index._vectors(rowids[noise.integers(len(rowids), size=1)])[0]
        query = picked + noise.standard_normal(len(picked)).astype(np.float32) * 0.03
        query /= np.linalg.norm(query)
        start = time.perf_counter()
        approximate = {rowid for rowid, _ in index.search(query, 10)}
        index_seconds += time.perf_counter() - start
        start = time.perf_counter()
        truth = {rowid for rowid, _ in exact_top(vault, index, rowids, query)}
        exact_seconds += time.perf_counter() - start
        found += len(approximate & truth)
    return found / (queries * 10), index_seconds * 1000 / queries, exact_seconds * 1000 / queries


_EXACT: dict[int, np.ndarray] = {}


def exact_top(vault: Vault, index: VectorIndex, rowids: np.ndarray, query: np.ndarray) -> list[tuple[int, float]]:
    """Exact cosine over every stored vector (read once, in float32: the cost the index avoids)."""
    if id(vault) not in _EXACT:
        _EXACT.clear()
        _EXACT[id(vault)] = np.concatenate(
            [index._vectors(rowids[start : start + 50_000]) for start in range(0, len(rowids), 50_000)]
        )
    scores = _EXACT[id(vault)] @ query
    top = np.argpartition(-scores, 9)[:10]
    return [(int(rowids[i]), float(scores[i])) for i in top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--skip-ingest", action="store_true", help="Only the search part.")
    parser.add_argument("--measure-in", type=Path, help=argparse.SUPPRESS)  # the fresh search process
    args = parser.parse_args()
    if args.measure_in:
        measure_search(args.measure_in, args.queries, Path(os.environ["ARCTICCODEX_MEASURED"]))
        return 0
    ingest_ok = args.skip_ingest or ingest_benchmark(args.files, args.repeats)
    search_ok = search_benchmark(args.sizes, args.queries)
    print("PASS" if ingest_ok and search_ok else "FAIL: a bound was missed")
    return 0 if ingest_ok and search_ok else 1


if __name__ == "__main__":
    sys.exit(main())

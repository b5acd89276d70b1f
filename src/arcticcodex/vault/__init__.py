"""The vault: documents, chunks, embeddings, hybrid search, facts, summaries and conversations.

::

    from arcticcodex.vault import Searcher, Vault, import_paths

    with Vault.open() as vault:                       # the workspace found from the current folder
        import_paths(vault, ["docs/"])                # .txt .md .html .pdf .jsonl, recursively
        for hit in Searcher(vault).search("how are chunks embedded?", k=5):
            print(hit.citation, hit.snippet)
"""

from __future__ import annotations

from .embeddings import DEFAULT_MODEL, EmbeddingBackend, HashingBackend, SentenceTransformerBackend
from .entities import (
    Chunk,
    Document,
    Fact,
    IntegrityProblem,
    IntegrityReport,
    StoredConversation,
    StoredMessage,
    Summary,
    Tombstone,
)
from .ingest import ImportReport, import_paths
from .retrieval_quality import EvalQuery, ModeScores, evaluate, load_queries
from .search import EvidencePack, Searcher, SearchFilters, SearchResult
from .store import Vault

__all__ = [
    "DEFAULT_MODEL",
    "Chunk",
    "Document",
    "EmbeddingBackend",
    "EvalQuery",
    "EvidencePack",
    "Fact",
    "HashingBackend",
    "ImportReport",
    "IntegrityProblem",
    "IntegrityReport",
    "ModeScores",
    "SearchFilters",
    "SearchResult",
    "Searcher",
    "SentenceTransformerBackend",
    "StoredConversation",
    "StoredMessage",
    "Summary",
    "Tombstone",
    "Vault",
    "evaluate",
    "import_paths",
    "load_queries",
]

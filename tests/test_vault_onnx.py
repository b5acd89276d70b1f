"""The ONNX backend of all-MiniLM-L6-v2: its export cache, its choice as the default, its vectors.

The cache tests run a stand-in exporter (it writes bytes, counts its calls) so that they judge the
cache alone, in milliseconds: reuse, a truncated or altered file, a symlink planted in the cache, a
failed export.  The tests marked slow export the real model once per module (about 20 s, torch in a
child process) and compare its vectors with sentence-transformers', and check that a fresh process
that imports and searches with it never imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from arcticcodex.errors import ConfigError
from arcticcodex.vault import HashingBackend, onnx_cache, onnx_minilm
from arcticcodex.vault import embeddings as embeddings_module
from arcticcodex.vault.embeddings import DEFAULT_MODEL, INT8_MODEL, SentenceTransformerBackend, backend_named
from arcticcodex.vault.onnx_cache import OnnxExportError, OnnxModelCache, model_cache_dir
from arcticcodex.vault.onnx_minilm import OnnxMiniLMBackend, onnxruntime_available
from arcticcodex.workspace import Workspace

needs_onnxruntime = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime is not installed")
EMBEDDING_MODEL = ("torch", "sentence_transformers", "transformers")


class StandInExporter:
    """Writes ``ONNX:<weights>`` where the real export would write a graph; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model_folder: Path, target: Path) -> None:
        self.calls += 1
        target.write_bytes(b"ONNX:" + (model_folder / "model.safetensors").read_bytes())


class StandInQuantizer:
    """Writes ``INT8:<source bytes>`` where the real quantiser would write the int8 graph; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, source: Path, target: Path) -> None:
        self.calls += 1
        target.write_bytes(b"INT8:" + source.read_bytes())


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    return folder


def test_a_verified_export_is_reused_by_the_next_cache(tmp_path: Path, model_folder: Path) -> None:
    exporter = StandInExporter()
    first = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    assert first.read_bytes() == b"ONNX:weights v1" and exporter.calls == 1

    again = OnnxModelCache(tmp_path / "cache", exporter=exporter)  # a second construction, a second process
    assert again.path_for(DEFAULT_MODEL, model_folder) == first
    assert exporter.calls == 1 and again.exports == 0
    assert not list((tmp_path / "cache").glob(".*"))  # no partial folder or temporary file left


def test_a_stamped_file_is_not_hashed_again_until_it_changes(
    tmp_path: Path, model_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hashing 90 MB twice per search process is most of a cold start: a stat stamp stands in for it."""
    hashed: list[str] = []
    real_sha256 = onnx_cache._sha256

    def counting_sha256(path: Path) -> str:
        hashed.append(path.name)
        return real_sha256(path)

    monkeypatch.setattr(onnx_cache, "_sha256", counting_sha256)
    exporter = StandInExporter()
    cache = OnnxModelCache(tmp_path / "cache", exporter=exporter)
    cache.racy_window_s = 0.0  # the files here are milliseconds old
    path = cache.path_for(DEFAULT_MODEL, model_folder)
    assert cache.path_for(DEFAULT_MODEL, model_folder) == path
    hashed.clear()
    assert cache.path_for(DEFAULT_MODEL, model_folder) == path
    assert hashed == [] and exporter.calls == 1

    time.sleep(0.05)  # past the file times' coarse tick: the write below changes the ctime
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only ctime tells
    assert cache.path_for(DEFAULT_MODEL, model_folder) == path
    assert exporter.calls == 2 and path.read_bytes() == b"ONNX:weights v1"
    assert "model.onnx" in hashed


def test_fresh_files_get_no_stamp(tmp_path: Path, model_folder: Path) -> None:
    """Within the racy window a second write could keep the stamp: such a file is always hashed."""
    cache = OnnxModelCache(tmp_path / "cache", exporter=StandInExporter())
    path = cache.path_for(DEFAULT_MODEL, model_folder)
    cache.path_for(DEFAULT_MODEL, model_folder)
    assert not path.with_name("model.onnx.stat").exists()
    assert not (tmp_path / "cache" / "sources.json").exists()


def test_changed_weights_are_exported_afresh(tmp_path: Path, model_folder: Path) -> None:
    exporter = StandInExporter()
    cache = OnnxModelCache(tmp_path / "cache", exporter=exporter)
    old = cache.path_for(DEFAULT_MODEL, model_folder)
    (model_folder / "model.safetensors").write_bytes(b"weights v2")
    new = cache.path_for(DEFAULT_MODEL, model_folder)
    assert new != old and new.read_bytes() == b"ONNX:weights v2" and exporter.calls == 2
    assert not old.parent.exists()  # 90 MB of an older model's export is not kept
    other = cache.path_for("other-model", model_folder)
    assert other.is_file() and new.is_file()  # another model's export is not stale


def test_an_export_of_an_older_recipe_is_not_used_and_is_removed(tmp_path: Path, model_folder: Path) -> None:
    """The recipe's version is in the key: the unfused graph of format 2 is neither run nor kept."""
    exporter = StandInExporter()
    cache = OnnxModelCache(tmp_path / "cache", exporter=exporter)
    key = cache.key(DEFAULT_MODEL, model_folder)
    assert key.endswith(f"-v{onnx_cache.EXPORT_FORMAT}") and onnx_cache.EXPORT_FORMAT >= 3
    older = tmp_path / "cache" / key.replace(f"-v{onnx_cache.EXPORT_FORMAT}", "-v2")
    older.mkdir(parents=True)
    (older / "model.onnx").write_bytes(b"ONNX:the unfused graph")
    (older / "model.onnx.sha256").write_text(hashlib.sha256(b"ONNX:the unfused graph").hexdigest() + "\n")
    path = cache.path_for(DEFAULT_MODEL, model_folder)
    assert path.parent.name == key and path.read_bytes() == b"ONNX:weights v1" and exporter.calls == 1
    assert not older.exists()


def test_the_int8_variant_is_cached_under_its_own_key_and_follows_its_source(
    tmp_path: Path, model_folder: Path
) -> None:
    """Its key holds "int8" and the fp32 file's digest: new weights, a new fp32 export, a new int8 file."""
    exporter, quantizer = StandInExporter(), StandInQuantizer()
    cache = OnnxModelCache(tmp_path / "cache", exporter=exporter, quantizer=quantizer)
    int8 = cache.path_for(DEFAULT_MODEL, model_folder, int8=True)
    fp32 = cache.path_for(DEFAULT_MODEL, model_folder)
    fp32_digest = hashlib.sha256(fp32.read_bytes()).hexdigest()
    assert int8.parent.name == f"{DEFAULT_MODEL}-int8-{fp32_digest[:24]}-v{onnx_cache.EXPORT_FORMAT}"
    assert int8.read_bytes() == b"INT8:ONNX:weights v1" and fp32.read_bytes() == b"ONNX:weights v1"
    assert (exporter.calls, quantizer.calls) == (1, 1)

    again = OnnxModelCache(tmp_path / "cache", exporter=exporter, quantizer=quantizer)
    assert again.path_for(DEFAULT_MODEL, model_folder, int8=True) == int8 and quantizer.calls == 1  # reused

    int8.write_bytes(b"INT8:tampered")  # a damaged int8 file is made again, never run
    assert again.path_for(DEFAULT_MODEL, model_folder, int8=True) == int8
    assert int8.read_bytes() == b"INT8:ONNX:weights v1" and quantizer.calls == 2 and exporter.calls == 1

    (model_folder / "model.safetensors").write_bytes(b"weights v2")
    newer = again.path_for(DEFAULT_MODEL, model_folder, int8=True)
    assert newer != int8 and newer.read_bytes() == b"INT8:ONNX:weights v2"
    assert not int8.parent.exists() and not fp32.parent.exists()  # the older pair is not kept
    assert again.path_for(DEFAULT_MODEL, model_folder).read_bytes() == b"ONNX:weights v2"
    assert newer.is_file()  # the fp32 export's clean-up leaves its int8 variant alone, and back


def test_a_failed_quantisation_raises_and_keeps_the_fp32_export(tmp_path: Path, model_folder: Path) -> None:
    def failing(source: Path, target: Path) -> None:
        target.write_bytes(b"half")
        raise OnnxExportError("quantising model.onnx to int8 failed (1): No module named 'onnx'")

    cache = OnnxModelCache(tmp_path / "cache", exporter=StandInExporter(), quantizer=failing)
    with pytest.raises(OnnxExportError, match="No module named 'onnx'"):
        cache.path_for(DEFAULT_MODEL, model_folder, int8=True)
    assert [entry.name for entry in (tmp_path / "cache").iterdir() if "int8" in entry.name] == []
    assert cache.path_for(DEFAULT_MODEL, model_folder).read_bytes() == b"ONNX:weights v1"


@pytest.mark.parametrize("damage", ["truncate", "flip", "digest", "delete-digest"])
def test_a_damaged_export_is_rebuilt_never_used(tmp_path: Path, model_folder: Path, damage: str) -> None:
    exporter = StandInExporter()
    path = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    digest = path.with_name("model.onnx.sha256")
    if damage == "truncate":  # a killed copy, a full disk
        path.write_bytes(path.read_bytes()[:7])
    elif damage == "flip":
        data = bytearray(path.read_bytes())
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "digest":
        digest.write_text("0" * 64 + "\n")
    else:
        digest.unlink()

    cache = OnnxModelCache(tmp_path / "cache", exporter=exporter)
    assert cache.path_for(DEFAULT_MODEL, model_folder) == path
    assert cache.exports == 1 and exporter.calls == 2
    assert path.read_bytes() == b"ONNX:weights v1"


def test_a_symlink_planted_in_the_cache_is_replaced_by_a_real_export(tmp_path: Path, model_folder: Path) -> None:
    """Someone points the cached file at a graph of their own, with a digest that matches it."""
    exporter = StandInExporter()
    path = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    planted = tmp_path / "elsewhere.onnx"
    planted.write_bytes(b"ONNX:someone else's graph")
    path.unlink()
    path.symlink_to(planted)
    path.with_name("model.onnx.sha256").write_text(hashlib.sha256(planted.read_bytes()).hexdigest() + "\n")

    again = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    assert again == path and not path.is_symlink()
    assert path.read_bytes() == b"ONNX:weights v1"
    assert planted.read_bytes() == b"ONNX:someone else's graph"  # the link's target is left alone


def test_a_whole_cache_entry_that_is_a_symlink_is_refused(tmp_path: Path, model_folder: Path) -> None:
    exporter = StandInExporter()
    path = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    entry = path.parent
    moved = tmp_path / "moved"
    entry.rename(moved)
    entry.symlink_to(moved, target_is_directory=True)

    again = OnnxModelCache(tmp_path / "cache", exporter=exporter).path_for(DEFAULT_MODEL, model_folder)
    assert not entry.is_symlink() and entry.is_dir() and again.read_bytes() == b"ONNX:weights v1"
    assert (moved / "model.onnx").is_file()  # the folder it pointed at was not deleted through the link


def test_a_failed_export_raises_and_leaves_nothing_behind(tmp_path: Path, model_folder: Path) -> None:
    def failing(model_folder: Path, target: Path) -> None:
        target.write_bytes(b"half a gra")
        raise OnnxExportError("exporting failed: No module named 'onnx'")

    cache = OnnxModelCache(tmp_path / "cache", exporter=failing)
    with pytest.raises(OnnxExportError, match="No module named 'onnx'"):
        cache.path_for(DEFAULT_MODEL, model_folder)
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_backend_embeds_with_its_fallback_when_no_export_can_be_made(tmp_path: Path, model_folder: Path) -> None:
    def failing(model_folder: Path, target: Path) -> None:
        raise OnnxExportError("exporting failed: No module named 'torch'")

    fallback = HashingBackend(8)
    backend = OnnxMiniLMBackend(
        model_folder, cache=OnnxModelCache(tmp_path / "cache", exporter=failing), fallback=fallback
    )
    texts = ["otters eat fish", "crabs too"]
    assert np.array_equal(backend.embed(texts), fallback.embed(texts))
    assert backend.dimensions == 8 and backend.name == DEFAULT_MODEL

    alone = OnnxMiniLMBackend(model_folder, cache=OnnxModelCache(tmp_path / "cache", exporter=failing))
    with pytest.raises(OnnxExportError, match="No module named 'torch'"):
        alone.embed(texts)


def test_the_cache_folder_follows_the_environment(tmp_path: Path) -> None:
    assert model_cache_dir({"ARCTICCODEX_CACHE_DIR": str(tmp_path / "c")}) == (tmp_path / "c" / "models").resolve()
    assert model_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "x")}) == (tmp_path / "x/arcticcodex/models").resolve()
    assert model_cache_dir({"XDG_CACHE_HOME": "relative"}) == (Path.home() / ".cache/arcticcodex/models").resolve()


@needs_onnxruntime
def test_the_default_model_runs_on_onnxruntime_and_others_on_sentence_transformers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = backend_named(DEFAULT_MODEL)
    assert isinstance(default, OnnxMiniLMBackend) and default.name == DEFAULT_MODEL
    assert default.runtime == "onnxruntime"  # a search's few texts: the runtime that starts fastest
    bulk = backend_named(DEFAULT_MODEL, bulk=True)
    assert isinstance(bulk, OnnxMiniLMBackend) and bulk.runtime == "auto"  # an import's: OpenVINO if installed
    other = backend_named("sentence-transformers/all-mpnet-base-v2")
    assert isinstance(other, SentenceTransformerBackend)
    assert isinstance(backend_named("hashing-64"), HashingBackend)
    monkeypatch.setenv("ARCTICCODEX_EMBEDDING_BACKEND", "sentence-transformers")
    assert isinstance(backend_named(DEFAULT_MODEL), SentenceTransformerBackend)
    monkeypatch.setenv("ARCTICCODEX_EMBEDDING_BACKEND", "onnx")
    assert isinstance(backend_named(DEFAULT_MODEL), OnnxMiniLMBackend)
    with pytest.raises(ConfigError, match="runs only all-MiniLM-L6-v2"):
        backend_named("sentence-transformers/all-mpnet-base-v2")
    assert isinstance(backend_named(INT8_MODEL), OnnxMiniLMBackend)
    monkeypatch.setenv("ARCTICCODEX_EMBEDDING_BACKEND", "sentence-transformers")
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2-int8 runs on onnxruntime on the CPU only"):
        backend_named(INT8_MODEL)  # no other runtime makes its vectors: never a silent fp32 model
    monkeypatch.setenv("ARCTICCODEX_EMBEDDING_BACKEND", "tensorflow")
    with pytest.raises(ConfigError, match="'tensorflow': use one of auto, onnx, sentence-transformers"):
        backend_named(DEFAULT_MODEL)
    monkeypatch.delenv("ARCTICCODEX_EMBEDDING_BACKEND")
    monkeypatch.setattr(embeddings_module, "onnxruntime_available", lambda: False)
    assert isinstance(backend_named(DEFAULT_MODEL), SentenceTransformerBackend)


# -- the real model (slow: one export per module, sentence-transformers loaded once) ---------------------------


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``ARCTICCODEX_CACHE_DIR`` holding a real export of the default model."""
    root = tmp_path_factory.mktemp("acx-cache")
    cache = OnnxModelCache(model_cache_dir({"ARCTICCODEX_CACHE_DIR": str(root)}))
    OnnxMiniLMBackend(cache=cache).embed(["warm"])
    assert cache.exports == 1
    return root


@pytest.fixture(scope="module")
def onnx_backend(cache_root: Path) -> Iterator[OnnxMiniLMBackend]:
    """The export on onnxruntime, fp32 (OpenVINO's bf16 runtime has tests of its own below)."""
    cache = OnnxModelCache(model_cache_dir({"ARCTICCODEX_CACHE_DIR": str(cache_root)}))
    backend = OnnxMiniLMBackend(cache=cache, runtime="onnxruntime")
    yield backend
    assert cache.exports == 0  # the module's export was reused


LONG = " ".join(f"word{i} of the long passage about glaciers and their slow retreat" for i in range(120))
TEXTS = [
    "",
    "a",
    "Otters eat mostly fish.",
    "   leading and trailing whitespace   ",
    "How do I reset my password when the e-mail link has expired?",
    "E-4471: the importer refused a file larger than the configured limit",
    "def nsmallest(n, iterable, key=None): Find the n smallest elements in a dataset.",
    "Ünïcödé: Zürich, Kraków, São Paulo — and 東京, Москва, القاهرة",
    "emoji 🙂🚀 and symbols ±×÷ ≤ ≥ ∑",
    "ALL CAPITALS SHOUTING ABOUT THE QUARTERLY REPORT",
    "numbers 3.14159 2.71828 1e-9 0xFF 1,000,000",
    "def f(x):\n    return x ** 2\n\nclass A:\n    pass",
    "<html><body><p>markup left in the text</p></body></html>",
    "tab\tseparated\tvalues\nand\nnew lines",
    "The vault stores documents, chunks and vectors in SQLite; BM25 comes from FTS5.",
    "Guide › Installation › Linux: install the package with pip and run the init command.",
    "question: which function returns the smallest few items without sorting everything?",
    "Paris is the capital of France.",
    "The mitochondria is the powerhouse of the cell.",
    "SELECT id, text FROM chunks WHERE document_id = ? ORDER BY position",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "https://example.org/path?query=1&other=two#fragment",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "    ",
    " ".join(["repetition"] * 300),
    LONG,
    LONG + " and a tail that the model never sees because it is past the limit",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40,
    "Short.",
    "A medium-length sentence that has a few clauses, some punctuation; and a question?",
    "\n".join(f"- item {i}: description of item {i}" for i in range(80)),
    "français: l'été dernier, nous sommes allés à la plage",
    "Deutsch: Die Straße ist lang und die Bäume sind grün.",
]


@pytest.mark.slow
@needs_onnxruntime
def test_vectors_agree_with_sentence_transformers(onnx_backend: OnnxMiniLMBackend) -> None:
    reference = SentenceTransformerBackend().embed(TEXTS)
    ours = onnx_backend.embed(TEXTS)
    assert ours.shape == reference.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.99, f"cosine {cosines[worst]:.4f} for {TEXTS[worst][:60]!r}"
    # truncated at 256 word pieces, as sentence-transformers does: a tail past the limit changes nothing
    assert float(ours[TEXTS.index(LONG)] @ ours[TEXTS.index(LONG) + 1]) > 0.9999
    # one at a time or in a batch (padding to the batch's longest text) gives the same vector
    alone = np.stack([onnx_backend.embed([text])[0] for text in TEXTS[:8]])
    assert np.allclose(alone, ours[:8], atol=1e-5)
    one_call = OnnxMiniLMBackend(
        cache=onnx_backend.cache, token_budget=len(TEXTS) * 256, batch_size=len(TEXTS), runtime="onnxruntime"
    )
    assert np.allclose(one_call.embed(TEXTS), ours, atol=1e-5)  # every text padded to 256 pieces, in one call


@pytest.mark.slow
@needs_onnxruntime
def test_the_int8_model_is_quantised_and_close_to_the_fp32_model(cache_root: Path) -> None:
    """Close (cosine ≥ 0.95 each, mean ≥ 0.985; measured 0.972 / 0.991), and not the fp32 graph renamed."""
    cache = OnnxModelCache(model_cache_dir({"ARCTICCODEX_CACHE_DIR": str(cache_root)}))
    backend = backend_named(INT8_MODEL)
    assert isinstance(backend, OnnxMiniLMBackend) and backend.name == INT8_MODEL
    backend.cache = cache
    int8 = backend.embed(TEXTS)
    fp32 = OnnxMiniLMBackend(cache=cache).embed(TEXTS)
    assert cache.exports == 1  # the quantisation; the fp32 export was the module's
    cosines = (int8 * fp32).sum(axis=1)
    assert cosines.min() >= 0.95 and cosines.mean() >= 0.985, cosines
    assert cosines.mean() < 0.9999  # quantised: the vectors moved
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@needs_onnxruntime
def test_the_int8_model_keeps_retrieval_near_the_fp32_model(cache_root: Path, tmp_path: Path) -> None:
    """recall@5 on tests/fixtures/retrieval: measured gaps 0.000–0.013 (hybrid) and 0.007–0.013 (vector)."""
    from arcticcodex.vault import Searcher, Vault, evaluate, import_paths, load_queries

    fixture = Path(__file__).parent / "fixtures" / "retrieval"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for line in (fixture / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            (corpus / f"{item['id']}.md").write_text(f"# {item['title']}\n\n{item['text']}\n", encoding="utf-8")
    cache = OnnxModelCache(model_cache_dir({"ARCTICCODEX_CACHE_DIR": str(cache_root)}))
    recall: dict[str, dict[str, float]] = {}
    for name, int8 in ((DEFAULT_MODEL, False), (INT8_MODEL, True)):
        workspace, _ = Workspace.init(tmp_path / f"ws-{int8}")
        with Vault(workspace, embedder=OnnxMiniLMBackend(name=name, int8=int8, cache=cache)) as vault:
            import_paths(vault, [corpus])
            scores = evaluate(Searcher(vault), load_queries(fixture / "queries.jsonl"), k=5)
        recall[name] = {score.mode: score.recall_at_k for score in scores}
    assert recall[INT8_MODEL]["hybrid"] >= recall[DEFAULT_MODEL]["hybrid"] - 0.02, recall
    assert recall[INT8_MODEL]["vector"] >= recall[DEFAULT_MODEL]["vector"] - 0.03, recall


@pytest.mark.slow
@needs_onnxruntime
def test_the_cached_graph_is_fused(onnx_backend: OnnxMiniLMBackend) -> None:
    """One Attention kernel per layer: the SDPA trace's mask ops (Where, IsNaN) defeated the fusion."""
    import onnx

    path = onnx_backend.cache.path_for(DEFAULT_MODEL, onnx_cache.default_model_folder())
    kinds = [node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node]
    assert kinds.count("Attention") == 6 and kinds.count("EmbedLayerNormalization") == 1
    assert "Where" not in kinds and "IsNaN" not in kinds and "Softmax" not in kinds


@pytest.mark.slow
@needs_onnxruntime
def test_openvino_runs_the_same_graph_to_the_same_vectors(onnx_backend: OnnxMiniLMBackend) -> None:
    """bf16 where the CPU has it (fp32 elsewhere): cosine ≥ 0.9999 to onnxruntime's fp32, batched or alone."""
    pytest.importorskip("openvino")
    chosen = OnnxMiniLMBackend(cache=onnx_backend.cache)  # auto: OpenVINO on the CPU when installed
    ours = chosen.embed(TEXTS)
    assert chosen.runtime == "openvino" and onnx_backend.runtime == "onnxruntime"
    reference = onnx_backend.embed(TEXTS)
    cosines = (ours * reference).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.9999, f"cosine {cosines[worst]:.5f} for {TEXTS[worst][:60]!r}"
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5) and ours.dtype == np.float32
    alone = np.stack([chosen.embed([text])[0] for text in TEXTS[:8]])
    assert ((alone * ours[:8]).sum(axis=1) >= 0.9999).all()
    session = chosen._session
    assert session.precision in ("bf16", "f32")
    # the int8 graph and an explicit choice stay on onnxruntime; OpenVINO refuses what it does not run
    assert OnnxMiniLMBackend(cache=onnx_backend.cache, runtime="onnxruntime").runtime == "onnxruntime"
    with pytest.raises(ConfigError, match="OpenVINO runtime runs the fp32 export on the CPU only"):
        OnnxMiniLMBackend(cache=onnx_backend.cache, runtime="openvino", int8=True)


@pytest.mark.slow
@needs_onnxruntime
def test_an_openvino_that_cannot_run_here_leaves_the_graph_to_onnxruntime(
    onnx_backend: OnnxMiniLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp: no CPU plugin")

    monkeypatch.setattr(onnx_minilm, "OpenVinoSession", broken)
    monkeypatch.setattr(onnx_minilm, "openvino_available", lambda: True)
    fallback = OnnxMiniLMBackend(cache=onnx_backend.cache)
    assert np.allclose(fallback.embed(TEXTS[:4]), onnx_backend.embed(TEXTS[:4]), atol=1e-6)
    assert fallback.runtime == "onnxruntime"
    insisted = OnnxMiniLMBackend(cache=onnx_backend.cache, runtime="openvino")
    with pytest.raises(RuntimeError, match="no CPU plugin"):  # asked for by name: its failure is not hidden
        insisted.embed(["x"])


@pytest.mark.slow
@needs_onnxruntime
def test_a_fresh_process_imports_and_searches_without_torch(cache_root: Path, tmp_path: Path) -> None:
    """Ingest and a hybrid search, each a new process of the real CLI with ``-X importtime``."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "otters.md").write_text("# Otters\n\nOtters eat mostly fish. They also eat crabs.\n")
    (notes / "glaciers.md").write_text("# Glaciers\n\nGlaciers retreat when summers are warm.\n")
    env = {"ARCTICCODEX_CACHE_DIR": str(cache_root), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def cli(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "arcticcodex.cli", "-w", str(workspace.root), *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        names = {
            line.rpartition("|")[2].strip().split(".")[0]
            for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        }
        assert {"onnxruntime", "openvino"} & names, done.stderr[-2000:]  # the listing is there, the model ran
        return done, names

    _, imported = cli("vault", "import", str(notes))
    assert not set(EMBEDDING_MODEL) & imported
    done, searched = cli("vault", "search", "which animal feeds on seafood", "--json")  # hybrid
    assert not set(EMBEDDING_MODEL) & searched, sorted(set(EMBEDDING_MODEL) & searched)
    if importlib.util.find_spec("openvino") is not None:  # the import ran on OpenVINO, the search did not
        assert "openvino" in imported and "openvino" not in searched and "onnxruntime" in searched
    hits = json.loads(done.stdout)
    assert "Otters" in hits[0]["text"]
    assert not list((cache_root / "models").glob(".*.partial"))

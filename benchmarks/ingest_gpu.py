"""Ingest embedding on a CUDA device against the CPU, in the same run (``vault import --device cuda``).

Run: ``.venv/bin/python benchmarks/ingest_gpu.py [--chunks 2048] [--repeats 3] [--cpu-chunks 64]``

Embeds texts of the default chunk size (1,200 characters, cut from the retrieval fixture's passages)
with the default model (all-MiniLM-L6-v2) built as ``vault import --device cuda`` builds it
(:func:`arcticcodex.vault.embeddings.backend_named`: onnxruntime's CUDA provider when onnxruntime-gpu
is installed, else sentence-transformers on torch's CUDA), and as ``--device cpu`` builds it, all the
machine's cores; prints chunks/s (wall time, median of ``--repeats``; the device synchronised by the
call's own return of NumPy arrays) and the ratio, and the cosine between the two backends' vectors
(the same model: ≥ 0.99 per text).  Exit status 1, with the reason, when no CUDA device is present
(``--device cuda`` is refused there too) or the vectors disagree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from arcticcodex.errors import ConfigError
from arcticcodex.vault.embeddings import DEFAULT_MODEL, EmbeddingBackend, backend_named, cuda_runtime, resolve_device
from cold_start import CHUNK_CHARS, chunk_texts

AGREEMENT = 0.99


def rate(backend: EmbeddingBackend, texts: list[str], repeats: int) -> float:
    backend.embed(texts[:8])  # load (and, on a GPU, initialise the context), unmeasured
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.embed(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2048, help="texts per GPU repeat")
    parser.add_argument("--cpu-chunks", type=int, default=64, help="texts per CPU repeat (the CPU is slow)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        resolve_device("cuda")
    except ConfigError as exc:
        print(f"ingest_gpu: no CUDA device to measure ({exc})", file=sys.stderr)
        return 1
    runtime = cuda_runtime()
    texts = (chunk_texts(512) * (args.chunks // 512 + 1))[: args.chunks]
    gpu = backend_named(DEFAULT_MODEL, device="cuda")
    cpu = backend_named(DEFAULT_MODEL, device="cpu", bulk=True)  # what `vault import --device cpu` embeds with
    gpu_rate = rate(gpu, texts, args.repeats)
    cpu_rate = rate(cpu, texts[: args.cpu_chunks], args.repeats)
    sample = texts[:64]
    cosines = (gpu.embed(sample) * cpu.embed(sample)).sum(axis=1)
    print(f"ingest embedding, {DEFAULT_MODEL}, chunks of {CHUNK_CHARS} chars, median of {args.repeats}:")
    print(f"  CUDA ({runtime}, {type(gpu).__name__}) {gpu_rate:9.1f} chunks/s over {len(texts)} chunks")
    print(f"  CPU ({type(cpu).__name__}, all cores) {cpu_rate:9.1f} chunks/s over {args.cpu_chunks} chunks")
    print(f"  CUDA / CPU: {gpu_rate / cpu_rate:.1f}×;  cosine CUDA vs CPU: min {cosines.min():.4f}")
    if cosines.min() < AGREEMENT:
        print(f"MISSED: the CUDA vectors differ from the CPU's (cosine {cosines.min():.4f} < {AGREEMENT})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

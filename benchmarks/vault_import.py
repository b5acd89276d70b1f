"""Import under attack: the HTML extractor is linear in its input, and a large text file imports in flat memory.

Run: ``.venv/bin/python benchmarks/vault_import.py [--repeats 3] [--nesting 40000] [--megabytes 50 200]``

* **HTML linearity.**  Hostile shapes — nested ``<noscript>`` and ``<template>`` (the latter refused by
  the depth cap, after reading it all), nested ``<div>``, runs of unclosed ``<a `` and ``<!--`` (which
  made Python 3.11's ``html.parser`` re-scan the rest of the page at every one), and an ordinary page
  — are extracted at n, 2n and 4n.  Bound: each doubling of n at most 2.5× the time (linear doubles
  it, quadratic quadruples it).  The peer is the extractor before this change (``html.parser`` plus a
  list of open hidden elements), on the nested ``<noscript>`` shape at n/8 … n/2.  Times are CPU time,
  medians of at least 7 rounds that each run n, 2n and 4n in turn.
* **Streaming memory.**  Text files of 50 and 200 MB are each imported into a fresh workspace, in a
  fresh process (peak RSS is per process), with the HashingBackend so that the model costs little and
  ingest is what is measured.  Printed: peak RSS, its growth over the process's baseline (modules
  loaded, vault open) and the ratio of the two peaks.  Bound: ≤ 1.25 (flat).  The peer is the same
  50 MB file loaded whole (the path before this change; files under 4 MiB still take it).

Memory figures are medians of ``--repeats`` runs.  Exit status 1 when a bound is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from arcticcodex.errors import UserError
from arcticcodex.vault.loaders import load_document

DOUBLING_BOUND = 2.5
FLAT_BOUND = 1.25


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM where Linux has it, since ru_maxrss survives exec (a child would
    report its parent's peak if that was higher)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kilobytes / 1024


# --- HTML --------------------------------------------------------------------------------------------------


def nested(tag: str) -> Callable[[int], str]:
    return lambda n: "<p>before</p>" + f"<{tag}>" * n + "inside" + f"</{tag}>" * n + "<p>after</p>"


def ordinary(n: int) -> str:
    block = (
        '<div class="c"><h2>Heading</h2><p>Text with <b>bold</b>, <a href="/x?a=1&amp;b=2">a link</a> &amp; more.'
        "</p></div>"
    )
    return "<html><head><title>Page</title></head><body>" + block * (n // 2) + "</body></html>"


SHAPES: dict[str, Callable[[int], str]] = {
    "nested <noscript>": nested("noscript"),
    "nested <template> (refused by the cap)": nested("template"),
    "nested <div>": nested("div"),
    "unclosed '<a ' runs (×25 n)": lambda n: "<p>kept</p>" + "<a " * (25 * n),
    "unclosed '<!--' runs (×25 n)": lambda n: "<p>kept</p>" + "<!--" * (25 * n),
    "ordinary page (n/2 blocks)": ordinary,
}


class BeforePeer(HTMLParser):
    """The extractor before this change, reduced to what made it quadratic: a list of open hidden elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if "head" in self.skipping and tag not in ("title", "meta", "link", "style", "script", "noscript"):
            self.skipping.remove("head")
        if tag in ("script", "style", "noscript", "template", "head"):
            self.skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.skipping:
            del self.skipping[len(self.skipping) - 1 - self.skipping[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.text.append(data)


def extract(page: bytes) -> None:
    with contextlib.suppress(UserError):  # the depth cap: the whole page was still read
        load_document(Path("bench.html"), page)


def peer(page: bytes) -> None:
    parser = BeforePeer()
    parser.feed(page.decode())
    parser.close()


def timed(function: Callable[[bytes], None], pages: list[bytes], repeats: int) -> list[float]:
    """Median CPU seconds per page (other processes on a busy machine do not count); the sizes are
    interleaved in each round, so any drift hits all of them alike."""
    times: list[list[float]] = [[] for _ in pages]
    gc.disable()  # the extractor makes no cycles; a collection landing in one size's run is noise
    try:
        for _ in range(repeats):
            for index, page in enumerate(pages):
                start = time.process_time()
                function(page)
                times[index].append(time.process_time() - start)
    finally:
        gc.enable()
    return [statistics.median(each) for each in times]


def html_benchmark(nesting: int, repeats: int) -> bool:
    repeats = max(repeats, 7)  # cheap: more repeats steady the small timings
    print(f"HTML extraction, CPU time, median of {repeats}; bound: doubling n costs ≤ {DOUBLING_BOUND}× the time")
    print(f"  {'shape':40} {'n':>8} {'2n':>8} {'4n':>8}   ratios")
    ok = True
    rows = [(name, make, extract, nesting) for name, make in SHAPES.items()]
    rows.append(("peer: before, nested <noscript>", SHAPES["nested <noscript>"], peer, nesting // 8))
    for name, make, function, n in rows:
        seconds = timed(function, [make(n * factor).encode() for factor in (1, 2, 4)], repeats)
        ratios = [later / max(earlier, 1e-6) for earlier, later in itertools.pairwise(seconds)]
        is_peer = name.startswith("peer")
        within = all(ratio <= DOUBLING_BOUND for ratio in ratios)
        verdict = "(peer)" if is_peer else ("ok" if within else "OVER BOUND")
        ok = ok and (within or is_peer)
        cells = " ".join(f"{s * 1000:7.1f}ms" for s in seconds)
        print(f"  {name:40} {cells}   {ratios[0]:.2f} {ratios[1]:.2f} {verdict}   (n = {n:,})")
    print(f"  peak RSS {peak_rss_mb():.0f} MB")
    return ok


# --- streaming memory --------------------------------------------------------------------------------------

WORDS = "otter kestrel harbour ledger signal Zürich rösti café naïve valve turbine relay budget index shard".split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 16)))


def write_text_file(path: Path, megabytes: int) -> None:
    """Markdown: numbered paragraphs (so no two chunks are equal), a heading every 40 paragraphs."""
    rng = random.Random(megabytes)
    pool = [". ".join(sentence(rng) for _ in range(rng.randint(1, 7))) + "." for _ in range(2000)]
    size, number = 0, 0
    with path.open("w", encoding="utf-8") as handle:
        while size < megabytes * 1_000_000:
            paragraph = f"## Part {number}" if number % 40 == 0 else f"Paragraph {number}. {rng.choice(pool)}"
            handle.write(paragraph + "\n\n")
            size += len(paragraph.encode()) + 2
            number += 1


def child_import(path: Path, whole: bool) -> None:
    """In a fresh process: import one file, print peak RSS and the baseline before the import, as JSON."""
    from arcticcodex.vault import HashingBackend, Vault, import_paths, ingest
    from arcticcodex.workspace import Workspace

    if whole:
        ingest.STREAM_FROM_BYTES = 1 << 62  # the path before this change: read, decode and chunk it whole
    with tempfile.TemporaryDirectory() as folder:
        workspace, _ = Workspace.init(Path(folder) / "ws")
        with Vault(workspace, embedder=HashingBackend(64)) as vault:
            vault.embedder.embed(["warm up"])
            baseline = peak_rss_mb()
            start = time.perf_counter()
            report = import_paths(vault, [path])
            seconds = time.perf_counter() - start
            if report.failed or report.chunks == 0:
                raise SystemExit(f"import failed: {report.failed}")
    print(json.dumps({"peak": peak_rss_mb(), "baseline": baseline, "seconds": seconds, "chunks": report.chunks}))


def measure(path: Path, whole: bool = False) -> dict[str, float]:
    command = [sys.executable, __file__, "--child-import", str(path), *(["--whole"] if whole else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def memory_benchmark(megabytes: list[int], repeats: int, with_peer: bool) -> bool:
    print(f"\nStreaming import, HashingBackend(64), one process per run, median of {repeats}:")
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in megabytes:
            path = Path(folder) / f"corpus-{size}mb.md"
            write_text_file(path, size)
            runs = [measure(path) for _ in range(repeats)]
            peak = statistics.median(run["peak"] for run in runs)
            growth = statistics.median(run["peak"] - run["baseline"] for run in runs)
            seconds = statistics.median(run["seconds"] for run in runs)
            peaks[size] = peak
            each = ", ".join(f"{run['peak']:.0f}" for run in runs)
            print(
                f"  {size:4} MB file: peak RSS {peak:6.0f} MB, import's growth {growth:5.0f} MB "
                f"({growth / size:.2f}× the file), {runs[0]['chunks']:,.0f} chunks, {seconds:.0f} s   (peaks {each})"
            )
            if with_peer and size == min(megabytes):
                whole = [measure(path, whole=True) for _ in range(repeats)]
                peer_growth = statistics.median(run["peak"] - run["baseline"] for run in whole)
                print(
                    f"  peer, {size} MB loaded whole (before): peak RSS "
                    f"{statistics.median(run['peak'] for run in whole):6.0f} MB, growth {peer_growth:5.0f} MB "
                    f"({peer_growth / size:.1f}× the file)"
                )
            path.unlink()
    small, large = min(megabytes), max(megabytes)
    ratio = peaks[large] / peaks[small]
    print(f"  peak {large} MB / peak {small} MB = {ratio:.2f} (bound ≤ {FLAT_BOUND}: flat)")
    return ratio <= FLAT_BOUND


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nesting", type=int, default=40_000, help="n for the HTML shapes (also 2n and 4n)")
    parser.add_argument("--megabytes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--no-peer", action="store_true", help="skip loading the smallest file whole")
    parser.add_argument("--skip-html", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child-import", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import is not None:
        child_import(args.child_import, args.whole)
        return 0
    ok = True
    if not args.skip_html:
        ok = html_benchmark(args.nesting, args.repeats) and ok
    if not args.skip_memory:
        ok = memory_benchmark(args.megabytes, args.repeats, not args.no_peer) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""``arcticcodex vault``: import, search, inspect, forget and verify the knowledge store.

Document text, titles, file names and facts are printed through :mod:`.display`: control characters
escaped, rich markup never interpreted, so what a document holds cannot act on the terminal.
Slightly over 400 lines: nine commands, each a thin layer over :mod:`arcticcodex.vault` with its
options, help and example — the length is their help text, not logic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..config import CONFIG_NAME
from ..errors import ConfigError, RecordNotFoundError
from ..vault import Searcher, SearchFilters, Vault, evaluate, import_paths, load_queries
from ..vault.embeddings import DEVICE_CHOICES, backend_named, resolve_device
from ..vault.ingest import ImportReport
from ..vault.search import MODES
from ..vault.walk import discover
from . import CliState, pass_state
from .display import json_text, shown, shown_text

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@contextmanager
def _vault(state: CliState) -> Iterator[Vault]:
    with Vault(state.workspace()) as vault:
        yield vault


def _echo_json(data: Any) -> None:
    click.echo(json_text(data))


@click.group()
def vault() -> None:
    """The knowledge store: documents, chunks, vectors, facts and conversations."""


@vault.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable), e.g. '*.md'.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")
@click.option("--include-hidden", is_flag=True, help="Also import hidden files and folders (dot-names).")
@click.option("--force", is_flag=True, help="Also import files whose documents were forgotten.")
@click.option(
    "--device",
    type=click.Choice(DEVICE_CHOICES),
    default=None,
    help="Where chunks are embedded: auto uses a CUDA device when one is present, else the CPU."
    "  [default: [vault] device, else auto]",
)
@JSON_OPTION
@pass_state
def import_(
    state: CliState,
    paths: tuple[Path, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    include_hidden: bool,
    force: bool,
    device: str | None,
    as_json: bool,
) -> None:
    """Import files and folders (.txt .md .rst .html .pdf .jsonl), recursively.

    Unchanged files are skipped, changed files replace their chunks, and a file that cannot be read
    is reported and skipped, and so is a file whose document was forgotten (unless --force).  Safe
    to interrupt: run it again to finish.

    A folder is imported without ever leaving it: symbolic links to anything outside it, FIFOs,
    sockets and devices, hidden files and folders (unless --include-hidden), the workspace's data
    folder and dataset folders are skipped, and each is listed with the reason.  A symbolic link
    named on the command line is followed: naming it is the choice.

    \b
    Exit status:
      0  every file was imported, unchanged, or skipped on purpose (each skip is listed)
      1  a file could not be imported (each is listed with the reason; the others were imported)

    \b
    Example:
      arcticcodex vault import docs/ notes.md --exclude 'drafts/*'
      arcticcodex vault import big-corpus/ --device cuda
    """
    console = Console(stderr=True)
    workspace = state.workspace()
    model = workspace.config.vault.embedding_model
    configured = device is None
    device = device or workspace.config.vault.device
    try:
        where = resolve_device(device, model)  # before anything is read: a refused device imports nothing
    except ConfigError as exc:
        message = str(exc)
        if configured:  # the setting chose it, not the option: say where to change it
            message += f" (chosen by [vault] device = {device!r} in {workspace.root / CONFIG_NAME}; change it there)"
        # a refused option is a usage error (exit status 2); the message says all the cause would
        raise click.UsageError(message) from None
    embedder = backend_named(model, device=where, bulk=True)  # many texts: the fastest runtime here
    if device == "auto" and not as_json:
        console.print(f"embedding on {'a CUDA device' if where == 'cuda' else 'the CPU'} (--device auto)", markup=False)
    with Vault(workspace, embedder=embedder) as store:
        total = len(
            discover(
                paths,
                include=include,
                exclude=exclude,
                include_hidden=include_hidden,
                data_dir=store.workspace.data_dir,
            ).files
        )
        report = _import_with_progress(store, paths, include, exclude, include_hidden, force, total, console, as_json)
    if as_json:
        _echo_json(report.to_json())
    else:
        click.echo(
            f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
            f"{len(report.failed)} failed, {len(report.skipped)} skipped; {report.chunks} chunks written, "
            f"{report.embedded} embedded, {report.reused} vectors reused"
        )
    for source, reason in report.failed:
        click.echo(f"failed {shown(source)}: {shown(reason)}", err=True)
    for path, reason in report.skipped:
        click.echo(f"skipped {shown(path)}: {shown(reason)}", err=True)
    for source in report.forgotten:
        click.echo(f"skipped {shown(source)}: its document was forgotten; import it again with --force", err=True)
    for source, encoding in report.decoded:
        click.echo(f"decoded {shown(source)} as {encoding}: it is not UTF-8", err=True)
    if report.failed:
        click.echo(
            f"Error: {len(report.failed)} file(s) could not be imported (listed above); fix or remove them "
            "and import again (the files that were imported stay)",
            err=True,
        )
        click.get_current_context().exit(1)


def _import_with_progress(
    store: Vault,
    paths: tuple[Path, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    include_hidden: bool,
    force: bool,
    total: int,
    console: Console,
    as_json: bool,
) -> ImportReport:
    with Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks, {task.fields[embedded]} embedded"),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("import", total=total, chunks=0, embedded=0)

        def on_file(report: ImportReport, _: Path) -> None:
            progress.update(task, completed=report.files_done, chunks=report.chunks, embedded=report.embedded)

        report = import_paths(
            store,
            paths,
            include=include,
            exclude=exclude,
            include_hidden=include_hidden,
            on_file=on_file,
            force=force,
        )
        progress.update(task, completed=report.files_done, chunks=report.chunks, embedded=report.embedded)
    return report


@vault.command()
@click.argument("query")
@click.option("-k", "--limit", "k", default=10, show_default=True, help="Number of results.")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="hybrid fuses BM25 and vectors; bm25 or vector use one ranker.",
)
@click.option("--doc", "documents", multiple=True, metavar="ID", help="Only these documents (repeatable).")
@click.option("--source", "source_glob", metavar="GLOB", help="Only sources matching, e.g. 'docs/*.md'.")
@click.option("--since", metavar="DATE", help="Only documents dated on or after (ISO date).")
@click.option("--until", metavar="DATE", help="Only documents dated on or before (ISO date).")
@JSON_OPTION
@pass_state
def search(
    state: CliState,
    query: str,
    k: int,
    mode: str,
    documents: tuple[str, ...],
    source_glob: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Search the vault: BM25 and vectors, fused (or one of them with --mode).

    \b
    Example:
      arcticcodex vault search "how are unchanged files handled" -k 5
      arcticcodex vault search E-4471 --mode bm25 --json
    """
    filters = SearchFilters(document_ids=documents, source_glob=source_glob, since=since, until=until)
    with _vault(state) as store:
        results = Searcher(store).search(query, k=k, mode=mode, filters=filters)  # type: ignore[arg-type]
    if as_json:
        _echo_json([result.to_json() for result in results])
        return
    if not results:
        click.echo("no results")
    console = Console(highlight=False)
    for result in results:
        heading = Text.assemble((f"{result.rank}. ", "bold"), shown(result.source))
        if result.heading_path:
            heading.append(" › ").append(shown(result.heading_path))
        heading.append(f" {result.chunk_id}", style="dim")
        heading.append(f"  score {result.score:.4f}", style="dim")
        console.print(heading)  # Text, never markup: a source named "notes [red].md" prints as it is
        snippet = result.snippet.replace("\r", " ").replace("\n", " ")  # one line; offsets unchanged
        console.print(shown_text(snippet, result.highlights), soft_wrap=False)
        console.print()


@vault.command()
@click.argument("record_id")
@JSON_OPTION
@pass_state
def show(state: CliState, record_id: str, as_json: bool) -> None:
    """Show a document (with its chunks), a chunk, a fact or a conversation by id.

    \b
    Example:
      arcticcodex vault show doc-3f9a1c2b7d4e5f60
      arcticcodex vault show doc-3f9a1c2b7d4e5f60:2 --json
    """
    with _vault(state) as store:
        data = _lookup(store, record_id)
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        if key in ("chunks", "messages"):
            click.echo(f"{key}:")
            for item in value:
                label = item.get("id", "")
                body = item.get("text", item.get("content", ""))
                click.echo(f"  {shown(str(label))}  {body[:100]!r}")  # repr: one line, controls escaped
        else:
            click.echo(f"{key}: {shown(str(value))}")


def _lookup(store: Vault, record_id: str) -> dict[str, Any]:
    for getter in (store.get_chunk, store.get_fact, store.get_conversation):
        try:
            return getter(record_id).to_json()
        except RecordNotFoundError:
            pass
    document = store.get_document(record_id).to_json()
    document["chunks"] = [chunk.to_json() for chunk in store.chunks_of(record_id)]
    return document


@vault.command()
@click.option("--source", "source_glob", metavar="GLOB", help="Only sources matching.")
@JSON_OPTION
@pass_state
def docs(state: CliState, source_glob: str | None, as_json: bool) -> None:
    """List documents.

    \b
    Example:
      arcticcodex vault docs --source 'docs/*'
    """
    with _vault(state) as store:
        documents = store.list_documents(source_glob=source_glob)
    if as_json:
        _echo_json([document.to_json() for document in documents])
        return
    table = Table("id", "source", "title", "chunks", "type", box=None)
    for document in documents:
        table.add_row(
            *(Text(shown(value)) for value in (document.id, document.source, document.title)),
            str(document.chunk_count),
            document.media_type,
        )
    Console().print(table)


@vault.command()
@click.option("--conversation", metavar="ID", help="Facts from this conversation.")
@click.option("--chunk", "source_chunk_id", metavar="ID", help="Facts citing this chunk.")
@click.option("--document", metavar="ID", help="Facts citing chunks of this document.")
@click.option(
    "--status",
    type=click.Choice(["approved", "pending", "rejected", "all"]),
    default="approved",
    show_default=True,
    help="Review status: pending facts are proposals not yet approved.",
)
@JSON_OPTION
@pass_state
def facts(
    state: CliState,
    conversation: str | None,
    source_chunk_id: str | None,
    document: str | None,
    status: str,
    as_json: bool,
) -> None:
    """List facts (subject, predicate, object, confidence, cited chunk).

    \b
    Example:
      arcticcodex vault facts --document doc-3f9a1c2b7d4e5f60 --json
    """
    with _vault(state) as store:
        found = store.list_facts(
            conversation_id=conversation,
            source_chunk_id=source_chunk_id,
            document_id=document,
            status=None if status == "all" else status,
        )
    if as_json:
        _echo_json([fact.to_json() for fact in found])
        return
    for fact in found:
        cited = f"  [{fact.source_chunk_id}]" if fact.source_chunk_id else ""
        click.echo(shown(f"{fact.id}  {fact.subject} — {fact.predicate} — {fact.object}  ({fact.confidence}){cited}"))


@vault.command()
@click.argument("record_id")
@click.option("--reason", required=True, help="Why it is forgotten (kept in a tombstone).")
@pass_state
def forget(state: CliState, record_id: str, reason: str) -> None:
    """Forget a document, conversation, fact or summary, and what it owns.

    \b
    Example:
      arcticcodex vault forget doc-3f9a1c2b7d4e5f60 --reason "contains personal data"
    """
    with _vault(state) as store:
        tombstone = store.forget(record_id, reason)
    removed = ", ".join(f"{count} {name}" for name, count in tombstone.detail.items() if isinstance(count, int))
    click.echo(f"forgot {tombstone.kind} {record_id}" + (f" ({removed})" if removed else ""))


@vault.command()
@JSON_OPTION
@pass_state
def stats(state: CliState, as_json: bool) -> None:
    """Counts of documents, chunks, vectors, facts, conversations, and sizes.

    \b
    Example:
      arcticcodex vault stats --json
    """
    with _vault(state) as store:
        numbers = store.stats()
    if as_json:
        _echo_json(numbers)
        return
    for key, value in numbers.items():
        click.echo(f"{key:16} {value}")


@vault.command()
@click.option("--repair", is_flag=True, help="Rebuild the full-text index from the chunks first.")
@JSON_OPTION
@click.pass_context
def verify(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Re-hash every document, chunk and vector; exit 1 if anything is wrong.

    \b
    Example:
      arcticcodex vault verify
    """
    state = ctx.find_object(CliState)
    if state is None:  # pragma: no cover - the root command always sets it
        raise click.UsageError("no CLI state")
    with _vault(state) as store:
        if repair:
            store.rebuild_index()
        report = store.verify()
    if as_json:
        _echo_json(report.to_json())
    else:
        click.echo(", ".join(f"{count} {name}" for name, count in report.checked.items()) + " checked")
        for problem in report.problems:
            click.echo(shown(str(problem)), err=problem.severity == "error")
        click.echo("ok" if report.ok else "PROBLEMS FOUND")
    if not report.ok:
        ctx.exit(1)


@vault.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--qrels", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="query_id<TAB>key<TAB>grade"
)
@click.option("--mode", "modes", multiple=True, type=click.Choice(MODES), help="Modes to compare (default: all).")
@click.option("-k", default=10, show_default=True, help="Cut-off for recall and MRR.")
@JSON_OPTION
@pass_state
def eval_(state: CliState, queries: Path, qrels: Path | None, modes: tuple[str, ...], k: int, as_json: bool) -> None:
    """Measure retrieval quality: recall@k, MRR@k and nDCG@10 per search mode.

    QUERIES is JSON Lines: {"id": "q1", "query": "...", "relevant": {"<doc/chunk/source>": 2}}.

    \b
    Example:
      arcticcodex vault eval queries.jsonl -k 10
    """
    labelled = load_queries(queries, qrels)
    with _vault(state) as store:
        scores = evaluate(Searcher(store), labelled, modes=modes or MODES, k=k)  # type: ignore[arg-type]
    if as_json:
        _echo_json([score.to_json() for score in scores])
        return
    table = Table("mode", f"recall@{k}", f"MRR@{k}", "nDCG@10", box=None)
    for score in scores:
        table.add_row(score.mode, f"{score.recall_at_k:.3f}", f"{score.mrr_at_k:.3f}", f"{score.ndcg_at_10:.3f}")
    Console().print(table)
    click.echo(f"{len(labelled)} queries")

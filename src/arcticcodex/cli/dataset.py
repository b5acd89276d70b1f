"""``arcticcodex dataset``: verify, summarise, export and publish signed datasets.

One module per command group, so this one holds the group's commands (verify, stats, export, push,
import-conversations), each with its help and examples — a little over 400 lines; the work itself is
in :mod:`arcticcodex.dataset`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click

from ..dataset import dataset_statistics, export_dataset, verify_dataset
from ..dataset.citations import TrainingView
from ..dataset.export import DEFAULT_DPO_MARGIN, FORMAT_NAMES, PARQUET_ROWS, SPLITS
from ..dataset.preferences import explain_no_preferences
from ..dataset.raft import DEFAULT_DISTRACTORS, MAX_DISTRACTORS, RaftExamples, VaultPassages
from ..dataset.sensitive_gate import sensitive_data_text
from ..dataset.trainer_configs import check_dataset_info, write_trainer_configs
from ..errors import DatasetError, KeyFileError, WorkspaceNotFoundError
from ..fileio import read_plain_file
from ..provenance import Ed25519Verifier, KeyStore
from ..provenance.signing import MAX_PUBLIC_KEY_BYTES
from ..provenance.trust import KeyRing
from ..terminal import escape_controls
from . import CliState, default_workers, pass_state


def key_options(command: Callable[..., None]) -> Callable[..., None]:
    """--key and --public-key: trust exactly this key for this command (verify and export take both)."""
    command = click.option(
        "--public-key",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Trust only this Ed25519 public key (PEM), from a source you trust.",
    )(command)
    return click.option(
        "--key", "key_name", help="Trust only this workspace key (and use its secret, for HMAC datasets)."
    )(command)


workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=default_workers,
    show_default="one per core, at most 8",
    help="Processes that check records, and convert them for an export (datasets over 16 MB).",
)


@click.group()
def dataset() -> None:
    """Check, summarise, export and publish signed datasets (folders written by `arcticcodex distill`)."""


@dataset.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@key_options
@workers_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@pass_state
def verify(
    state: CliState, directory: Path, key_name: str | None, public_key: Path | None, workers: int, as_json: bool
) -> None:
    """Check every record, line and signature of the dataset in DIRECTORY, its manifest, and who signed it.

    Two verdicts.  Integrity: names each bad record by file, line and id (an edited byte, a record
    signed by another key, a deleted, inserted, duplicated or reordered record, a truncated last
    line, an id that is not the record's content id, an edited manifest).  Trust: whether the signer
    is a key you trust: one made here with `keys new`, one you added with `keys trust`, or, when
    given, only the --key / --public-key.  A public key shipped inside the dataset is never trusted
    by being there: anyone can re-sign a dataset and ship their own.

    \b
    Exit status:
      0  intact, and signed by a trusted key
      1  NOT intact: tampered, damaged or unverifiable
      2  intact, but the signer is NOT trusted (click's usage errors exit 2 as well: use --json
         to tell them apart, its "ok" and "trusted" fields are always there)

    \b
    Example:
      arcticcodex dataset verify out/my-dataset
      arcticcodex dataset verify out/my-dataset --public-key alice.pub --json
    """
    keyring = _keyring(state, key_name, public_key)
    try:
        report = verify_dataset(directory, keyring=keyring, workers=workers)
    except DatasetError as error:
        if not as_json:
            raise
        failure = {"ok": False, "trusted": False, "verdict": "NOT intact", "error": escape_controls(str(error))}
        click.echo(json.dumps(failure, indent=2))  # a script reading --json always gets JSON
        raise SystemExit(1) from error
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            click.echo(escape_controls(str(problem)))
        if report.problems_not_listed:
            click.echo(f"… and {report.problems_not_listed} more problems")
        counts = (
            f"{report.records} records"
            + (f" + {report.validation} for validation" if report.validation else "")
            + f", {report.rejected} rejected"
            if report.records_checked
            else "records not checked (no usable key)"
        )
        if not report.ok:
            total = len(report.problems) + report.problems_not_listed
            click.echo(f"FAILED: NOT intact, {total} problem{'s' if total != 1 else ''} — {counts}", err=True)
        elif report.trusted:
            click.echo(f"OK: intact, signer trusted ({report.trusted_as}, key {report.key_id[:16]}…) — {counts}")
        else:
            click.echo(f"intact, signer NOT trusted — {counts}; {report.trust_note}", err=True)
            click.echo(_trust_hint(state, directory, report.key_id, report.algorithm), err=True)
    if not report.ok:
        raise SystemExit(1)
    if not report.trusted:
        raise SystemExit(2)


def _keyring(state: CliState, key_name: str | None, public_key: Path | None) -> KeyRing:
    """Only the key given, or else the user's trusted keys (with the workspace's secrets, if there is one)."""
    if key_name and public_key:
        raise click.UsageError("give --key or --public-key, not both")
    if key_name:
        return KeyRing.only([(KeyStore(state.workspace().keys_dir).verifier(key_name), f"--key {key_name}")])
    if public_key:
        pem = read_plain_file(public_key, limit=MAX_PUBLIC_KEY_BYTES, what="--public-key")
        verifier = Ed25519Verifier.from_public_pem(pem, source=str(public_key))
        return KeyRing.only([(verifier, f"--public-key {public_key.name}")])
    try:
        keystore: KeyStore | None = KeyStore(state.workspace().keys_dir)
    except WorkspaceNotFoundError:
        keystore = None  # verifying outside any workspace: trust comes from the user's list alone
    return KeyRing.for_user(keystore)


def _trust_hint(state: CliState, directory: Path, key_id: str, algorithm: str) -> str:
    try:
        own = [info.name for info in KeyStore(state.workspace().keys_dir).list() if info.key_id == key_id]
    except (WorkspaceNotFoundError, KeyFileError):
        own = []
    if own:
        return (
            f"The key is this workspace's key {own[0]!r}, which is not in your trusted keys (made before "
            "ArcticCodex recorded trust, or in a workspace someone else made).  If you made it, trust it: "
            f"arcticcodex keys trust --key {own[0]}"
        )
    shipped = directory / "keys" / f"{key_id}.pub"
    if algorithm == "ed25519" and shipped.is_file():
        return (
            f"If you know this key is the signer's (compare its key id {key_id} with theirs, out of band), "
            f"trust it: arcticcodex keys trust {shipped} --name NAME"
        )
    return "Trust the signer's key with `arcticcodex keys trust FILE`, or verify with --key / --public-key."


@dataset.command("stats")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
def stats(directory: Path, as_json: bool) -> None:
    """Summarise the dataset in DIRECTORY: counts, quality, teachers, signers, rounds, tokens and cost.

    Statistics describe the files as they are; run `dataset verify` to know they can be trusted.

    \b
    Example:
      arcticcodex dataset stats out/my-dataset
      arcticcodex dataset stats out/my-dataset --json | jq .quality
    """
    summary = dataset_statistics(directory)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    quality = summary["quality"]
    click.echo(
        f"{summary['accepted']} accepted"
        + (f" ({summary['validation']} held out for validation)" if summary["validation"] else "")
        + f", {summary['rejected']} rejected "
        f"({summary['acceptance_rate']:.0%} accepted), {summary['duplicates_removed']} duplicates removed"
    )
    if quality["mean"] is not None:
        click.echo(f"quality of accepted pairs: mean {quality['mean']:.3f}, min {quality['min']}, max {quality['max']}")
    histogram = quality["accepted_histogram"]
    widest = max(histogram.values(), default=0) or 1
    for bucket, count in histogram.items():
        click.echo(f"  {bucket}  {'█' * round(30 * count / widest):<30} {count}")
    rounds = ", ".join(f"{rounds} round(s): {count}" for rounds, count in summary["rounds"].items())
    click.echo(f"rounds used: {rounds or 'none recorded'}")
    for title in ("teachers", "signers", "sources"):
        counts = ", ".join(f"{name} {count}" for name, count in summary[title].items())
        click.echo(f"{title}: {counts or 'none'}")
    click.echo(sensitive_data_text(summary["sensitive_data"]))
    if summary["cost_usd_per_accepted"] is not None:
        click.echo(
            f"tokens {summary['tokens']:,} ({summary['tokens_per_accepted']:,.0f} per accepted pair), "
            f"cost ${summary['cost_usd']:.4f} (${summary['cost_usd_per_accepted']:.6f} per accepted pair)"
        )


@dataset.command("export")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "export_format", type=click.Choice(FORMAT_NAMES), required=True, help="Target shape.")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file (default: DIRECTORY/export-FORMAT.jsonl, or .fn for frames; -SPLIT before the suffix "
    "for --split validation or all).",
)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="train",
    show_default=True,
    help="Which records: train, validation (the pairs held out with distill --validation), or all (both).",
)
@click.option(
    "--dpo-margin",
    type=click.FloatRange(0, 1),
    default=DEFAULT_DPO_MARGIN,
    show_default=True,
    help="dpo: the minimum score gain from first draft to accepted text for a preference pair.",
)
@click.option(
    "--rows",
    "parquet_rows",
    type=click.Choice(PARQUET_ROWS),
    default="messages",
    show_default=True,
    help="parquet: write the messages rows or the dpo rows.",
)
@click.option(
    "--with-evidence",
    is_flag=True,
    help="RAG-style: each example gets a system message with its numbered evidence (found in this "
    "workspace), and keeps its [n] citation markers.",
)
@click.option("--system-prompt", metavar="TEXT", help="A system message for every example (before the evidence).")
@click.option(
    "--distractors",
    type=click.IntRange(1, MAX_DISTRACTORS),
    default=DEFAULT_DISTRACTORS,
    show_default=True,
    help="raft: chunks of other documents shown with each pair's evidence.",
)
@click.option(
    "--no-trainer-configs",
    is_flag=True,
    help="Do not write dataset_info.json (LLaMA-Factory) and FILE.axolotl.yaml (Axolotl) beside the export.",
)
@key_options
@click.option(
    "--allow-untrusted", is_flag=True, help="Export an intact dataset even if its signer is not a key you trust."
)
@workers_option
@pass_state
def export(
    state: CliState,
    directory: Path,
    export_format: str,
    out: Path | None,
    split: str,
    dpo_margin: float,
    parquet_rows: str,
    with_evidence: bool,
    system_prompt: str | None,
    distractors: int,
    no_trainer_configs: bool,
    key_name: str | None,
    public_key: Path | None,
    allow_untrusted: bool,
    workers: int,
) -> None:
    """Write the accepted pairs of the dataset in DIRECTORY in the shape a trainer reads.

    The dataset is verified first (see `dataset verify`, whose --key and --public-key it takes): one
    that is not intact is refused, and so is one whose signer you do not trust, unless --allow-untrusted.

    Answers cite their evidence as [n]; a model trained on them without that evidence learns to cite
    what it cannot see, so the markers are removed, unless --with-evidence puts the evidence in a
    system message (RAG-style training).  Pairs from conversations keep their earlier turns.

    Beside the file go the trainers' configs for it: its entry in dataset_info.json (LLaMA-Factory;
    other entries are kept) and FILE.axolotl.yaml (an Axolotl datasets: stanza); not for dpo or fn.

    \b
    Formats:
      messages  TRL SFTTrainer / Axolotl chat_template   {"id", "messages"}
      openai    OpenAI fine-tuning                       {"messages"}
      alpaca    {"instruction", "input", "output"}
      sharegpt  {"conversations": [{"from": "human"|"gpt", "value"}]}
      dpo       TRL DPOTrainer: prompt / chosen (accepted) / rejected (first draft)
      raft      messages whose system message hides the evidence among --distractors chunks of
                other documents (this workspace's vault); the answer cites the evidence's new [n]
      fn        the canonical TRAIN_PAIR frames the signatures cover
      parquet   the messages (or --rows dpo) rows as Parquet, for `datasets`

    \b
    Example:
      arcticcodex dataset export out/my-dataset --format messages
      arcticcodex dataset export out/my-dataset --format dpo -o prefs.jsonl --dpo-margin 0.2
      arcticcodex dataset export out/my-dataset --format parquet --rows dpo -o prefs.parquet
      arcticcodex dataset export out/my-dataset --format messages --with-evidence -o rag.jsonl
      arcticcodex dataset export out/my-dataset --format raft --distractors 4 -o raft.jsonl
      arcticcodex dataset export out/my-dataset --format messages --split validation -o eval.jsonl
    """
    suffix = {"fn": ".fn", "parquet": ".parquet"}.get(export_format, ".jsonl")
    named = "" if split == "train" else f"-{split}"
    target = out or directory / f"export-{export_format}{named}{suffix}"
    from ..distill.evidence import WorkspaceEvidence  # opens the vault: only for --with-evidence and raft

    if not no_trainer_configs:
        # a registry that cannot take the entry is refused before anything is written
        check_dataset_info(target, export_format, parquet_rows=parquet_rows)
    raft = None
    with ExitStack() as stack:
        found = (
            stack.enter_context(WorkspaceEvidence(state.workspace(), directory))
            if with_evidence or export_format == "raft"
            else None
        )
        evidence = found if with_evidence else None
        if found is not None and export_format == "raft":
            raft = RaftExamples(found, VaultPassages(found.vault), distractors=distractors, system_prompt=system_prompt)
        rows = export_dataset(
            directory,
            target,
            export_format,
            dpo_margin=dpo_margin,
            parquet_rows=parquet_rows,
            keyring=_keyring(state, key_name, public_key),
            allow_untrusted=allow_untrusted,
            workers=workers,
            view=TrainingView(evidence_texts=evidence, system_prompt=system_prompt),
            split=split,
            raft=raft,
        )
    click.echo(f"Wrote {rows} {export_format} rows{'' if split == 'train' else f' ({split} split)'} to {target}")
    if raft is not None and raft.left_out:
        click.echo(f"{raft.left_out} pairs without evidence were left out: they have nothing to cite.", err=True)
    if not no_trainer_configs:
        for written in write_trainer_configs(target, export_format, parquet_rows=parquet_rows):
            click.echo(f"Wrote {written}")
    if rows == 0 and (export_format == "dpo" or (export_format == "parquet" and parquet_rows == "dpo")):
        click.echo(f"0 rows: {explain_no_preferences(directory, dpo_margin, split)}.", err=True)


@dataset.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", "repo_id", required=True, metavar="ORG/NAME", help="The Hub dataset repository to publish to.")
@click.option("--private", is_flag=True, help="Create the repository private (an existing one keeps its visibility).")
@key_options
@click.option(
    "--allow-untrusted", is_flag=True, help="Publish an intact dataset even if its signer is not a key you trust."
)
@workers_option
@pass_state
def push(
    state: CliState,
    directory: Path,
    repo_id: str,
    private: bool,
    key_name: str | None,
    public_key: Path | None,
    allow_untrusted: bool,
    workers: int,
) -> None:
    """Publish the dataset in DIRECTORY to the Hugging Face Hub as the dataset repository ORG/NAME.

    The dataset is verified first, as `dataset export` does (and takes the same --key, --public-key
    and --allow-untrusted): one that is not intact, or whose signer you do not trust, is not sent.
    Only its signed files go up (manifest, records, card, public key), in one commit; anyone can check
    the download with `arcticcodex dataset verify`.  The token is read from HF_TOKEN (never an option,
    never printed) and the Hub's address from HF_ENDPOINT (default https://huggingface.co).

    \b
    Example:
      export HF_TOKEN=hf_...
      arcticcodex dataset push out/my-dataset --repo my-org/my-dataset
      arcticcodex dataset push out/my-dataset --repo my-org/my-dataset --private
    """
    from ..dataset.hub import push_dataset  # huggingface_hub loads only for a push

    result = push_dataset(
        directory,
        repo_id,
        private=private,
        keyring=_keyring(state, key_name, public_key),
        allow_untrusted=allow_untrusted,
        workers=workers,
    )
    report = result.report
    click.echo(
        f"Published {report.records} records"
        + (f" + {report.validation} for validation" if report.validation else "")
        + f", {report.rejected} rejected ({len(result.files)} files, signer {report.key_id[:16]}…"
        + f"{'' if report.trusted else ', NOT trusted'}) to {result.url}"
        + (" (private)" if result.private else "")
    )
    click.echo(f"commit {result.commit_url}")


@dataset.command("import-conversations")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The dataset folder to write.")
@click.option("--conversation", "conversation_ids", multiple=True, metavar="ID", help="Only these (repeatable).")
@click.option("--threshold", type=float, default=0.8, show_default=True, help="Accept answers scored at least this.")
@click.option(
    "--max-rounds",
    type=int,
    default=1,
    show_default=True,
    help="1 judges each answer as it was given; more lets the teachers rewrite weak ones.",
)
@click.option("--teachers", "teacher_names", metavar="A,B", help="Use only these configured teachers.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as one JSON object.")
@click.pass_context
def import_conversations(
    ctx: click.Context,
    out: Path,
    conversation_ids: tuple[str, ...],
    threshold: float,
    max_rounds: int,
    teacher_names: str | None,
    as_json: bool,
) -> None:
    """Turn the vault's conversations into a signed dataset: each user turn with the answer it got.

    Each answer is judged against the chunks it cited (evidence is retrieved for answers that cited
    nothing); accepted ones go to train.jsonl, the rest to rejected.jsonl.  A journaled run like
    `arcticcodex distill --from-conversations`, so `arcticcodex distill --resume RUN` finishes it.

    \b
    Example:
      arcticcodex vault import chats/export.jsonl
      arcticcodex dataset import-conversations --out datasets/chats
    """
    from .distill import distill

    ctx.invoke(
        distill,
        from_conversations=True,
        conversation_ids=conversation_ids,
        out=out,
        threshold=threshold,
        max_rounds=max_rounds,
        teacher_names=teacher_names,
        as_json=as_json,
    )

"""Hand-made signed datasets for the Studio's dataset tests: known records, known overlaps.

Each dataset is written by :class:`~arcticcodex.dataset.DatasetWriter` and recorded as a finished run
of the workspace's journal, so the Studio lists it as a distillation's dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from starlette.applications import Starlette

from arcticcodex.dataset import DatasetWriter
from arcticcodex.dataset.record import PairSource, TrainingPair, pair_id_for
from arcticcodex.dataset.split import PlannedSplit
from arcticcodex.distill.journal import RunJournal
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.signing import Signer
from arcticcodex.provenance.trust import TrustedKeys
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace

__all__ = ["SCRIPT", "Datasets", "make_pair", "otter_datasets", "write_dataset"]

SCRIPT = "<script>alert('owned')</script>"
OTTER_TOPICS = ["swim", "eat", "sleep", "play"]


def make_pair(
    instruction: str,
    completion: str,
    quality: str = "0.9",
    *,
    accepted: bool = True,
    feedback: str = "grounded",
    source: str = "prompts",
) -> TrainingPair:
    return TrainingPair(
        id=pair_id_for(instruction, completion),
        index=0,
        instruction=instruction,
        completion=completion,
        quality=Decimal(quality),
        signer_id="teacher",
        created_at="2026-11-25T12:00:00Z",
        source=PairSource(source, "prompts.jsonl:1"),  # type: ignore[arg-type]
        accepted=accepted,
        feedback=feedback,
    )


def write_dataset(
    workspace: Workspace, out: Path, signer: Signer, pairs: Iterable[TrainingPair], held_out: Iterable[str] = ()
) -> str:
    """Write ``pairs`` to ``out`` (those whose instruction is in ``held_out`` to validation); return the run id."""
    pairs = list(pairs)
    held = {pair.id for pair in pairs if pair.instruction in set(held_out)}
    with DatasetWriter(out, signer, split=PlannedSplit(held)) as writer:
        for pair in pairs:
            writer.add(pair)
    counts = {
        "record_count": writer.accepted_count - writer.validation_count,
        "validation_count": writer.validation_count,
        "rejected_count": writer.rejected_count,
    }
    with RunJournal(workspace) as journal:
        run = journal.create_run({}, str(out), [])
        journal.set_status(run.id, "complete", written=counts)
    return run.id


class Datasets:
    """A workspace with datasets: ``a`` and ``b`` (trusted, a known overlap), ``stranger`` (untrusted)."""

    def __init__(self, root: Path, a: str, b: str, stranger: str, folders: dict[str, Path]) -> None:
        self.root, self.a, self.b, self.stranger, self.folders = root, a, b, stranger, folders

    def app(self) -> Starlette:
        return create_app(Workspace.open(self.root))


def _a_pairs() -> list[TrainingPair]:
    pairs = [make_pair(f"How do otters {topic}?", f"Otters {topic} in rivers.", "0.95") for topic in OTTER_TOPICS]
    pairs += [make_pair(f"Where do herons nest {n}?", f"Herons nest in reeds, case {n}.", "0.7") for n in range(3)]
    pairs.append(make_pair(f"Is this hostile? {SCRIPT}", f"Yes: {SCRIPT}", "0.85", source="curriculum"))
    pairs += [
        make_pair("Do otters fly?", "Otters fly south.", "0.3", accepted=False, feedback="below the threshold"),
        make_pair(
            "Do otters bark?",
            "Otters bark loudly.",
            "0.6",
            accepted=False,
            feedback="rejected in human review: otters do not bark",
        ),
        make_pair(
            "What is my email?",
            "It is [redacted].",
            "0.9",
            accepted=False,
            feedback="blocked by the sensitive-data gate: email in completion",
            source="conversation",
        ),
    ]
    return pairs


def otter_datasets(base: Path) -> Datasets:
    """Three datasets in a new workspace under ``base``; the caller points ARCTICCODEX_CONFIG_DIR somewhere
    of its own first (the trusted key is recorded there)."""
    workspace, _ = Workspace.init(base / "ws")
    signer, stranger = Ed25519Signer.generate(), Ed25519Signer.generate()
    TrustedKeys.for_user().trust_key(signer.verifier(), name="alice", origin="the test")
    folders = {"a": base / "a", "b": base / "b", "stranger": base / "stranger"}
    a = write_dataset(workspace, folders["a"], signer, _a_pairs(), held_out=["How do otters play?"])
    b_pairs = [
        make_pair("HOW do otters   swim?", "otters swim in RIVERS.", "0.9"),  # the same pair, normalized
        make_pair("How do otters eat?", "Otters eat in rivers.", "0.8"),  # the same pair exactly
        make_pair("How do otters sleep?", "Otters sleep floating on their backs.", "0.9"),  # another answer
        make_pair("What do beavers build?", "Dams.", "0.55"),
        make_pair("Why is the lake cold?", "It is deep.", "0.4", accepted=False, feedback="below the threshold"),
    ]
    b = write_dataset(workspace, folders["b"], signer, b_pairs)
    other = write_dataset(workspace, folders["stranger"], stranger, [make_pair("Who signed this?", "A stranger.")])
    return Datasets(workspace.root, a, b, other, folders)

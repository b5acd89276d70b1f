"""What ``studio.py`` measures the Studio's workbench pages on: signed datasets and a reviewed run, at scale.

* :func:`write_dataset` — ``pairs`` signed pairs with varied, searchable texts (about a tenth of them
  rejected), by the real :class:`~arcticcodex.dataset.DatasetWriter` with the workspace's own key, and
  recorded in the run journal as a published run's dataset, so the Studio lists and verifies it as it
  would one ``distill`` wrote.  Two of them share ``shared`` pairs, for the comparison page.
* :func:`reviewed_run` — a run made with ``--review`` whose ``pending`` accepted pairs all await a
  person: a real reviewed run of two prompts is distilled first (offline judge), and its pair, with
  its evidence, revisions and scores, is the template of every pending pair (each with its own
  instruction), written through the journal's own calls.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from arcticcodex.dataset import DatasetWriter
from arcticcodex.dataset.record import TrainingPair, pair_id_for
from arcticcodex.distill.journal import RunJournal, TaskOutcome
from arcticcodex.distill.tasks import Task
from arcticcodex.provenance import KeyStore
from arcticcodex.workspace import Workspace
from child_runs import run_cli
from dataset import sample_pair  # benchmarks/dataset.py

TOPICS = "otter lake river fish crab heron salmon trout beaver reed stone moss fern alder willow pike eel newt".split()
WORKERS = 2


def varied_pairs(count: int, seed: int, *, shared: int = 0) -> Iterator[TrainingPair]:
    """``count`` pairs; the first ``shared`` are the same for every seed (the overlap of two datasets)."""
    template = sample_pair(6, 10)
    for number in range(count):
        rng = random.Random(number if number < shared else seed * 10_000_019 + number)
        words = " ".join(rng.choice(TOPICS) for _ in range(6))
        tag = "shared" if number < shared else f"s{seed}"
        instruction = f"Question {tag}-{number}: what about the {words}? {template.instruction}"
        completion = f"The {words} answer {number}. {template.completion}"
        accepted = rng.random() > 0.1
        quality = Decimal(str(round(rng.uniform(0.8, 1.0) if accepted else rng.uniform(0.2, 0.7), 3)))
        feedback = "accepted" if accepted else ("rejected in human review: vague" if number % 3 else "below threshold")
        yield replace(
            template,
            instruction=instruction,
            completion=completion,
            quality=quality,
            accepted=accepted,
            feedback=feedback,
            id=pair_id_for(instruction, completion, template.evidence),
        )


def write_dataset(workspace: Workspace, folder: Path, pairs: int, seed: int, *, shared: int = 0) -> str:
    """Sign ``pairs`` pairs into ``folder`` with the workspace's ``dataset`` key; the run id that lists it."""
    signer = KeyStore(workspace.keys_dir).signer("dataset")
    with DatasetWriter(folder, signer) as writer:
        writer.add_many(varied_pairs(pairs, seed, shared=shared), workers=WORKERS)
    manifest = json.loads((folder / "manifest.json").read_text())
    counts = {name: manifest.get(name, 0) for name in ("record_count", "validation_count", "rejected_count")}
    with RunJournal(workspace) as journal:
        run = journal.create_run({}, str(folder), [])
        journal.set_status(run.id, "complete", written=counts)
    return run.id


def reviewed_run(workspace: Workspace, scratch: Path, pending: int) -> str:
    """A reviewed run with ``pending`` pairs awaiting a person (see the module's docstring); its id."""
    prompts = scratch / "review-prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"instruction": f"How deep is lake {n}?", "evidence": f"Lake {n} is {n + 7} metres deep."})
            + "\n"
            for n in range(2)
        )
    )
    run_cli(
        scratch,
        "-w",
        str(workspace.root),
        "distill",
        "--prompts",
        str(prompts),
        "--review",
        "--out",
        str(scratch / "reviewed-template"),
        "--json",
        expected=(4,),
    )  # fmt: skip: 4, pairs await review
    with RunJournal(workspace) as journal:
        template_run = next(run for run in journal.runs(limit=5) if run.settings.get("human_review"))
        _, _, pair = journal.awaiting_review(template_run.id)[0]
        run = journal.create_run(template_run.settings, str(scratch / "reviewed"), _tasks(pending))
        for position in range(pending):
            journal.finish_task(run.id, position, TaskOutcome("accepted", pair=_numbered(pair, position)), 0.0)
        journal.set_status(run.id, "stopped", f"{pending} accepted pair(s) await review")
    return run.id


def _tasks(count: int) -> Iterator[Task]:
    for n in range(count):
        yield Task(f"lake-{n}", {"instruction": f"How deep is lake {n}?", "evidence": f"Lake {n} is deep."})


def _numbered(pair: dict[str, Any], number: int) -> dict[str, Any]:
    topic = TOPICS[number % len(TOPICS)]
    return {**pair, "instruction": f"How deep is the {topic} lake number {number}?"}

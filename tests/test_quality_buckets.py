"""One quality-bucket definition: the dataset card, ``dataset stats --json`` and the Studio's histogram agree.

The same accepted qualities, edges included (0.5, 0.6, … sit in the bucket they open), must give the
same count per bucket in all three places a user reads them.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from arcticcodex.dataset import DatasetWriter
from arcticcodex.dataset.quality import QUALITY_BUCKETS, bucket_counts, quality_bucket
from arcticcodex.distill.journal import RunJournal
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from test_dataset_record import make_pair
from test_studio import get

ACCEPTED = ["0.3", "0.5", "0.59", "0.6", "0.65", "0.7", "0.79", "0.8", "0.85", "0.9", "0.95", "1.0"]
EXPECTED = {"0.0-0.5": 1, "0.5-0.6": 2, "0.6-0.7": 2, "0.7-0.8": 2, "0.8-0.9": 2, "0.9-1.0": 3}


def test_the_buckets_and_their_edges() -> None:
    assert tuple(EXPECTED) == QUALITY_BUCKETS
    assert bucket_counts(float(q) for q in ACCEPTED) == EXPECTED
    assert (quality_bucket(0.0), quality_bucket(0.4999), quality_bucket(0.5), quality_bucket(1.0)) == (
        "0.0-0.5",
        "0.0-0.5",
        "0.5-0.6",
        "0.9-1.0",
    )


def test_card_stats_and_studio_count_the_same_buckets(workspace: Workspace, acx: Acx) -> None:
    out = workspace.root / "datasets" / "buckets"
    with DatasetWriter(out, Ed25519Signer.generate()) as writer:
        for number, quality in enumerate(ACCEPTED):
            writer.add(make_pair(instruction=f"Question {number}?", quality=Decimal(quality)))
        writer.add(make_pair(instruction="Rejected?", quality=Decimal("0.2"), accepted=False))  # not in the charts
    with RunJournal(workspace) as journal:  # as a distill run records the dataset it published
        run = journal.create_run({}, str(out), [])
        manifest = json.loads((out / "manifest.json").read_text())
        journal.set_status(run.id, "complete", written=manifest)

    card = (out / "README.md").read_text()
    section = card.split("## Quality of the accepted pairs", 1)[1].split("##", 1)[0]
    in_card = {label: int(count) for label, count in re.findall(r"^\| (\d\.\d-\d\.\d) \| (\d+) \|", section, re.M)}
    assert in_card == {label: count for label, count in EXPECTED.items() if count}  # empty buckets are left out

    stats = json.loads(acx("-w", workspace.root, "dataset", "stats", out, "--json").stdout)
    assert stats["quality"]["accepted_histogram"] == EXPECTED

    page = get(create_app(Workspace.open(workspace.root)), f"/datasets/{run.id}?allow_untrusted=1").text
    chart = page.split('<svg id="quality-histogram"', 1)[1].split("</svg>", 1)[0]
    in_studio = {label: int(count) for label, count in re.findall(r"<title>([^<:]+): (\d+)</title>", chart)}
    assert in_studio == EXPECTED

"""The Studio's Models page and the workspace's record of training runs (issue 14, item 6).

A student trained through `arcticcodex train` is recorded (running, then complete with its metrics and
the receipt's SHA-256) and shown with its dataset (a link to the dataset's page), base, method,
held-out loss before → after, and its receipt's two verdicts in words: intact and trusted; NOT intact,
naming the file, once a weight file is altered; intact but NOT trusted once a stranger re-signed the
receipt.  Hostile folder names are shown, never run; a failed run shows its error, and a run killed
outright stays "running" until `--resume` completes the same row.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

from arcticcodex.evaluation.store import Evals
from arcticcodex.provenance import Ed25519Signer
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.studio import create_app
from arcticcodex.studio.datasets import written_datasets
from arcticcodex.training.receipt import sign_receipt
from arcticcodex.training.runs import TrainingRuns
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_studio import get
from test_studio_pages import first_hour
from tiny_student import make_base, make_dataset

FAST = ["--lora", "8,16", "--lr", "5e-3", "--batch-size", "4", "--max-length", "64"]
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def chatml_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("chatml-base"), "chatml")


@pytest.fixture
def root(tmp_path: Path, acx: Acx) -> Path:
    """A workspace made by `init` (its signing key `dataset` is trusted), with a dataset it signed."""
    acx("init", tmp_path / "ws")
    make_dataset(tmp_path / "ds", KeyStore(Workspace.open(tmp_path / "ws").keys_dir).signer("dataset"))
    return tmp_path / "ws"


def train(acx: Acx, root: Path, dataset: Path, base: Path, out: Path, *more: str, code: int = 0) -> str:
    result = acx("-w", root, "train", dataset, "--base", base, "--out", out, *more, *FAST, "--json", code=code)
    return result.output


def only_run(root: Path) -> str:
    runs = TrainingRuns(Workspace.open(root)).list()
    assert len(runs) == 1, runs
    return runs[0].id


def test_a_trained_model_is_recorded_and_shown_with_its_dataset_losses_and_both_verdicts(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx, chatml_base: Path
) -> None:
    root, _ = first_hour(acx, tmp_path, server)  # a dataset the Studio lists, written by distill runs
    dataset = tmp_path / "lakes-data"
    out = tmp_path / "lake-student"
    train(acx, root, dataset, chatml_base, out, "--max-steps", "3")

    run = TrainingRuns(Workspace.open(root)).get(only_run(root))
    assert run.status == "complete" and run.out == str(out.resolve()) and run.finished_at
    assert run.dataset_path == str(dataset.resolve()) and run.method == "sft" and run.base_model == str(chatml_base)
    assert run.dataset_merkle_root == json.loads((dataset / "manifest.json").read_text())["merkle_root"]
    assert run.receipt_sha256 == hashlib.sha256((out / "receipt.json").read_bytes()).hexdigest()
    assert run.metrics is not None
    sft = run.metrics["sft"]
    assert {"eval_loss_before", "eval_loss", "train_loss"} <= set(sft)
    assert run.settings["max_steps"] == 3

    app = create_app(Workspace.open(root))
    listing = get(app, "/models")
    assert listing.status_code == 200
    dataset_page = next(d["run_id"] for d in written_datasets(Workspace.open(root)) if d["name"] == "lakes-data")
    row = listing.text[listing.text.index(f'id="model-{run.id}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="ok run-status">complete' in row
    assert '<span class="ok receipt-verdict">intact, signer trusted</span>' in row
    assert f'<a href="/datasets/{dataset_page}">lakes-data</a>' in row
    assert f"sft: {sft['eval_loss_before']:.4f} → {sft['eval_loss']:.4f}" in row
    assert '<a href="/models" class="here" aria-current="page">Models</a>' in listing.text  # in the navigation

    page = get(app, f"/models/{run.id}")
    assert page.status_code == 200
    assert '<strong id="verify-status" class="ok">intact, signer trusted</strong>' in page.text
    assert '<span id="verdict-integrity">intact</span>' in page.text
    assert "signer trusted (trusted key &#39;dataset&#39;)" in page.text
    assert f'<a id="run-dataset" href="/datasets/{dataset_page}">lakes-data</a>' in page.text
    assert "No evaluations of this model yet" in page.text

    def measured(mean: float) -> dict[str, float]:
        return {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "n": 6}

    Evals(Workspace.open(root)).add(
        {
            "id": "eval-1",
            "created_at": "2026-12-04T15:00:00+00:00",
            "models": {
                "student": {
                    "spec": str(out),
                    "receipt_sha256": run.receipt_sha256,
                    "metrics": {"win_rate": measured(0.6)},
                },
                "baseline": {"spec": "<b>base</b>", "metrics": {"win_rate": measured(0.3), "token_f1": measured(0.2)}},
            },
            "dataset": {"path": str(dataset), "merkle_root": run.dataset_merkle_root},
            "judges": ["critic"],
            "questions": [{}] * 6,
        }
    )
    page = get(app, f"/models/{run.id}")
    table = page.text[page.text.index('id="eval-eval-1"') :]
    table = table[: table.index("</table>")]
    assert "<tr><td>student</td><td>–</td><td>–</td><td>–</td><td>–</td><td>0.60 [0.50, 0.70]</td></tr>" in table
    assert "<td>baseline</td><td>–</td><td>0.20 [0.10, 0.30]</td>" in table
    assert "6 held-out question(s), judged by critic" in page.text and "<svg" in page.text


def test_altered_weights_are_named_on_the_page_and_the_verdict_follows_the_files(
    root: Path, tmp_path: Path, acx: Acx, chatml_base: Path
) -> None:
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", chatml_base, out, "--max-steps", "2")
    run_id = only_run(root)
    app = create_app(Workspace.open(root))
    assert "intact, signer trusted" in get(app, f"/models/{run_id}").text
    assert "intact, signer trusted" in get(app, f"/models/{run_id}").text
    assert app.state.receipt_verdicts.checks == 1  # the second view came from the cache

    weights = out / "model" / "adapter_model.safetensors"
    kept = weights.read_bytes()
    weights.write_bytes(kept[:-8] + bytes(8))  # same size: only the content differs
    page = get(app, f"/models/{run_id}").text
    assert '<strong id="verify-status" class="bad">NOT intact</strong>' in page
    assert '<span id="verdict-integrity">NOT intact: 1 problem</span>' in page
    assert (
        "<li>model/adapter_model.safetensors: changed since training (its SHA-256 is not the receipt&#39;s)</li>"
        in page
    )
    assert '<span class="bad receipt-verdict">NOT intact</span>' in get(app, "/models").text

    weights.write_bytes(kept)
    (out / "model" / "extra.safetensors").write_bytes(b"not trained here")
    page = get(app, f"/models/{run_id}").text
    assert "<li>model/extra.safetensors: a weight file the receipt does not name" in page
    (out / "model" / "extra.safetensors").unlink()
    assert "intact, signer trusted" in get(app, f"/models/{run_id}").text

    other = make_dataset(tmp_path / "ds-again", KeyStore(Workspace.open(root).keys_dir).signer("dataset"), copies=2)
    manifest = (tmp_path / "ds" / "manifest.json").read_bytes()
    (tmp_path / "ds" / "manifest.json").write_bytes((other / "manifest.json").read_bytes())  # a different dataset
    page = get(app, f"/models/{run_id}").text
    assert "is not the dataset this model was trained on" in page and "NOT intact" in page
    (tmp_path / "ds" / "manifest.json").write_bytes(manifest)


def test_a_receipt_re_signed_by_a_stranger_is_intact_but_not_trusted(
    root: Path, tmp_path: Path, acx: Acx, chatml_base: Path
) -> None:
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", chatml_base, out, "--max-steps", "2")
    body = json.loads((out / "receipt.json").read_text())["receipt"]
    stranger = Ed25519Signer.generate()
    sign_receipt(out, body, stranger)  # same model, same data: only the signer differs

    app = create_app(Workspace.open(root))
    page = get(app, f"/models/{only_run(root)}").text
    assert '<strong id="verify-status" class="warn">intact, signer NOT trusted</strong>' in page
    assert '<span id="verdict-trust">signer NOT trusted</span>' in page
    assert f"signing key {stranger.key_id}" in page and "arcticcodex keys trust FILE" in page
    assert "receipt.json is not the one this run wrote (it was replaced after training)" in page
    assert '<span class="warn receipt-verdict">intact, signer NOT trusted</span>' in get(app, "/models").text


def test_hostile_folder_names_are_shown_never_run(root: Path, tmp_path: Path, acx: Acx, chatml_base: Path) -> None:
    base = make_base(tmp_path / HOSTILE, "chatml")
    out = tmp_path / f"student {HOSTILE}"
    train(acx, root, tmp_path / "ds", base, out, "--max-steps", "1")
    app = create_app(Workspace.open(root))
    for path in ("/models", f"/models/{only_run(root)}"):
        text = get(app, path).text
        assert "<img" not in text, path
        assert html.escape(f"student {HOSTILE}") in text, path


def test_a_run_that_fails_after_it_started_is_recorded_with_its_error(root: Path, tmp_path: Path, acx: Acx) -> None:
    out = tmp_path / "student"
    missing = tmp_path / "no-such-model"
    failed = train(acx, root, tmp_path / "ds", missing, out, code=1)
    assert f"--base {missing} is not a folder holding a model" in failed
    run = TrainingRuns(Workspace.open(root)).get(only_run(root))
    assert run.status == "failed" and f"base {missing} is not a folder holding a model" in run.error
    page = get(create_app(Workspace.open(root)), f"/models/{run.id}").text
    assert '<strong id="run-status" class="bad">failed</strong>' in page
    assert "is not a folder holding a model" in page and "No receipt yet" in page

    refused = train(acx, root, tmp_path / "ds", missing, out, code=1)  # the folder is taken: nothing recorded
    assert "is not empty" in refused
    assert TrainingRuns(Workspace.open(root)).get(run.id).error == run.error


def test_an_unknown_training_run_is_a_404_that_says_where_they_are_listed(root: Path) -> None:
    response = get(create_app(Workspace.open(root)), "/models/train-nothing")
    assert response.status_code == 404
    assert "no training run &#39;train-nothing&#39; in this workspace" in response.text


@pytest.mark.slow
def test_a_run_killed_outright_shows_as_running_until_resumed(root: Path, tmp_path: Path, chatml_base: Path) -> None:
    out = tmp_path / "student"
    args = [
        sys.executable, "-m", "arcticcodex.cli", "-w", str(root), "train", str(tmp_path / "ds"),
        "--base", str(chatml_base), "--out", str(out), "--max-steps", "200", "--save-steps", "10", *FAST, "--json",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a freeze guard, not a timing assertion
        while not list((out / "checkpoints" / "sft").glob("checkpoint-10")) and time.monotonic() < deadline:
            assert process.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    run_id = only_run(root)
    assert TrainingRuns(Workspace.open(root)).get(run_id).status == "running"
    app = create_app(Workspace.open(root))
    page = get(app, f"/models/{run_id}").text
    assert '<strong id="run-status" class="warn">running</strong>' in page and "No receipt yet" in page
    assert '<td class="warn run-status">running' in get(app, "/models").text

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, check=False, env=dict(os.environ))
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert only_run(root) == run_id  # the same row, now complete
    assert TrainingRuns(Workspace.open(root)).get(run_id).status == "complete"
    assert "intact, signer trusted" in get(app, f"/models/{run_id}").text


def test_models_list_shows_each_run_with_its_receipt_verdicts(
    root: Path, tmp_path: Path, acx: Acx, chatml_base: Path
) -> None:
    assert "no training runs yet" in acx("-w", root, "models", "list").stdout
    out = tmp_path / "student"
    train(acx, root, tmp_path / "ds", chatml_base, out, "--max-steps", "2")
    listed = json.loads(acx("-w", root, "models", "list", "--json").stdout)
    assert [(row["status"], row["out"], row["receipt"]["verdict"]) for row in listed] == [
        ("complete", str(out.resolve()), "intact, signer trusted")
    ]
    assert listed[0]["receipt"]["trusted_as"] == "trusted key 'dataset'"
    weights = out / "model" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    table = acx("-w", root, "models", "list").stdout
    assert "complete" in table and "NOT intact" in table
    assert "model/adapter_model.safetensors: changed since training" in table
    listed = json.loads(acx("-w", root, "models", "list", "--json").stdout)
    assert listed[0]["receipt"]["ok"] is False

"""`arcticcodex train … --on gpu` (issue 14, item 2) end to end against the fake Vast API.

The fake instance runs a real SSH server on 127.0.0.1 whose ``exec`` requests run on this machine, in the
instance's own folder: the dataset, the tiny base model and a wheel of this checkout are copied there over SSH,
the wheel is installed there (``--target``, no index: nothing is downloaded) and the same `arcticcodex train`
runs there, its log streamed back; model/ and the receipt come back, are checked against the dataset, the base
and the settings, are re-signed with the workspace key (which never goes to the instance), and the instance is
destroyed.  And the failure paths: the run fails on the instance, the budget refuses the rental, the
connection drops mid-run, what comes back does not match its receipt.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("trl")

from arcticcodex.errors import RemoteTrainingError, UserError
from arcticcodex.gpu import GpuBudget, VastInstanceManager
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.provenance.trust import KeyRing
from arcticcodex.training import TrainSettings, train_model
from arcticcodex.training.remote import DEFAULT_TRAIN_IMAGE, GpuTraining, accept_remote_result, train_on_gpu
from arcticcodex.workspace import Workspace
from conftest import VAST_KEY, Acx
from fakes.vast_server import FakeVastServer
from tiny_student import make_base, make_dataset

FAST = ["--lora", "8,16", "--lr", "5e-3", "--batch-size", "4", "--max-length", "64"]


@pytest.fixture
def vast(tmp_path: Path) -> Iterator[FakeVastServer]:
    """The fake Vast, whose instances run SSH commands on this machine under ``containers/ID``."""
    with FakeVastServer(api_key=VAST_KEY, boot_seconds=(0.1, 0.3), container_root=tmp_path / "containers") as server:
        yield server


@pytest.fixture
def root(tmp_path: Path, acx: Acx, vast: FakeVastServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace made by `init`, pointed at the fake Vast, with a dataset it signed (in ``ds``).

    The instance's Python is this one, with the shipped wheel installed into the run folder's ``site`` (no
    index, no dependencies: they are this environment's) and put first on its path.
    """
    monkeypatch.setenv("VAST_API_KEY", VAST_KEY)
    monkeypatch.setenv("VAST_URL", vast.url)
    acx("init", tmp_path / "ws")
    python = tmp_path / "python-on-the-instance"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="$PWD/site" exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    with (tmp_path / "ws" / "arcticcodex.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            "\n[gpu]\npoll_interval_s = 0.05\nboot_timeout_s = 10\nvllm_timeout_s = 10\n"
            f'train_python = "{python}"\ntrain_pip_args = ["--no-deps", "--no-index", "--target", "site"]\n'
        )
    make_dataset(tmp_path / "ds", KeyStore(Workspace.open(tmp_path / "ws").keys_dir).signer("dataset"))
    return tmp_path / "ws"


@pytest.fixture(scope="module")
def chatml_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("chatml-base"), "chatml")


@pytest.mark.slow
def test_a_run_on_a_gpu_trains_there_streams_its_log_and_brings_back_a_verified_receipt(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx, vast: FakeVastServer
) -> None:
    out = tmp_path / "student"
    args: list[str | Path] = ["--out", out, "--on", "gpu", "--budget-usd", "5", "--max-steps", "3", *FAST]
    result = acx("-w", root, "train", tmp_path / "ds", "--base", chatml_base, *args)

    assert "renting offer" in result.stderr and "copying the dataset" in result.stderr
    (rental,) = [r.body for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
    assert rental["image"] == DEFAULT_TRAIN_IMAGE and "vllm" not in rental["onstart"]  # a PyTorch image, no server
    assert "sleep 7200" in rental["onstart"]  # the TTL (--hours, 2 by default) armed inside the instance
    assert "sft: train loss" in result.stderr  # the remote command's own output, streamed back as it ran
    assert f"model: {out / 'model'}" in result.stdout
    (instance_id,) = vast.destroyed  # rented once, and destroyed
    assert vast.instances == {}
    remote_run = tmp_path / "containers" / str(instance_id) / "arcticcodex-train"
    assert (remote_run / "site" / "arcticcodex" / "training" / "remote.py").is_file()  # the wheel, installed there
    assert "sft: train loss" in (remote_run / "train.log").read_text()

    checked = acx("-w", root, "receipt", "verify", out, "--dataset", tmp_path / "ds", "--base", chatml_base)
    assert "OK: intact, signer trusted (trusted key 'dataset')" in checked.stdout  # re-signed here
    receipt = json.loads((out / "receipt.json").read_text())
    remote = json.loads((out / "remote-receipt.json").read_text())
    local_key = KeyStore(Workspace.open(root).keys_dir).signer("dataset").key_id
    assert receipt["signature"]["key_id"] == local_key != remote["signature"]["key_id"]  # the key stayed here
    assert receipt["receipt"]["trained_on"]["instance_id"] == instance_id
    assert receipt["receipt"]["trained_on"]["remote_key_id"] == remote["signature"]["key_id"]
    assert receipt["receipt"]["config"]["base"] == str(chatml_base)
    assert receipt["receipt"]["config"]["max_steps"] == 3 and receipt["receipt"]["config"]["lora"] == [8, 16]
    private = KeyStore(Workspace.open(root).keys_dir).private_key_path("dataset").read_bytes()
    on_the_instance = [p for p in (tmp_path / "containers" / str(instance_id)).rglob("*") if p.is_file()]
    assert on_the_instance and not [p for p in on_the_instance if private in p.read_bytes()]  # never shipped


@pytest.mark.slow
def test_training_that_fails_on_the_instance_names_the_remote_log_and_the_instance_is_destroyed(
    root: Path, tmp_path: Path, acx: Acx, vast: FakeVastServer
) -> None:
    broken = tmp_path / "broken-base"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    out = tmp_path / "student"
    args: list[str | Path] = ["--out", out, "--on", "gpu", "--image", "example/torch:2", "--max-steps", "2"]
    failed = acx("-w", root, "train", tmp_path / "ds", "--base", broken, *args, code=1)
    (rental,) = [r.body for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
    assert rental["image"] == "example/torch:2"
    (instance_id,) = vast.destroyed
    assert vast.instances == {}
    assert f"training failed on instance {instance_id} (exit status 1); the remote log's last lines:" in failed.stderr
    (message,) = [line for line in failed.stderr.splitlines() if line.startswith("Error: training failed")]
    assert "ValueError: Couldn't instantiate the backend tokenizer" in message  # the remote's own last words
    assert "the instance is destroyed and nothing was kept in" in failed.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_budget_too_small_refuses_the_rental_and_nothing_is_rented(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx, vast: FakeVastServer
) -> None:
    out = tmp_path / "student"
    args: list[str | Path] = ["--out", out, "--on", "gpu", "--budget-usd", "0.01", "--max-steps", "2"]
    refused = acx("-w", root, "train", tmp_path / "ds", "--base", chatml_base, *args, code=1)
    assert "but the budget of run 'train-" in refused.stderr and "is $0.01" in refused.stderr
    assert "raise the budget" in refused.stderr
    assert not [r for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
    assert vast.instances == {} and vast.destroyed == set()
    assert not out.exists()


def test_gpu_options_without_on_gpu_are_refused(root: Path, tmp_path: Path, chatml_base: Path, acx: Acx) -> None:
    args: list[str | Path] = ["--base", chatml_base, "--out", tmp_path / "student", "--budget-usd", "3"]
    refused = acx("-w", root, "train", tmp_path / "ds", *args, code=2)
    assert "--image, --budget-usd, --gpu and --max-price go with --on gpu" in refused.stderr
    resumed = acx("-w", root, "train", tmp_path / "ds", *args, "--on", "gpu", "--resume", code=2)
    assert "--resume continues a run on this machine; a run with --on gpu starts afresh" in resumed.stderr
    assert not (tmp_path / "student").exists()


def test_no_matching_offer_or_settings_the_command_cannot_give_rent_nothing(
    root: Path, tmp_path: Path, chatml_base: Path, acx: Acx, vast: FakeVastServer
) -> None:
    args: list[str | Path] = ["--base", chatml_base, "--out", tmp_path / "student", "--on", "gpu"]
    refused = acx("-w", root, "train", tmp_path / "ds", *args, "--max-price", "0.001", code=1)
    assert "no GPU offer matches the search; allow more GPU models, or raise --max-price" in refused.stderr

    workspace = Workspace.open(root)
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    settings = TrainSettings(base=str(chatml_base), dpo_beta=0.3)  # no option gives it on the instance
    with VastInstanceManager(workspace) as manager, pytest.raises(UserError) as caught:
        train_on_gpu(workspace, tmp_path / "ds", tmp_path / "student", settings, keyring=keyring, manager=manager,
                     plan=GpuTraining())  # fmt: skip
    assert "a run on a GPU takes the settings the command line can give" in str(caught.value)
    assert not [r for r in vast.requests if r.method == "PUT" and r.path.startswith("/api/v0/asks/")]
    assert vast.instances == {} and not (tmp_path / "student").exists()


@pytest.mark.slow
def test_a_connection_that_drops_mid_run_fails_the_run_and_destroys_the_instance(
    root: Path, tmp_path: Path, chatml_base: Path, vast: FakeVastServer
) -> None:
    workspace = Workspace.open(root)
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    settings = TrainSettings(base=str(chatml_base), lora=(8, 16), max_steps=40, batch_size=4, max_length=64)
    seen: list[tuple[str, int, int]] = []

    def progress(stage: str, step: int, total: int) -> None:
        seen.append((stage, step, total))
        if len(seen) == 1:  # the run is provably under way on the instance: now the link goes
            (instance_id,) = vast.instances
            assert vast.drop_ssh_connections(instance_id) >= 1

    gpu = workspace.config.gpu
    plan = GpuTraining(python=gpu.train_python, pip_args=gpu.train_pip_args)
    with (
        VastInstanceManager(workspace, budget=GpuBudget(None, 5.0)) as manager,
        pytest.raises(RemoteTrainingError) as caught,
    ):
        train_on_gpu(
            workspace, tmp_path / "ds", tmp_path / "student", settings,
            keyring=keyring, manager=manager, plan=plan, progress=progress,
        )  # fmt: skip
    (instance_id,) = vast.destroyed
    assert seen and seen[0][0] == "sft"  # progress came back line by line before the drop
    assert f"the SSH connection dropped while instance {instance_id} was training" in str(caught.value)
    assert "the instance is destroyed (it bills nothing more)" in str(caught.value)
    assert vast.instances == {}
    assert not (tmp_path / "student").exists()


def test_a_result_that_does_not_match_its_receipt_or_the_settings_is_refused_and_named(
    root: Path, tmp_path: Path, chatml_base: Path
) -> None:
    """What comes back from a rented machine is checked, never taken on its word (here: trained locally)."""
    workspace = Workspace.open(root)
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    settings = TrainSettings(base=str(chatml_base), lora=(8, 16), max_steps=2, batch_size=4, max_length=64)
    remote = tmp_path / "remote-out"
    train_model(workspace, tmp_path / "ds", remote, settings, keyring=keyring)
    signer = KeyStore(workspace.keys_dir).signer("dataset")
    where = {"instance_id": 7}
    staging = tmp_path / "staging"

    def fresh_staging() -> Path:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(remote / "model", staging / "model")
        shutil.copy(remote / "receipt.json", staging / "receipt.json")
        return staging

    weights = fresh_staging() / "model" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    out = tmp_path / "student"
    with pytest.raises(RemoteTrainingError) as caught:
        accept_remote_result(
            staging, out, tmp_path / "ds", settings, keyring=keyring, signer=signer, where=where, base=chatml_base
        )
    message = str(caught.value)
    assert "the model trained on instance 7 does not match its receipt, so nothing was kept in" in message
    assert "model/adapter_model.safetensors: changed since training" in message
    assert not out.exists()

    other = make_dataset(tmp_path / "other", signer, copies=2)
    with pytest.raises(RemoteTrainingError) as caught:
        accept_remote_result(
            fresh_staging(), out, other, settings, keyring=keyring, signer=signer, where=where, base=chatml_base
        )
    assert f"{other}: is not the dataset this model was trained on" in str(caught.value)

    asked = TrainSettings(base=str(chatml_base), lora=(8, 16), max_steps=2, batch_size=4, max_length=64, seed=3)
    with pytest.raises(RemoteTrainingError) as caught:
        accept_remote_result(
            fresh_staging(), out, tmp_path / "ds", asked, keyring=keyring, signer=signer, where=where, base=chatml_base
        )
    assert "names other settings than were asked" in str(caught.value) and "seed: asked 3, trained with 0" in str(
        caught.value
    )
    assert not out.exists()

    receipt = accept_remote_result(
        fresh_staging(), out, tmp_path / "ds", settings, keyring=keyring, signer=signer, where=where, base=chatml_base
    )
    assert receipt["receipt"]["trained_on"]["instance_id"] == 7 and (out / "remote-receipt.json").is_file()


@pytest.mark.slow
def test_ctrl_c_mid_run_destroys_the_instance(
    root: Path, tmp_path: Path, chatml_base: Path, vast: FakeVastServer
) -> None:
    workspace = Workspace.open(root)
    keyring = KeyRing.for_user(KeyStore(workspace.keys_dir))
    settings = TrainSettings(base=str(chatml_base), lora=(8, 16), max_steps=40, batch_size=4, max_length=64)

    def progress(stage: str, step: int, total: int) -> None:
        raise KeyboardInterrupt  # the user presses Ctrl-C while the instance trains

    gpu = workspace.config.gpu
    plan = GpuTraining(python=gpu.train_python, pip_args=gpu.train_pip_args)
    with VastInstanceManager(workspace, budget=GpuBudget(None, 5.0)) as manager, pytest.raises(KeyboardInterrupt):
        train_on_gpu(
            workspace, tmp_path / "ds", tmp_path / "student", settings,
            keyring=keyring, manager=manager, plan=plan, progress=progress,
        )  # fmt: skip
    (instance_id,) = vast.destroyed
    assert vast.instances == {}
    (record,) = VastInstanceManager(workspace).instances(include_destroyed=True)
    assert record.instance_id == instance_id and record.status == "destroyed"
    assert record.reason == "training failed: KeyboardInterrupt"
    assert not (tmp_path / "student").exists()

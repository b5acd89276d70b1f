"""``arcticcodex train … --on gpu``: the same training run on a rented GPU, its result checked and signed here.

The run, in order, each step before anything costly: the dataset is verified here (the same trust rule as a
local run), the signing key is loaded, ``out`` is claimed (new or empty), the offer is chosen; then the
instance is rented through :class:`~arcticcodex.gpu.VastInstanceManager` — its budget check, its row written
before the rental, its TTL armed inside the instance, its teardown on any failure — with a PyTorch image and no
vLLM.  Over SSH (:mod:`arcticcodex.gpu.remote_shell`) go the dataset, the base model when it is a local folder,
and a wheel of the running arcticcodex (:mod:`.wheel`: the very code that runs here, installed there with the
``[train]`` extra); the instance runs the *same* entry point, ``arcticcodex train DATASET --base … --out …`` with
the same settings, in a throwaway workspace of its own; its log streams back line by line (its progress lines
drive the local progress bar), ``model/`` and ``receipt.json`` come back, and the instance is destroyed —
whatever happened: success, a failed run, a dropped connection, Ctrl-C.

**Who signs, and why.**  The workspace's private key never leaves this machine: a rented host is someone
else's computer, and a key copied there can sign anything, forever.  So the instance signs its receipt with
an *ephemeral* key made by its own ``arcticcodex init`` (and thrown away with the instance).  That signature
only shows the receipt was not altered between the remote run and here; it vouches for nothing else, and its
key is never trusted.  What this side then checks before keeping anything: the receipt is intact under the key
it carries, every file it names came back with its digest and no weight file is unaccounted for, it names
*this* dataset (Merkle root and manifest digest), *this* base model (every file's digest, when the base was
shipped from here) and exactly the settings asked for.  Any difference is an error naming it, and nothing is
kept in ``out``.  Only then is the receipt re-signed here with the workspace key, naming where it was trained
(instance, GPU, image) and the ephemeral key and digest of the remote receipt (kept as ``remote-receipt.json``).
The local signature thus attests "this workspace received these bytes and checked them against this data and
these settings" — it cannot attest that the rented host computed them honestly, which no receipt can.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..dataset.verify import require_verified
from ..errors import ConfigError, GpuError, RemoteTrainingError, UserError
from ..gpu import OfferQuery, VastInstanceManager, VllmSpec
from ..gpu.remote_shell import SSH_FAILED, RemoteShell
from ..provenance.keystore import KeyStore
from ..provenance.signing import Signer
from ..provenance.trust import KeyRing
from ..workspace import Workspace
from .receipt import RECEIPT_FILE, ReceiptReport, sign_receipt
from .settings import TrainSettings
from .trainer import Progress, TrainingResult
from .wheel import build_wheel

__all__ = ["DEFAULT_TRAIN_IMAGE", "PROGRESS_MARK", "GpuTraining", "accept_remote_result", "train_on_gpu"]

DEFAULT_TRAIN_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel"  # CUDA torch, pip and a compiler for kernels
REMOTE_DIR = "arcticcodex-train"  # in the instance's home: dataset/, base/, the wheel, out/, train.log
PROGRESS_MARK = "arcticcodex-progress"  # `arcticcodex train --progress-lines` prints "MARK STAGE STEP TOTAL"
EXIT_MARK = "arcticcodex-remote-exit"  # the remote script's last line: the run's own exit status
REMOTE_RECEIPT_FILE = "remote-receipt.json"
_NOT_COMPARED = ("base", "allow_untrusted")  # a path there, and the trust decision taken here (see _script)


@dataclass(frozen=True, slots=True)
class GpuTraining:
    """Where the run goes: which offers, which image, how long it may take (the budget's hours and the TTL),
    and the Python and pip options that install arcticcodex on the instance (``[gpu] train_python``,
    ``train_pip_args``)."""

    query: OfferQuery = field(default_factory=lambda: OfferQuery(min_vram_gb=24))
    image: str = DEFAULT_TRAIN_IMAGE
    hours: float = 2.0
    run: str = ""  # the budget group; default: a name of its own, so --budget-usd caps this rental alone
    python: str = "python3"
    pip_args: tuple[str, ...] = ()


def train_on_gpu(
    workspace: Workspace,
    dataset: str | Path,
    out: str | Path,
    settings: TrainSettings,
    *,
    keyring: KeyRing,
    manager: VastInstanceManager,
    plan: GpuTraining,
    key: str | None = None,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train ``settings.base`` on ``dataset`` on a rented GPU into ``out``; see the module docstring."""
    dataset, out = Path(dataset).resolve(), Path(out).resolve()
    say = log or (lambda line: None)
    verified = require_verified(dataset, keyring=keyring, allow_untrusted=settings.allow_untrusted)
    signer = KeyStore(workspace.keys_dir).signer(key or workspace.config.signing_key or "dataset")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"out {out} already holds files; a run on a GPU starts in a new or empty folder — choose another",
            parameters=["out"],
        )
    base = Path(settings.base).expanduser()
    base_folder = base.resolve() if base.is_dir() else None
    offers = manager.search(plan.query)
    if not offers:
        raise ConfigError(
            "no GPU offer matches the search; allow more GPU models, or raise max_price",
            parameters=["max_price"],
        )
    offer = offers[0]
    spec = VllmSpec(model=settings.base, served_model_name="training", image=plan.image, serve=False)
    with tempfile.TemporaryDirectory(prefix="arcticcodex-wheel-") as scratch:
        wheel = build_wheel(Path(scratch))  # before renting, like the script: nothing bills while they are made
        script = _script(settings, plan, wheel.name, shipped_base=base_folder is not None)
        say(f"renting offer {offer.id}: {offer.num_gpus}× {offer.gpu_name} at ${offer.dph_total:.3f}/h")
        record = manager.up(
            offer,
            spec,
            run=plan.run or f"train-{uuid.uuid4().hex[:8]}",
            teacher=None,
            hours=plan.hours,
            ttl_s=plan.hours * 3600,
        )
        instance_id = int(record.instance_id or 0)
        staging = out.parent / f".{out.name}.from-gpu-{uuid.uuid4().hex[:8]}"
        outcome = "training finished"
        try:
            shell = _shell(manager, instance_id)
            say(f"instance {instance_id} running; copying the dataset, the base and arcticcodex {__version__}")
            entries = [(dataset, "dataset"), (wheel, wheel.name)]
            if base_folder is not None:
                entries.append((base_folder, "base"))
            shell.send(entries, REMOTE_DIR)
            _run(shell, script, instance_id, out, say, progress)
            say(f"training finished on instance {instance_id}; fetching model/ and {RECEIPT_FILE}")
            shell.fetch(f"{REMOTE_DIR}/out", ["model", RECEIPT_FILE], staging)
            where = {
                "provider": "vast.ai",
                "instance_id": instance_id,
                "offer_id": offer.id,
                "gpu_name": offer.gpu_name,
                "num_gpus": offer.num_gpus,
                "image": plan.image,
            }
            receipt = accept_remote_result(
                staging, out, dataset, settings, keyring=keyring, signer=signer, where=where, base=base_folder,
                trust={"trusted_as": verified.trusted_as, "algorithm": verified.algorithm},
            )  # fmt: skip
        except BaseException as error:
            outcome = f"training failed: {type(error).__name__}"
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            _destroy(manager, instance_id, outcome)
    return TrainingResult(out, out / "model", receipt, dict(receipt["receipt"].get("metrics", {})))


def accept_remote_result(
    staging: Path,
    out: Path,
    dataset: Path,
    settings: TrainSettings,
    *,
    keyring: KeyRing,
    signer: Signer,
    where: dict[str, Any],
    base: Path | None = None,
    trust: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check what came back in ``staging`` against its receipt, the dataset, the base and the settings; re-sign
    it with ``signer`` and move it into ``out``.  RemoteTrainingError naming every difference, else the receipt."""
    report = ReceiptReport.check(staging, keyring=keyring, dataset=dataset, base=base)
    place = f"instance {where.get('instance_id', '?')}"
    if not report.ok:
        raise RemoteTrainingError(
            f"the model trained on {place} does not match its receipt, so nothing was kept in {out}: "
            + "; ".join(report.problems)
            + " — run the training again"
        )
    body = dict(report.receipt)
    asked, used = settings.to_json(), dict(body.get("config") or {})
    differs = [
        f"{name}: asked {asked.get(name)!r}, trained with {used.get(name)!r}"
        for name in sorted(set(asked) | set(used))
        if name not in _NOT_COMPARED and asked.get(name) != used.get(name)
    ]
    base_named = (body.get("base_model") or {}).get("name")
    if base is None and base_named != settings.base:
        differs.append(f"base: asked {settings.base!r}, trained from {base_named!r}")
    if differs:
        raise RemoteTrainingError(
            f"the receipt from {place} names other settings than were asked, so nothing was kept in {out}: "
            + "; ".join(differs)
        )
    remote_receipt = (staging / RECEIPT_FILE).read_bytes()
    body["config"] = asked
    body["base_model"] = {**(body.get("base_model") or {}), "name": settings.base}
    body["dataset"] = {**(body.get("dataset") or {}), "path": str(dataset), **(trust or {})}
    body["trained_on"] = {
        **where,
        "remote_key_id": report.key_id,  # ephemeral: made and thrown away with the instance
        "remote_receipt_sha256": hashlib.sha256(remote_receipt).hexdigest(),
    }
    (staging / REMOTE_RECEIPT_FILE).write_bytes(remote_receipt)
    receipt = sign_receipt(staging, body, signer)
    out.mkdir(parents=True, exist_ok=True)
    for child in sorted(staging.iterdir()):
        child.rename(out / child.name)
    return receipt


def _shell(manager: VastInstanceManager, instance_id: int) -> RemoteShell:
    instance = manager.provisioner.client.show_instance(instance_id)
    endpoint = instance.ssh_endpoint() if instance is not None else None
    if endpoint is None:
        raise RemoteTrainingError(f"instance {instance_id} has no SSH endpoint; `arcticcodex gpu ls` shows its state")
    provisioner = manager.provisioner
    return RemoteShell(
        host=endpoint[0],
        port=endpoint[1],
        key_path=provisioner.key_path(),
        known_hosts=provisioner.state_dir / "ssh" / f"known_hosts-{instance_id}",
    )


def _script(settings: TrainSettings, plan: GpuTraining, wheel: str, *, shipped_base: bool) -> str:
    """The remote run: install the wheel, make a throwaway workspace (its own ephemeral key), train, report.

    ``--allow-untrusted`` there, because the trust decision was taken here, by the user's own key ring (the
    instance has none to take it with); the instance still refuses a dataset that is not intact.
    """
    python = shlex.quote(plan.python)
    train = ["dataset", "--base", "base" if shipped_base else settings.base, "--out", "out", *_train_options(settings)]
    steps = [
        "set -e",
        f"{python} -m pip install --quiet --disable-pip-version-check {shlex.join(plan.pip_args)} "
        + shlex.quote(f"./{wheel}[train]"),
        f"{python} -m arcticcodex.cli init ws > /dev/null",
        f"{python} -m arcticcodex.cli -w ws train {shlex.join(train)} --allow-untrusted --progress-lines",
    ]
    inner = "; ".join(steps)
    script = (
        f'cd {REMOTE_DIR} && export ARCTICCODEX_CONFIG_DIR="$PWD/config" PYTHONUNBUFFERED=1; '
        f'( {inner} ) 2>&1 | tee train.log; status=${{PIPESTATUS[0]}}; echo "{EXIT_MARK} $status"; exit $status'
    )
    return f"bash -c {shlex.quote(script)}"


def _train_options(settings: TrainSettings) -> list[str]:
    """The command-line options that give ``settings`` (the CLI sets eval_steps to save_steps, as here)."""
    if settings.eval_steps != settings.save_steps or settings.dpo_beta != 0.1 or settings.dpo_margin != 0.1:
        raise UserError(
            "a run on a GPU takes the settings the command line can give: eval_steps equal to save_steps, and "
            "the default dpo_beta and dpo_margin",
            parameters=["eval_steps", "dpo_beta", "dpo_margin"],
        )
    options = ["--method", settings.method]
    options += ["--full"] if settings.lora is None else ["--lora", f"{settings.lora[0]},{settings.lora[1]}"]
    options += ["--epochs", repr(settings.epochs)]
    if settings.max_steps is not None:
        options += ["--max-steps", str(settings.max_steps)]
    options += ["--lr", repr(settings.learning_rate), "--batch-size", str(settings.batch_size)]
    options += ["--max-length", str(settings.max_length), "--save-steps", str(settings.save_steps)]
    return [*options, "--report-to", settings.report_to, "--seed", str(settings.seed)]


_PROGRESS = re.compile(rf"^{PROGRESS_MARK} (\S+) (\d+) (\d+)$")
_EXIT = re.compile(rf"^{EXIT_MARK} (\d+)$")


def _run(
    shell: RemoteShell,
    script: str,
    instance_id: int,
    out: Path,
    say: Callable[[str], None],
    progress: Progress | None,
) -> None:
    """Run the script, its log shown as it comes (progress lines drive ``progress``); error unless it succeeded."""
    exit_status: list[int] = []

    def on_line(line: str) -> None:
        if match := _PROGRESS.match(line):
            if progress is not None:
                progress(match.group(1), int(match.group(2)), int(match.group(3)))
        elif match := _EXIT.match(line):
            exit_status.append(int(match.group(1)))
        else:
            say(line)

    status, tail = shell.stream(script, on_line)
    lines = [line.strip() for line in tail if line.strip() and not _PROGRESS.match(line) and not _EXIT.match(line)]
    lines = lines[-8:]
    last = " | ".join(lines) or "(it printed nothing)"
    if exit_status and exit_status[0] == 0 and status == 0:
        return
    if exit_status:
        raise RemoteTrainingError(
            f"training failed on instance {instance_id} (exit status {exit_status[0]}); the remote log's last "
            f"lines: {last} — the instance is destroyed and nothing was kept in {out}; fix the cause and run again"
        )
    dropped = "the SSH connection dropped" if status == SSH_FAILED else f"ssh ended with status {status}"
    raise RemoteTrainingError(
        f"{dropped} while instance {instance_id} was training; the last lines it sent: {last} — the instance is "
        f"destroyed (it bills nothing more) and nothing was kept in {out}; run the command again"
    )


def _destroy(manager: VastInstanceManager, instance_id: int, outcome: str) -> None:
    """Destroy the instance; if Vast will not, say how to, without hiding an error already on its way."""
    try:
        manager.down(instance_id, reason=outcome)
    except GpuError as error:
        raise GpuError(
            f"instance {instance_id} could not be destroyed ({error}); it may still bill: "
            f"`arcticcodex gpu down {instance_id}` or `arcticcodex gpu reap` destroys it"
        ) from error

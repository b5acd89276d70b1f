"""GPU teachers on Vast.ai: search, rent, wait, tunnel, account, enforce budgets, tear down.

::

    vast.py          the REST client (httpx): offers, instances, SSH keys, balance; retries and errors
    offers.py        Offer, Instance, OfferQuery: Vast's JSON typed, in the user's units
    provisioner.py   VllmProvisioner: launch the vLLM image, wait for running and for vLLM, tunnel, destroy
    tunnel.py        SSHTunnel: the system ssh, pinned host keys, liveness, reopen, clean close
    remote_shell.py  RemoteShell: commands and tar-streamed files over the same ssh (``train --on gpu``)
    sshkeys.py       the workspace's SSH key (Ed25519, 0600)
    state.py         the instances a workspace owns (SQLite) and the lifecycle log (JSONL)
    manager.py       VastInstanceManager: budgets, TTL and idle stops, reaping, cost, teacher registration
"""

from .budget import GpuBudget
from .manager import VastInstanceManager
from .offers import Instance, Offer, OfferQuery
from .provisioner import VllmProvisioner, VllmSpec
from .state import InstanceRecord
from .tunnel import SSHTunnel
from .vast import VastClient

__all__ = [
    "GpuBudget",
    "Instance",
    "InstanceRecord",
    "Offer",
    "OfferQuery",
    "SSHTunnel",
    "VastClient",
    "VastInstanceManager",
    "VllmProvisioner",
    "VllmSpec",
]

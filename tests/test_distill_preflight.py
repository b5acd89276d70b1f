"""Issue 12, item 2: `[signing] key` is honoured, and a run that cannot finish is refused before it exists.

Each refusal is checked three ways: the message names the option or setting, the place and the fix;
the journal holds no run (nothing dead in "recent runs"); and the teacher server got no request (no
teacher was paid, not even for --questions-by questions).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from arcticcodex.provenance import KeyStore
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import OTTERS, PROMPTS, make_root, write_prompts


def run_ids(root: Path) -> list[str]:
    with sqlite3.connect(root / ".arcticcodex" / "arcticcodex.db") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM distill_runs")]


def set_signing_key(root: Path, name: str) -> None:
    """Point [signing] key at ``name`` (the line `init` wrote, commented out or not)."""
    config = root / "arcticcodex.toml"
    text, count = re.subn(r"^#?\s*key\s*=.*$", f'key = "{name}"', config.read_text(), count=1, flags=re.M)
    if not count:
        text += f'\n[signing]\nkey = "{name}"\n'
    config.write_text(text)


def refused(acx: Acx, root: Path, server: FakeOpenAIServer, *args: str | Path, code: int = 1) -> str:
    """Run `distill` expecting a refusal; no run may be created and no teacher asked anything."""
    result = acx("-w", root, "distill", *args, code=code)
    assert run_ids(root) == [], "a refused run must not be in the journal"
    assert server.requests == [], "a refused run must not call a teacher"
    return result.stderr


def test_the_signing_key_named_in_the_configuration_signs_the_dataset(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    acx("-w", root, "keys", "new", "release")
    set_signing_key(root, "release")
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    summary = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", tmp_path / "out", "--json").output)
    assert summary["status"] == "complete"
    release = KeyStore(Workspace.open(root).keys_dir).info("release")
    record = json.loads((tmp_path / "out" / "train.jsonl").read_text().splitlines()[0])
    assert record["integrity"]["key_id"] == release.key_id  # not the 'dataset' key, which also exists
    assert json.loads(acx("-w", root, "runs", "show", "latest", "--json").output)["settings"]["key"] == "release"


def test_a_missing_or_unknown_key_is_refused_before_the_run(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    out = tmp_path / "out"
    message = refused(acx, root, server, "--prompts", prompts, "--out", out, "--key", "nosuch")
    assert "signing key 'nosuch' (from --key)" in message and "arcticcodex keys new nosuch" in message
    set_signing_key(root, "missing")
    message = refused(acx, root, server, "--prompts", prompts, "--out", out)
    assert "signing key 'missing' (from [signing] key in arcticcodex.toml)" in message
    assert "keys there: dataset" in message and "arcticcodex keys new missing" in message
    assert not (tmp_path / "out").exists()


def test_unknown_teachers_and_drafters_are_refused_before_the_run(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    base = ["--prompts", prompts, "--out", tmp_path / "out"]
    message = refused(acx, root, server, *base, "--teachers", "gpu,deepsek")
    assert "--teachers names 'deepsek', which is not a configured teacher (configured: gpu" in message
    assert "arcticcodex teachers add" in message
    message = refused(acx, root, server, *base, "--drafter", "gpt")
    assert "--drafter 'gpt' is not a configured API teacher (configured: gpu)" in message and "'extractive'" in message
    (tmp_path / "notes.md").write_text(f"# Otters\n\n{OTTERS}\n")
    acx("-w", root, "vault", "import", tmp_path / "notes.md")
    message = refused(acx, root, server, "--from-vault", "--questions-by", "gtp", "--out", tmp_path / "out")
    assert "--questions-by 'gtp' is not a configured API teacher" in message and "'offline'" in message
    config = root / "arcticcodex.toml"
    config.write_text(config.read_text() + '\n[distill]\nteachers = ["gpu", "nope"]\n')
    message = refused(acx, root, server, *base)
    assert "[distill] teachers in arcticcodex.toml names 'nope'" in message


def test_an_untrusted_teacher_entry_is_refused_before_the_run(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    config = root / "arcticcodex.toml"
    hand_written = f'\n[[teachers]]\nname = "cloned"\npreset = "vllm"\nbase_url = "{server.base_url}"\nmodel = "m"\n'
    config.write_text(config.read_text() + hand_written)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    message = refused(acx, root, server, "--prompts", prompts, "--out", tmp_path / "out", code=2)
    assert "cloned" in message and "arcticcodex teachers trust cloned" in message


def test_conflicting_sources_are_refused_before_the_run(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    out = tmp_path / "out"
    assert "give exactly one source" in refused(acx, root, server, "--prompts", prompts, "--from-vault", "--out", out)
    message = refused(acx, root, server, "--prompts", prompts, "--conversation", "conv-1", "--out", out, code=2)
    assert "--conversation ID picks conversations for --from-conversations" in message
    message = refused(acx, root, server, "--prompts", prompts, "--questions-by", "gpu", "--out", out, code=2)
    assert "--questions-by shapes a --from-vault curriculum; add --from-vault" in message
    empty = write_prompts(tmp_path / "empty.jsonl", [])
    assert f"{empty} holds no prompts" in refused(acx, root, server, "--prompts", empty, "--out", out)
    assert "vault has no document" in refused(acx, root, server, "--from-vault", "--out", out)


def test_append_to_a_dataset_that_does_not_verify_is_refused_before_the_run(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    out = tmp_path / "out"
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    first = json.loads(acx("-w", root, "distill", "--prompts", prompts, "--out", out, "--json").output)
    train = out / "train.jsonl"
    train.write_text(train.read_text().replace("Otters", "Ottters", 1))
    server.clear()
    more = write_prompts(tmp_path / "more.jsonl", PROMPTS[1:2])
    result = acx("-w", root, "distill", "--prompts", more, "--out", out, "--append", code=1)
    assert f"--append: the dataset in {out.resolve()} does not verify with key 'dataset'" in result.output
    assert run_ids(root) == [first["run_id"]] and server.requests == []

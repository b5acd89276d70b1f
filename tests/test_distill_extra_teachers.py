"""A run's extra teachers: a model the caller serves for one run (the student drafting in `arcticcodex loop`),
usable as the drafter by name beside the workspace's configured teachers, never written to arcticcodex.toml."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from arcticcodex.distill.run import Distiller
from arcticcodex.distill.settings import RunSettings
from arcticcodex.distill.sourcing import Source
from arcticcodex.errors import ConfigError
from arcticcodex.provenance.keystore import KeyStore
from arcticcodex.teachers.entries import TeacherConfig
from arcticcodex.vault.embeddings import HashingBackend
from arcticcodex.workspace import Workspace
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import records, write_prompts

FACT = "Otters eat mostly fish, and crabs when fish are scarce."


def student(server: FakeOpenAIServer) -> TeacherConfig:
    return TeacherConfig(
        name="student", preset="vllm", model="student-7", base_url=server.base_url, response_format="json_object"
    )


def test_a_served_student_drafts_a_run_without_entering_the_config(
    workspace: Workspace, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    KeyStore(workspace.keys_dir).create("dataset")
    config_before = workspace.config.path.read_bytes()
    server.script("drafter", [{"text": FACT.replace("fish,", "fish [1],"), "changes": []}])
    prompts = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": FACT}])
    with Distiller(workspace, local_embedder=HashingBackend(64), extra_teachers=[student(server)]) as distiller:
        summary = distiller.distill_sync(
            Source("prompts", prompts=prompts), RunSettings(drafter="student"), tmp_path / "out"
        )
    assert summary.status == "complete" and summary.written == 1
    drafts = [request for request in server.requests if request.path.endswith("/chat/completions")]
    assert [request.body["model"] for request in drafts] == ["student-7"]  # the student drafted; the judge is local
    (pair,) = records(tmp_path / "out" / "train.jsonl")
    assert pair["revisions"][0]["text"] == FACT.replace("fish,", "fish [1],")
    assert workspace.config.path.read_bytes() == config_before  # nothing written to the user's file


def test_without_the_extra_teacher_the_name_is_refused_before_the_run_exists(
    workspace: Workspace, tmp_path: Path
) -> None:
    KeyStore(workspace.keys_dir).create("dataset")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": FACT}])
    with Distiller(workspace, local_embedder=HashingBackend(64)) as distiller:
        with pytest.raises(ConfigError) as refused:
            distiller.distill_sync(Source("prompts", prompts=prompts), RunSettings(drafter="student"), tmp_path / "out")
        assert distiller.journal.runs(limit=1) == []
    assert "drafter 'student' is not a configured API teacher" in str(refused.value)


def test_a_student_that_answers_in_prose_drafts_with_the_question_as_it_was_trained(
    workspace: Workspace, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """A student trained on `messages` answers the bare question in prose, not the drafting protocol's JSON."""
    KeyStore(workspace.keys_dir).create("dataset")
    prose = "Otters eat mostly fish [1]."
    server.script("generic", [prose])
    prompts = write_prompts(tmp_path / "p.jsonl", [{"instruction": "What do otters eat?", "evidence": FACT}])
    trained = TeacherConfig(name="student", preset="vllm", model="student-7", base_url=server.base_url)
    trained = replace(trained, response_format="none")
    with Distiller(workspace, local_embedder=HashingBackend(64), extra_teachers=[trained]) as distiller:
        summary = distiller.distill_sync(
            Source("prompts", prompts=prompts), RunSettings(drafter="student"), tmp_path / "out"
        )
    assert summary.written == 1
    (asked,) = [request.body for request in server.requests if request.path.endswith("/chat/completions")]
    assert asked["messages"] == [{"role": "user", "content": "What do otters eat?"}]
    assert "response_format" not in asked and asked["temperature"] == 0.0
    (pair,) = records(tmp_path / "out" / "train.jsonl")
    assert pair["revisions"][0]["text"] == prose

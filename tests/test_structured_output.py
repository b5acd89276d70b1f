"""Schema-constrained judges (issue 17, item 1), over real HTTP against the fake OpenAI-compatible server.

A teacher whose ``response_format`` is ``json_schema`` (the openai, vllm and ollama presets) sends each
call's reply schema, strict; the fake obeys it as guided decoding does, so the malformed and ill-shaped
replies that cost a JSON-mode teacher (the deepseek preset) a re-ask each never arrive.  The schemas come
from the result models; the fake refuses a schema that is not strict-compatible, in OpenAI's words, and
a server without JSON schemas (DeepSeek) refuses the format, which the teacher's error explains.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from arcticcodex.errors import TeacherRejectedError
from arcticcodex.teachers.entries import PRESETS, TeacherConfig, teacher_from_entry
from arcticcodex.teachers.openai_compat import OpenAICompatibleTeacher
from arcticcodex.teachers.parsing import RESULT_MODELS
from arcticcodex.teachers.reply_schemas import BOOKKEEPING, STRICT_KEYWORDS, reply_schema, response_format
from arcticcodex.teachers.results import CallRole, Critique, EvidenceItem, Rubric, Verification
from fakes.openai_server import FakeOpenAIServer

ROLES: tuple[CallRole, ...] = ("critic", "verifier", "rewriter", "drafter", "questioner")
EVIDENCE = [EvidenceItem(number=1, text="Otters eat mostly fish. They also eat crabs and frogs.")]
ANSWER = "Otters eat fish and crabs [1]."

# the same faults for both modes: each call gets one malformed or ill-shaped reply, injected or scripted
CASES: list[tuple[CallRole, str, Any]] = [
    ("critic", "inject", "invalid-json"),  # prose instead of JSON
    ("critic", "inject", "truncated-json"),  # half an object (finish_reason "length")
    ("critic", "inject", "non-numeric-score"),  # {"score": "high"}
    ("critic", "script", {"score": "0.7 out of 1", "criteria": {"grounding": "good"}}),  # words for numbers
    ("verifier", "inject", "empty"),
    ("verifier", "script", {"claims": [{"claim": "Otters eat fish.", "verdict": "maybe"}]}),  # no such verdict
    ("verifier", "script", {"claims": "all supported"}),  # a sentence where a list goes
    ("rewriter", "inject", "blank"),  # DeepSeek's JSON mode: spaces
    ("rewriter", "script", "Sure! Here is the rewrite: Otters eat fish [1]."),
    ("drafter", "inject", "truncated-json"),
    ("questioner", "inject", "invalid-json"),
    ("questioner", "script", {"questions": [1, "What do otters eat?"]}),  # a number where a question goes
]


def teacher_for(server: FakeOpenAIServer, preset: str, **entry: object) -> OpenAICompatibleTeacher:
    """A teacher made from ``preset`` as `teachers add` makes it, pointed at the fake."""
    config = teacher_from_entry(
        {"name": preset, "preset": preset, "base_url": server.base_url, "model": "fake-model", **entry}, where="test"
    )
    return OpenAICompatibleTeacher(config, api_key="sk-test")


async def one_call(teacher: OpenAICompatibleTeacher, role: CallRole) -> BaseModel:
    if role == "critic":
        return await teacher.critique(ANSWER, EVIDENCE, Rubric(), instruction="What do otters eat?")
    if role == "verifier":
        return await teacher.verify(ANSWER, EVIDENCE)
    if role == "rewriter":
        return await teacher.rewrite(ANSWER, Critique(score=0.5), Verification(), EVIDENCE)
    if role == "drafter":
        return await teacher.draft("What do otters eat?", EVIDENCE)
    return await teacher.questions(EVIDENCE[0].text, source="otters.md")


def run_cases(server: FakeOpenAIServer, teacher: OpenAICompatibleTeacher) -> list[BaseModel]:
    """Every case in turn, each fault set up just before its call; the results (each call must succeed)."""

    async def main() -> list[BaseModel]:
        results = []
        try:
            for role, how, fault in CASES:
                if how == "inject":
                    server.inject(fault, role=role)
                else:
                    server.script(role, [fault])
                results.append(await one_call(teacher, role))
        finally:
            await teacher.aclose()
        return results

    return asyncio.run(main())


def reasked(results: list[BaseModel]) -> int:
    """Calls whose first reply could not be used (a parse or shape failure, re-asked once)."""
    calls = [getattr(result, "call", None) for result in results]
    return sum(any(note.startswith("re-asked") for note in call.notes) for call in calls if call is not None)


def test_malformed_replies_drop_to_zero_with_strict_json_schemas() -> None:
    """Same scripted faults: JSON mode (deepseek preset) re-asks each one; strict schemas (vllm preset) none."""
    counts: dict[str, tuple[int, int]] = {}
    for preset in ("deepseek", "vllm"):
        with FakeOpenAIServer() as server:
            teacher = teacher_for(server, preset)
            mode = teacher.config.response_format
            results = run_cases(server, teacher)
            counts[mode] = (reasked(results), len(server.requests))
            formats = [request.body["response_format"] for request in server.requests]
            if mode == "json_object":
                assert formats == [{"type": "json_object"}] * len(server.requests)
            else:  # every call sent its role's strict schema, and every reply is an instance of it
                for (role, _, _), result, request in zip(CASES, results, server.requests, strict=True):
                    expected = reply_schema(role, Rubric())
                    assert request.body["response_format"] == {
                        "type": "json_schema",
                        "json_schema": {"name": expected.name, "schema": expected.schema, "strict": True},
                    }
                    reply = json.loads(result.call.raw_reply)  # what the server sent, as the teacher recorded it
                    jsonschema.validate(reply, expected.schema, cls=jsonschema.Draft202012Validator)
    assert counts == {"json_object": (len(CASES), 2 * len(CASES)), "json_schema": (0, len(CASES))}


@pytest.mark.parametrize("role", ROLES)
def test_reply_schemas_are_the_result_models_made_strict(role: CallRole) -> None:
    rubric = Rubric(criteria={"grounding": "cited", "tone": "plain"})
    schema = reply_schema(role, rubric).schema
    model = RESULT_MODELS[role]
    assert list(schema["properties"]) == [name for name in model.model_fields if name not in BOOKKEEPING]
    for node in _nodes(schema):
        assert set(node) <= STRICT_KEYWORDS, node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    if role == "critic":  # the rubric's criteria, each a number, all required
        assert schema["properties"]["criteria"]["properties"] == {
            "grounding": {"type": "number"},
            "tone": {"type": "number"},
        }
    if role == "verifier":
        claim = schema["properties"]["claims"]["items"]
        assert claim["properties"]["verdict"]["enum"] == ["supported", "contradicted", "unsupported"]


def _nodes(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        found.append(schema)
        for value in (*schema.get("properties", {}).values(), schema.get("items"), *schema.get("anyOf", [])):
            found += _nodes(value)
    return found


def test_presets_choose_the_format_and_an_entry_overrides_it() -> None:
    servers = [name for name in PRESETS if name != "local"]  # the offline local judge sends nothing
    chosen = {name: teacher_from_entry({"name": "t", "preset": name, "model": "m"}, where="t") for name in servers}
    assert {name: config.response_format for name, config in chosen.items()} == {
        "deepseek": "json_object",
        "openai": "json_schema",
        "vllm": "json_schema",
        "ollama": "json_schema",
    }
    override = teacher_from_entry(
        {"name": "t", "preset": "vllm", "model": "m", "response_format": "json_object"}, where="t"
    )
    assert override.response_format == "json_object"
    assert override.to_toml()["response_format"] == "json_object"
    assert "response_format" not in chosen["vllm"].to_toml()  # the preset's choice is not written out
    schema = reply_schema("verifier")
    assert response_format("none", schema) is None
    assert response_format("json_object", schema) == {"type": "json_object"}


def test_an_older_config_with_json_mode_is_read(acx: Any, tmp_path: Path) -> None:
    """``json_mode = false`` meant prose (now ``none``), ``true`` keeps the preset's format; both written must agree."""
    root = tmp_path / "ws"
    acx("init", root)
    config = root / "arcticcodex.toml"
    older = (
        '\n[[teachers]]\nname = "prose"\npreset = "vllm"\nmodel = "m"\njson_mode = false\n'
        '\n[[teachers]]\nname = "judge"\npreset = "openai"\njson_mode = true\n'
    )
    config.write_text(config.read_text(encoding="utf-8") + older, encoding="utf-8")
    listed = json.loads(acx("-w", root, "teachers", "list", "--json").stdout)["teachers"]
    assert {row["name"]: row["response_format"] for row in listed} == {"prose": "none", "judge": "json_schema"}
    lines = config.read_text(encoding="utf-8").splitlines()
    config.write_text("\n".join([*lines, 'response_format = "json_object"', ""]), encoding="utf-8")  # judge's
    acx("-w", root, "teachers", "list", "--json")  # json_mode = true and json_object agree: both ask for JSON
    conflicting = "\n".join([*lines[:-1], "json_mode = false", 'response_format = "json_schema"', ""])
    config.write_text(conflicting, encoding="utf-8")
    refused = acx("-w", root, "teachers", "list", code=1)
    header = lines.index('name = "judge"')  # the line after [[teachers]], 0-based: the header's own number
    assert f"{config}:{header}: teacher 'judge' has json_mode = false and response_format = 'json_schema'" in (
        refused.stderr
    )
    assert "json_mode is the older spelling of response_format: remove it" in refused.stderr
    config.write_text("\n".join([*lines[:-1], 'json_mode = "yes"', ""]), encoding="utf-8")
    not_a_switch = acx("-w", root, "teachers", "list", code=1)
    assert f"{config}:{header}: teacher 'judge' has json_mode = 'yes', which must be true or false" in (
        not_a_switch.stderr
    )


def test_the_cli_adds_a_teacher_with_its_response_format_and_refine_sends_it(acx: Any, tmp_path: Path) -> None:
    """The user's steps: `teachers add` with and without --response-format, then `refine`, the faults the same."""
    root = tmp_path / "ws"
    acx("init", root)
    answer, evidence = tmp_path / "answer.txt", tmp_path / "otters.md"
    answer.write_text(ANSWER, encoding="utf-8")
    evidence.write_text(EVIDENCE[0].text, encoding="utf-8")
    seen: dict[str, tuple[str, int, bool]] = {}
    for name, extra in (("strict", ()), ("jsonmode", ("--response-format", "json_object"))):
        with FakeOpenAIServer() as server:
            base = ("-w", root, "teachers", "add", name, "--preset", "vllm", "--base-url", server.base_url)
            acx(*base, "--model", "fake-model", *extra)
            server.inject("invalid-json", role="critic")
            server.inject("truncated-json", role="verifier")
            out = acx("-w", root, "refine", answer, "--evidence", evidence, "--teachers", name, "--json")
            result = json.loads(out.stdout)
            notes = [note for r in result["rounds"] for call in r["calls"] for note in call["notes"]]
            kind = server.requests[0].body["response_format"]["type"]
            seen[name] = (kind, sum(note.startswith("re-asked") for note in notes), result["accepted"])
        acx("-w", root, "teachers", "remove", name)
    assert seen == {"strict": ("json_schema", 0, True), "jsonmode": ("json_object", 2, True)}


def test_a_server_without_json_schemas_refuses_and_the_message_names_the_fix(acx: Any, tmp_path: Path) -> None:
    """DeepSeek answers 400 to a json_schema format: the teacher's failure says so and how to switch to JSON mode."""
    root = tmp_path / "ws"
    acx("init", root)
    answer = tmp_path / "answer.txt"
    answer.write_text(ANSWER, encoding="utf-8")
    with FakeOpenAIServer(structured_outputs=False) as server:
        acx("-w", root, "teachers", "add", "ds", "--preset", "vllm", "--base-url", server.base_url, "--model", "m")
        failed = acx("-w", root, "refine", answer, code=1)
        assert len(server.requests) == 1  # refused, not retried
    message = failed.stderr
    assert "teacher ds" in message and "HTTP 400 This response_format type is unavailable now" in message
    assert server.base_url in message and 'response_format = "json_object"' in message
    assert "teacher ds's entry of arcticcodex.toml" in message


def test_the_teacher_error_for_a_refused_schema_names_teacher_status_and_fix() -> None:
    with FakeOpenAIServer(structured_outputs=False) as deepseek_like:
        config = TeacherConfig(
            name="t", preset="vllm", model="m", base_url=deepseek_like.base_url, response_format="json_schema"
        )
        fake = OpenAICompatibleTeacher(config, api_key="k")

        async def main() -> None:
            try:
                await fake.verify(ANSWER, EVIDENCE)
            finally:
                await fake.aclose()

        with pytest.raises(TeacherRejectedError) as caught:
            asyncio.run(main())
    assert caught.value.status == 400
    assert 'write response_format = "json_object" in teacher t\'s entry of arcticcodex.toml' in str(caught.value)


# -- the fake's fidelity: it checks a schema as OpenAI does, and obeys the mode it is sent --------------------


def sdk(server: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk", max_retries=0, http_client=httpx.Client())


def strict_format(schema: dict[str, Any], name: str = "critique") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


CRITIC = [{"role": "system", "content": "You are the critic."}, {"role": "user", "content": "Judge it."}]
GOOD = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "notes": {"type": "array", "items": {"type": "string"}}},
    "required": ["score", "notes"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {**GOOD, "additionalProperties": True},
            "In context=(), 'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            {k: v for k, v in GOOD.items() if k != "additionalProperties"},
            "In context=(), 'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            {**GOOD, "required": ["score"]},
            "In context=(), 'required' is required to be supplied and to be an array including every key in "
            "properties. Missing 'notes'.",
        ),
        (
            {
                **GOOD,
                "properties": {
                    **GOOD["properties"],
                    "notes": {"type": "array", "items": {"type": "string"}, "default": []},
                },
            },
            "In context=('properties', 'notes'), 'default' is not permitted.",
        ),
        (
            {
                **GOOD,
                "properties": {
                    **GOOD["properties"],
                    "criteria": {"type": "object", "additionalProperties": {"type": "number"}},
                },
                "required": ["score", "notes", "criteria"],
            },
            "In context=('properties', 'criteria'), 'additionalProperties' is required to be supplied and to be false.",
        ),
        ({"type": "array", "items": {"type": "string"}}, "schema must be a JSON Schema of 'type: \"object\"'"),
        (
            {**GOOD, "properties": {"score": {"description": "0 to 1"}, "notes": GOOD["properties"]["notes"]}},
            "In context=('properties', 'score'), schema must have a 'type' key.",
        ),
    ],
)
def test_a_schema_that_is_not_strict_is_refused_as_openai_refuses_it(
    server: FakeOpenAIServer, schema: dict[str, Any], message: str
) -> None:
    with sdk(server) as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=CRITIC, response_format=strict_format(schema))
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Invalid schema for response_format 'critique': ")
    assert message in error["message"]


def test_a_json_schema_without_a_name_or_on_deepseek_is_refused(server: FakeOpenAIServer) -> None:
    nameless = {"type": "json_schema", "json_schema": {"schema": GOOD, "strict": True}}
    with sdk(server) as client, pytest.raises(openai.BadRequestError, match=r"response_format\.json_schema\.name"):
        client.chat.completions.create(model="m", messages=CRITIC, response_format=nameless)
    with FakeOpenAIServer(structured_outputs=False) as deepseek, sdk(deepseek) as client:
        with pytest.raises(openai.BadRequestError, match="This response_format type is unavailable now"):
            client.chat.completions.create(model="m", messages=CRITIC, response_format=strict_format(GOOD))
        plain = client.chat.completions.create(
            model="m", messages=[*CRITIC, {"role": "user", "content": "json"}], response_format={"type": "json_object"}
        )
        assert json.loads(plain.choices[0].message.content or "")["score"] == 0.9


@pytest.mark.parametrize(
    "fault", ["invalid-json", "fenced-json", "truncated-json", "empty", "blank", "non-numeric-score", "score:high"]
)
def test_strict_mode_replies_always_fit_the_schema_and_json_mode_passes_faults_through(
    server: FakeOpenAIServer, fault: str
) -> None:
    with sdk(server) as client:
        server.inject(fault, role="critic")
        strict = client.chat.completions.create(model="m", messages=CRITIC, response_format=strict_format(GOOD))
        reply = json.loads(strict.choices[0].message.content or "")
        jsonschema.validate(reply, GOOD, cls=jsonschema.Draft202012Validator)
        assert strict.choices[0].finish_reason == "stop"
        server.inject(fault, role="critic")
        loose = client.chat.completions.create(
            model="m", messages=[*CRITIC, {"role": "user", "content": "json"}], response_format={"type": "json_object"}
        )
        try:
            fitting = isinstance(json.loads(loose.choices[0].message.content or ""), dict)
            jsonschema.validate(json.loads(loose.choices[0].message.content or ""), GOOD)
        except (ValueError, jsonschema.ValidationError):
            fitting = False
        assert not fitting  # JSON mode: the fault arrives as it was injected


def test_strict_mode_makes_a_scripted_ill_shaped_reply_fit(server: FakeOpenAIServer) -> None:
    """Guided decoding keeps what fits (the score), drops what the schema has no place for, fills what is missing."""
    server.script("critic", [{"score": 0.4, "extra": "dropped", "notes": ["ok", 3, None]}, "prose, not JSON"])
    with sdk(server) as client:
        first = client.chat.completions.create(model="m", messages=CRITIC, response_format=strict_format(GOOD))
        assert json.loads(first.choices[0].message.content or "") == {"score": 0.4, "notes": ["ok", "3", ""]}
        second = client.chat.completions.create(model="m", messages=CRITIC, response_format=strict_format(GOOD))
        reply = json.loads(second.choices[0].message.content or "")
        assert reply["score"] == 0.9  # prose: the role's default reply, made to fit
        jsonschema.validate(reply, GOOD, cls=jsonschema.Draft202012Validator)
        server.script("critic", [{"score": "high"}])
        loose_schema = {"type": "json_schema", "json_schema": {"name": "critique", "schema": {"type": "object"}}}
        loose = client.chat.completions.create(model="m", messages=CRITIC, response_format=loose_schema)
        assert json.loads(loose.choices[0].message.content or "") == {"score": "high"}  # not strict: best effort


def test_every_reply_schema_is_accepted_by_the_fake_and_its_replies_parse(server: FakeOpenAIServer) -> None:
    """The schemas the teachers send pass the strict check, and what comes back validates as the role's result."""
    from arcticcodex.teachers.parsing import parse_reply

    with sdk(server) as client:
        for role in ROLES:
            sent = reply_schema(role, Rubric())
            system = {"role": "system", "content": f"You are the {role}."}
            completion = client.chat.completions.create(
                model="m",
                messages=[
                    system,
                    {"role": "user", "content": "PASSAGE:\nOtters eat fish.\n\nEVIDENCE:\n[1]\nOtters eat fish."},
                ],
                response_format=strict_format(sent.schema, sent.name),
            )
            content = completion.choices[0].message.content or ""
            jsonschema.validate(json.loads(content), sent.schema, cls=jsonschema.Draft202012Validator)
            parse_reply(role, content, [])

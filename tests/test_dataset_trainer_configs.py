"""Issue 17, item 4: exports write LLaMA-Factory's dataset_info.json entry and an Axolotl stanza beside them.

Each config is checked against the file it describes (every column it names is in every row, every
role value is one its tags map), and each export is loaded the way the trainers load it: with
``datasets`` and with TRL's data utilities, through a chat template on a tokenizer trained here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with datasets (dev)

from arcticcodex.dataset import DatasetWriter
from arcticcodex.dataset.record import iter_records
from arcticcodex.dataset.trainer_configs import write_trainer_configs
from arcticcodex.layout import TRAIN_FILE
from arcticcodex.provenance.trust import TrustedKeys
from conftest import Acx
from test_dataset_export import SIGNER, build, build_cited, rows

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def dataset_folder(tmp_path: Path) -> Path:
    """Four accepted pairs, one of them from a conversation (earlier turns), signed by a trusted key."""
    out = tmp_path / "ds"
    cited = [pair for _, pair, _ in iter_records(build_cited(tmp_path / "cited") / TRAIN_FILE)]
    plain = [pair for _, pair, _ in iter_records(build(tmp_path / "plain") / TRAIN_FILE) if pair.accepted]
    with DatasetWriter(out, SIGNER) as writer:
        for pair in (*cited, *plain):
            writer.add(pair)
    TrustedKeys.for_user().trust_key(SIGNER, name="tests", origin="the test")
    return out


def tokenizer_for(texts: list[str]) -> Any:
    """A word-level tokenizer trained on ``texts`` here (no hub download), with a ChatML template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|im_start|>", "<|im_end|>"])
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", eos_token="<|im_end|>")  # type: ignore[no-untyped-call]
    fast.chat_template = CHATML
    return fast


def check_llama_factory(entry: dict[str, Any], data: list[dict[str, Any]]) -> None:
    """What LLaMA-Factory's converters read: every named column in every row, roles by the tags, in turn."""
    assert data
    for column in entry["columns"].values():
        assert all(column in row for row in data), column
    if entry["formatting"] == "alpaca":
        return
    tags = entry["tags"]
    for row in data:
        turns = row[entry["columns"]["messages"]]
        assert all(set(turn) == {tags["role_tag"], tags["content_tag"]} for turn in turns)
        roles = [turn[tags["role_tag"]] for turn in turns]
        if roles[0] == tags["system_tag"]:
            roles = roles[1:]
        # user turns in odd places, assistant turns in even ones (LLaMA-Factory refuses anything else)
        assert roles == [tags["user_tag"], tags["assistant_tag"]] * (len(roles) // 2), roles


def check_axolotl(stanza: dict[str, Any], target: Path, data: list[dict[str, Any]]) -> None:
    assert stanza["path"] == str(target.resolve()) and Path(stanza["path"]).is_file()
    assert stanza["ds_type"] == ("parquet" if target.suffix == ".parquet" else "json")
    if stanza["type"] == "alpaca":
        assert all({"instruction", "input", "output"} <= set(row) for row in data)
        return
    assert stanza["type"] == "chat_template"
    mapping = stanza["message_property_mappings"]
    allowed = {value for values in stanza.get("roles", {}).values() for value in values} or {
        "system",
        "user",
        "assistant",
    }
    for row in data:
        for turn in row[stanza["field_messages"]]:
            assert set(turn) == {mapping["role"], mapping["content"]}
            assert turn[mapping["role"]] in allowed


@pytest.mark.parametrize("shape", ["messages", "openai", "alpaca", "sharegpt"])
def test_each_export_writes_configs_that_match_its_rows(tmp_path: Path, acx: Acx, shape: str) -> None:
    out = dataset_folder(tmp_path)
    target = tmp_path / "exports" / f"{shape}.jsonl"
    target.parent.mkdir()
    result = acx("dataset", "export", out, "--format", shape, "-o", target)
    info, stanza_file = target.parent / "dataset_info.json", target.parent / f"{shape}.axolotl.yaml"
    assert f"Wrote {info}" in result.output and f"Wrote {stanza_file}" in result.output
    data = rows(target)
    assert len(data) == 4

    entry = json.loads(info.read_text())[shape]
    assert entry["file_name"] == target.name  # relative to dataset_dir: the folder the file is in
    assert entry["formatting"] == ("alpaca" if shape == "alpaca" else "sharegpt")
    check_llama_factory(entry, data)
    config = yaml.safe_load(stanza_file.read_text())
    check_axolotl(config["datasets"][0], target, data)


def test_the_exports_load_with_datasets_and_trl(tmp_path: Path, acx: Acx, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    data_utils = pytest.importorskip("trl.data_utils")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = dataset_folder(tmp_path)
    loaded = {}
    for shape in ("messages", "openai", "alpaca", "sharegpt"):
        target = tmp_path / f"{shape}.jsonl"
        acx("dataset", "export", out, "--format", shape, "-o", target)
        loaded[shape] = datasets.load_dataset(
            "json", data_files=str(target), split="train", cache_dir=str(tmp_path / "cache")
        )
        assert len(loaded[shape]) == 4
    acx("dataset", "export", out, "--format", "parquet", "-o", tmp_path / "messages.parquet")
    parquet = datasets.load_dataset("parquet", data_files=str(tmp_path / "messages.parquet"), split="train")
    assert parquet.to_list() == loaded["messages"].to_list()
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["messages"]  # entries are named by stem
    assert entry["file_name"] == "messages.parquet"  # so the later export of the same stem is the one registered
    check_llama_factory(entry, parquet.to_list())
    check_axolotl(
        yaml.safe_load((tmp_path / "messages.axolotl.yaml").read_text())["datasets"][0],
        tmp_path / "messages.parquet",
        parquet.to_list(),
    )

    texts = [text for row in loaded["messages"] for turn in row["messages"] for text in turn.values()]
    tokenizer = tokenizer_for(texts)
    for shape in ("messages", "openai"):
        assert data_utils.is_conversational(loaded[shape][0])
        templated = loaded[shape].map(data_utils.maybe_apply_chat_template, fn_kwargs={"processing_class": tokenizer})
        assert templated[0]["text"].startswith("<|im_start|>user\n")
        assert "<|im_start|>assistant\nOtters are mammals.<|im_end|>" in templated[0]["text"]  # markers removed
        tokens = tokenizer(templated[0]["text"])["input_ids"]
        assert tokenizer.unk_token_id not in tokens  # the tokenizer knows every word: it was trained on them
    assert not data_utils.is_conversational(loaded["alpaca"][0])  # instruction data, as TRL sees it
    chatml = loaded["sharegpt"].map(data_utils.maybe_convert_to_chatml)
    assert chatml[0]["messages"][0] == {"role": "human", "content": "Tell me about otters."}  # TRL keeps the values


def test_the_registry_is_merged_not_replaced_and_a_bad_one_is_left_alone(tmp_path: Path, acx: Acx) -> None:
    out = dataset_folder(tmp_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    info = folder / "dataset_info.json"
    theirs = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}
    info.write_text(json.dumps(theirs))
    acx("dataset", "export", out, "--format", "messages", "-o", folder / "chat.jsonl")
    acx("dataset", "export", out, "--format", "alpaca", "-o", folder / "instr.jsonl")
    acx("dataset", "export", out, "--format", "messages", "-o", folder / "chat.jsonl")  # again: one entry
    registry = json.loads(info.read_text())
    assert list(registry) == ["alpaca_en_demo", "chat", "instr"]
    assert registry["alpaca_en_demo"] == theirs["alpaca_en_demo"]
    assert sorted(path.name for path in folder.iterdir()) == [
        "chat.axolotl.yaml",
        "chat.jsonl",
        "dataset_info.json",
        "instr.axolotl.yaml",
        "instr.jsonl",
    ]  # no temporary file left behind

    info.write_text('{"half": ')  # someone's broken registry
    refused = acx("dataset", "export", out, "--format", "sharegpt", "-o", folder / "sg.jsonl", code=1)
    assert f"{info} cannot be read as LLaMA-Factory's dataset registry" in refused.output
    assert "fix or move that file and export again" in refused.output
    assert info.read_text() == '{"half": '  # not overwritten
    assert not (folder / "sg.jsonl").exists()  # refused before the export was written
    acx("dataset", "export", out, "--format", "dpo", "-o", folder / "prefs.jsonl")  # no entry to add: not refused
    info.write_text("[1, 2]")
    refused = acx("dataset", "export", out, "--format", "sharegpt", "-o", folder / "sg.jsonl", code=1)
    assert f"{info} is not a JSON object of datasets" in refused.output and info.read_text() == "[1, 2]"


def test_no_configs_for_preference_rows_frames_or_when_asked_not_to(tmp_path: Path, acx: Acx) -> None:
    out = dataset_folder(tmp_path)
    for shape, suffix in (("dpo", "jsonl"), ("fn", "fn")):
        result = acx("dataset", "export", out, "--format", shape, "-o", tmp_path / f"x.{suffix}")
        assert "dataset_info.json" not in result.output
    acx("dataset", "export", out, "--format", "messages", "-o", tmp_path / "m.jsonl", "--no-trainer-configs")
    assert not (tmp_path / "dataset_info.json").exists() and not (tmp_path / "m.axolotl.yaml").exists()
    assert write_trainer_configs(tmp_path / "x.fn", "fn") == []

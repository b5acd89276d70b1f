"""Trainer configs beside an export: LLaMA-Factory's ``dataset_info.json`` entry and an Axolotl dataset stanza.

An exported file is only half the job: each trainer must also be told what its columns mean, and a
wrong mapping trains silently on the wrong text (formats-signing-retrieval.md §1.2, §1.3).  So an
export writes, next to the file:

- ``dataset_info.json`` — LLaMA-Factory's registry of datasets (``dataset_dir`` is this folder).  The
  export's entry (named for the file's stem) is merged in: other datasets' entries are kept, and the
  file is replaced whole (temp file + rename), never half written.  A file that is not a JSON object
  is refused rather than overwritten.
- ``STEM.axolotl.yaml`` — a ``datasets:`` stanza to paste into (or merge with) an Axolotl config.

Conversational rows (``messages``, ``openai``, ``raft``) are LLaMA-Factory ``sharegpt`` with
role/content tags and Axolotl ``chat_template``; ``sharegpt`` rows are the same with from/value and
human/gpt; ``alpaca`` rows are both trainers' ``alpaca``.  Preference rows (``dpo``) and frames
(``fn``) get none: neither trainer reads our DPO shape as it is (TRL's DPOTrainer does, directly), and
frames are not training data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..fileio import NEW_FILE_MODE, atomic_write

__all__ = [
    "DATASET_INFO_FILE",
    "axolotl_stanza",
    "check_dataset_info",
    "llama_factory_entry",
    "write_trainer_configs",
]

DATASET_INFO_FILE = "dataset_info.json"
AXOLOTL_SUFFIX = ".axolotl.yaml"
MAX_DATASET_INFO_BYTES = 16 * 1024 * 1024

_CHAT_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}
_SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "system_tag": "system",
}
CONVERSATIONAL = ("messages", "openai", "raft")
"""Formats whose rows are ``{"messages": [{"role", "content"}, …]}`` (parquet's messages rows too)."""


def _shape(export_format: str, parquet_rows: str) -> str | None:
    """``chat``, ``sharegpt``, ``alpaca``, or None for a format no trainer config describes."""
    if export_format in CONVERSATIONAL or (export_format == "parquet" and parquet_rows == "messages"):
        return "chat"
    return export_format if export_format in ("sharegpt", "alpaca") else None


def llama_factory_entry(export_format: str, file_name: str, *, parquet_rows: str = "messages") -> dict[str, Any] | None:
    """The ``dataset_info.json`` entry for an export of ``export_format`` named ``file_name``, or None."""
    shape = _shape(export_format, parquet_rows)
    if shape == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        return {"file_name": file_name, "formatting": "alpaca", "columns": columns}
    if shape == "chat":
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": _CHAT_TAGS,
        }
    if shape == "sharegpt":
        columns = {"messages": "conversations"}
        return {"file_name": file_name, "formatting": "sharegpt", "columns": columns, "tags": _SHAREGPT_TAGS}
    return None


def axolotl_stanza(export_format: str, path: Path, *, parquet_rows: str = "messages") -> dict[str, Any] | None:
    """The Axolotl ``datasets:`` entry for an export of ``export_format`` at ``path``, or None."""
    shape = _shape(export_format, parquet_rows)
    if shape is None:
        return None
    entry: dict[str, Any] = {"path": str(path), "ds_type": "parquet" if path.suffix == ".parquet" else "json"}
    if shape == "alpaca":
        return {**entry, "type": "alpaca"}
    if shape == "chat":
        mapping = {"role": "role", "content": "content"}
        return {**entry, "type": "chat_template", "field_messages": "messages", "message_property_mappings": mapping}
    return {
        **entry,
        "type": "chat_template",
        "field_messages": "conversations",
        "message_property_mappings": {"role": "from", "content": "value"},
        "roles": {"system": ["system"], "user": ["human"], "assistant": ["gpt"]},
    }


def write_trainer_configs(output: str | Path, export_format: str, *, parquet_rows: str = "messages") -> list[Path]:
    """Write both trainers' configs beside the export at ``output``; return the files written (none for dpo, fn)."""
    output = Path(output).resolve()
    entry = llama_factory_entry(export_format, output.name, parquet_rows=parquet_rows)
    stanza = axolotl_stanza(export_format, output, parquet_rows=parquet_rows)
    if entry is None or stanza is None:
        return []
    info = output.parent / DATASET_INFO_FILE
    registry = _read_registry(info)
    registry[output.stem] = entry
    with atomic_write(info, mode=NEW_FILE_MODE) as handle:
        handle.write((json.dumps(registry, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    axolotl = output.with_name(output.stem + AXOLOTL_SUFFIX)
    text = (
        f"# Axolotl dataset stanza for {output.name}, written by `arcticcodex dataset export`.\n"
        "# Paste the datasets: entry into your Axolotl config (or merge it with the datasets listed there).\n"
        "datasets:\n" + _yaml_item(stanza)
    )
    with atomic_write(axolotl, mode=NEW_FILE_MODE) as handle:
        handle.write(text.encode("utf-8"))
    return [info, axolotl]


def check_dataset_info(output: str | Path, export_format: str, *, parquet_rows: str = "messages") -> None:
    """Refuse now, before an export to ``output`` is written, if the registry beside it cannot take its entry."""
    if _shape(export_format, parquet_rows) is not None:
        _read_registry(Path(output).resolve().parent / DATASET_INFO_FILE)


def _read_registry(info: Path) -> dict[str, Any]:
    """The entries already in ``info`` (none when it does not exist); a file that is not a JSON object is refused."""
    if not info.exists():
        return {}
    try:
        if info.stat().st_size > MAX_DATASET_INFO_BYTES:
            raise ValueError(f"it is larger than {MAX_DATASET_INFO_BYTES} bytes")
        registry = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(
            f"{info} cannot be read as LLaMA-Factory's dataset registry ({error}), so the export's entry "
            "cannot be merged into it; fix or move that file and export again"
        ) from error
    if not isinstance(registry, dict):
        raise DatasetError(
            f"{info} is not a JSON object of datasets (LLaMA-Factory's dataset_info.json), so the export's "
            "entry cannot be merged into it; fix or move that file and export again"
        )
    return registry


def _yaml_item(entry: dict[str, Any]) -> str:
    """One YAML list item; every string is JSON-quoted (a valid YAML scalar: no path is misread as a number)."""
    lines = []
    for index, (key, value) in enumerate(entry.items()):
        lead = "  - " if index == 0 else "    "
        if isinstance(value, dict):
            lines.append(f"{lead}{key}:")
            lines += [f"      {name}: {json.dumps(item)}" for name, item in value.items()]
        else:
            lines.append(f"{lead}{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"

"""Unknown tables and keys in arcticcodex.toml are errors that name the line and the nearest valid name.

Each case is what a user does: misspell a setting in the file by hand, then run a command.  The
command must refuse the file (nothing silently falls back to a default) with ``path:line:``, the
name as written, the name meant, and what the table takes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import Result

from arcticcodex.config import Config
from arcticcodex.configschema import SECTIONS, TEACHER_KEYS
from arcticcodex.errors import ConfigError
from arcticcodex.teachers.config import TeacherConfig
from arcticcodex.workspace import Workspace
from conftest import Acx

TEACHER = 'name = "{name}"\npreset = "vllm"\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "m"\n'


def workspace_with(tmp_path: Path, addition: str) -> Path:
    workspace, _ = Workspace.init(tmp_path / "ws")
    config = workspace.config.path
    config.write_text(config.read_text(encoding="utf-8") + addition, encoding="utf-8")
    return config


def line_of(path: Path, text: str, occurrence: int = 0) -> int:
    numbers = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line == text]
    return numbers[occurrence]


def teachers_list(acx: Acx, config: Path) -> Result:
    """Any command reads the file; `teachers list` is the one a user runs after editing teachers."""
    return acx("-w", config.parent, "teachers", "list", code=1)


@pytest.mark.parametrize(
    ("addition", "bad_line", "expected"),
    [
        (
            '\n[vault]\nembeding_model = "hashing-64"\n',
            'embeding_model = "hashing-64"',
            "unknown setting 'embeding_model' in [vault]; did you mean 'embedding_model'? Valid settings there: "
            "chunk_chars, embedding_model, fusion, overlap_chars, rrf_k. Rename or remove it",
        ),
        (
            "\n[gpus]\nbudget_usd = 5.0\n",
            "[gpus]",
            "unknown table [gpus]; did you mean [gpu]? The tables are [workspace], [signing], [vault], "
            "[teacher_pool], [gpu], [distill], [[teachers]]. Rename or remove it",
        ),
        (
            "\n[teacher_pool]\naggregate = 'mean'\nbudget = 2.0\n",
            "budget = 2.0",
            "unknown setting 'budget' in [teacher_pool]; did you mean 'budget_usd'?",
        ),
        (
            "\n[distill]\nthreshhold = 0.9\n",
            "threshhold = 0.9",
            "unknown setting 'threshhold' in [distill]; did you mean 'threshold'?",
        ),
        (
            "\n[vault]\nbudget_usd = 1.0\n",
            "budget_usd = 1.0",
            "unknown setting 'budget_usd' in [vault]; 'budget_usd' belongs in [teacher_pool], [gpu] or [distill]. "
            "Valid settings there: chunk_chars",
        ),
        (
            '\n[vault]\nembedding_model = """\nfusion = 1\n"""\nfuzion = "rrf"\n',
            'fuzion = "rrf"',  # a line inside the multi-line string looks like a key: it is not the one named
            "unknown setting 'fuzion' in [vault]; did you mean 'fusion'?",
        ),
        (
            "\n[vault]\nrrf_k = 20\n\n[vault.extra]\nx = 1\n",
            "[vault.extra]",
            "unknown setting 'extra' in [vault]",
        ),
        (
            "\n[gpu]\nbudget_usd = [\n  1,\n  2,\n]\nidle = 5\n",
            "idle = 5",
            "unknown setting 'idle' in [gpu]",
        ),
    ],
    ids=[
        "misspelt key",
        "misspelt table",
        "near key",
        "distill key",
        "key of another table",
        "multi-line string",
        "sub-table",
        "multi-line array",
    ],
)
def test_an_unknown_name_is_refused_with_its_line_and_the_nearest_valid_name(
    tmp_path: Path, addition: str, bad_line: str, expected: str, acx: Acx
) -> None:
    config = workspace_with(tmp_path, addition)
    result = teachers_list(acx, config)
    assert f"Error: {config}:{line_of(config, bad_line)}: {expected}" in result.output


def test_an_unknown_key_in_the_second_teacher_names_that_teacher_and_its_line(tmp_path: Path, acx: Acx) -> None:
    first, second = TEACHER.format(name="one"), TEACHER.format(name="two").replace("model =", "modle =")
    config = workspace_with(tmp_path, f"\n[[teachers]]\n{first}\n[[teachers]]\n{second}")
    result = teachers_list(acx, config)
    line = line_of(config, 'modle = "m"')
    assert (
        f"{config}:{line}: unknown setting 'modle' in teacher 'two' ([[teachers]] number 2); did you mean 'model'?"
    ) in result.output


def test_a_setting_outside_any_table_says_where_it_belongs(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    config = root / "arcticcodex.toml"
    config.write_text('# mine\ndata_dir = "state"\n\n[signing]\nkey = "dataset"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Workspace.open(root)
    assert str(caught.value) == (
        f"{config}:2: unknown setting 'data_dir' outside any table; it belongs under [workspace]. "
        "Move it under its table's [header], or remove it"
    )


def test_teachers_that_are_not_tables_name_the_line(tmp_path: Path, acx: Acx) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    config = root / "arcticcodex.toml"
    config.write_text('# mine\nteachers = ["deepseek"]\n\n[workspace]\ndata_dir = ".arcticcodex"\n', encoding="utf-8")
    result = teachers_list(acx, config)
    assert (
        f"Error: {config}:2: teachers must be an array of tables: write each entry under its own [[teachers]] line"
    ) in result.output


def test_every_setting_the_code_reads_is_accepted(tmp_path: Path) -> None:
    """One file with every table and key of the schema: none is refused (the values are checked where used)."""
    tables = "".join(
        f"\n[{name}]\n" + "".join(f"{key} = 1\n" for key in sorted(keys)) for name, keys in SECTIONS.items()
    )
    tables = tables.replace("data_dir = 1", 'data_dir = ".arcticcodex"').replace("\nkey = 1\n", '\nkey = "dataset"\n')
    root = tmp_path / "ws"
    root.mkdir()
    (root / "arcticcodex.toml").write_text(tables + "\n[[teachers]]\n" + TEACHER.format(name="x"), encoding="utf-8")
    config = Config.load(root / "arcticcodex.toml")
    assert set(config.raw) == {*SECTIONS, "teachers"}


def test_the_teacher_keys_are_the_teacher_settings() -> None:
    """[[teachers]] takes TeacherConfig's fields, less those load_teachers decides (never the file)."""
    fields = {field.name for field in dataclasses.fields(TeacherConfig)}
    assert fields - TEACHER_KEYS == {"trusted", "origin"}
    assert fields >= TEACHER_KEYS

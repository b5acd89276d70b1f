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
from arcticcodex.configschema import SECTIONS, TEACHER_KEYS, Settings
from arcticcodex.configteachers import TeacherEntry
from arcticcodex.errors import ConfigError
from arcticcodex.teachers.entries import TeacherConfig
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
            "chunk_chars, device, embedding_model, fusion, overlap_chars, rrf_k. Rename or remove it",
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


# -- issue 13: values are checked by the same models, and refused with the file, the line and an example ------


@pytest.mark.parametrize(
    ("addition", "bad_line", "command", "expected"),
    [
        (
            '\n[vault]\nfusion = "max"\n',
            'fusion = "max"',
            ("vault", "stats"),
            '[vault] fusion must be "rrf" or "convex", not \'max\'; e.g. fusion = "rrf"',
        ),
        (
            "\n[teacher_pool]\naggregate = 'median'\n",
            "aggregate = 'median'",
            ("teachers", "list"),
            "[teacher_pool] aggregate must be mean, min or majority, not 'median'; e.g. aggregate = \"mean\"",
        ),
        (
            "\n[teacher_pool]\ncritics = ['ghost']\n",
            "critics = ['ghost']",
            ("teachers", "list"),
            "[teacher_pool] critics names unknown teacher 'ghost'",
        ),
        (
            "\n[[teachers]]\n" + TEACHER.format(name="one") + "timeout = -1\n",
            "timeout = -1",
            ("teachers", "list"),
            "teacher 'one': timeout must be positive seconds, not -1; e.g. timeout = 60",
        ),
        (
            "\n[[teachers]]\n" + TEACHER.format(name="one") + 'roles = ["judge"]\n',
            'roles = ["judge"]',
            ("teachers", "list"),
            "teacher 'one' has unknown roles ['judge']; roles are critic, verifier, rewriter",
        ),
        (
            "\n[[teachers]]\n" + TEACHER.format(name="one").replace("http://127.0.0.1:8000/v1", "ftp://x/v1"),
            'base_url = "ftp://x/v1"',
            ("teachers", "list"),
            "teacher 'one': base_url 'ftp://x/v1' must start with http:// or https:// and name a host",
        ),
    ],
    ids=["vault fusion", "pool aggregate", "pool critic", "teacher timeout", "teacher roles", "teacher url"],
)
def test_a_wrong_value_is_refused_with_its_line_what_it_must_be_and_an_example(
    tmp_path: Path, addition: str, bad_line: str, command: tuple[str, ...], expected: str, acx: Acx
) -> None:
    config = workspace_with(tmp_path, addition)
    result = acx("-w", config.parent, *command, code=1)
    assert f"Error: {config}:{line_of(config, bad_line)}: {expected}" in result.stderr


def test_a_wrong_value_stops_only_the_commands_that_read_its_table(tmp_path: Path, acx: Acx) -> None:
    """Each table is read once, with the file; its error is raised where it is used (as before the models)."""
    config = workspace_with(tmp_path, "\n[distill]\nthreshold = 2\n")
    acx("-w", config.parent, "teachers", "list")
    acx("-w", config.parent, "vault", "stats")
    with pytest.raises(ConfigError, match=rf"{config}:\d+: \[distill\] threshold must be a number from 0 to 1, not 2"):
        _ = Config.load(config).settings  # the whole file as one model: refused by its first wrong table


def test_the_teacher_entry_and_the_teacher_config_agree_on_every_default() -> None:
    """TeacherEntry checks the file, TeacherConfig runs the teacher: an entry that sets nothing means the same."""
    entry = TeacherEntry.model_validate({"name": "x", "preset": "local"})
    config = TeacherConfig(name="x", preset="local", model="local-judge/v1")
    written = {
        field.name: getattr(config, field.name) for field in dataclasses.fields(config) if field.name in TEACHER_KEYS
    }
    assert dict(entry) == written


def test_the_settings_model_reads_every_table_with_its_defaults(tmp_path: Path) -> None:
    workspace, _ = Workspace.init(tmp_path / "ws")
    settings = workspace.config.settings
    assert set(Settings.model_fields) == {*SECTIONS, "teachers"}
    assert (settings.gpu.boot_timeout_s, settings.gpu.poll_interval_s, settings.vault.chunk_chars) == (
        1200.0,
        10.0,
        1200,
    )
    assert settings.signing.key == "dataset" and settings.teachers == () and settings.distill.threshold == 0.8

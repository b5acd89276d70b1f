"""The Studio's chat offers only trusted teachers (docs/security.md, "The Studio").

The attack: a cloned repository's ``arcticcodex.toml`` carries a hand-written teacher entry that
points at a server of its author's choosing.  The user opens the Studio and chats.  The entry must
not be offered, and a form that names it anyway (crafted, or an old page) must be refused before
any request reaches that server — a prompt is the user's vault evidence."""

from __future__ import annotations

from pathlib import Path

from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root
from test_studio import get

CLONED_ENTRY = """
[[teachers]]
name = "cloned"
preset = "openai"
base_url = "{url}"
model = "fake-model"
api_key_env = "OPENAI_API_KEY"
roles = ["critic", "verifier", "rewriter"]
"""


def test_a_hand_written_teacher_is_neither_offered_nor_asked(
    acx: Acx, tmp_path: Path, server: FakeOpenAIServer
) -> None:
    root = make_root(acx, tmp_path, server)  # "gpu": added with `teachers add`, so trusted
    with FakeOpenAIServer(model="fake-model") as attacker:
        config = root / "arcticcodex.toml"
        config.write_text(config.read_text() + CLONED_ENTRY.format(url=attacker.base_url))
        (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
        acx("-w", root, "vault", "import", tmp_path / "otters.md")
        app = create_app(Workspace.open(root))

        chat = get(app, "/chat").text
        assert '<option value="gpu">gpu</option>' in chat and 'value="cloned"' not in chat

        for tools in ({}, {"tools": "on"}):
            refused = get(
                app, "/chat", method="POST", data={"question": "What do otters eat?", "model": "cloned"} | tools
            )
            assert refused.status_code == 400
            assert "&#39;cloned&#39; is not a trusted teacher of this workspace (teachers: gpu)" in refused.text
        assert attacker.requests == []  # not one prompt, not one key reached the cloned entry's server

        acx("-w", root, "teachers", "trust", "cloned")  # the user's own decision changes that
        assert 'value="cloned"' in get(app, "/chat").text

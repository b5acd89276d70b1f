"""The Studio answers each error with the status its class carries (issue 13, item 6).

A failure on the server's side — a teacher that stays down — is a 5xx with the styled error page, never a
400 that blames the visitor's form; the visitor's own mistakes stay 4xx.  No answer shows an absolute path.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from arcticcodex import errors
from arcticcodex.studio import create_app
from arcticcodex.workspace import Workspace
from conftest import Acx
from fakes.openai_server import FakeOpenAIServer
from test_distill_run import make_root
from test_studio import get

SERVER_SIDE = (errors.StoreError, errors.TeacherError, errors.GpuError, errors.HubError)
BUDGETS = (errors.BudgetExceededError, errors.GpuBudgetError)  # a limit the user set: 409, theirs to raise


def error_classes() -> list[type[errors.ArcticCodexError]]:
    return [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, errors.ArcticCodexError)
    ]


def test_every_error_class_names_its_status_and_the_server_side_ones_are_5xx() -> None:
    classes = error_classes()
    assert len(classes) == 34  # every class of the tree, so a new one is looked at here
    for cls in classes:
        assert "http_status" in vars(cls), f"{cls.__name__} inherits its HTTP status; give it its own"
        status = cls.http_status
        if issubclass(cls, BUDGETS):
            assert status == 409, cls
        elif issubclass(cls, SERVER_SIDE):
            assert 500 <= status < 600, cls
        elif issubclass(cls, errors.UserError):
            assert 400 <= status < 500, cls
    assert errors.RecordNotFoundError.http_status == 404
    assert errors.TeacherUnavailableError.http_status == 503
    assert errors.StoreError.http_status == errors.MigrationError.http_status == 500


def test_a_teacher_that_stays_down_is_a_5xx_page_not_the_visitors_fault(
    tmp_path: Path, server: FakeOpenAIServer, acx: Acx
) -> None:
    root = make_root(acx, tmp_path, server)
    (tmp_path / "otters.md").write_text("# Otters\n\nOtters eat mostly fish.\n")
    acx("-w", root, "vault", "import", tmp_path / "otters.md")
    app = create_app(Workspace.open(root))
    server.inject(*["503"] * 8)  # more than the teacher's attempts: every one is refused as overloaded

    down = get(app, "/chat", method="POST", data={"question": "What do otters eat?", "model": "gpu"})

    assert down.status_code == 503, down.text[:500]
    assert "teacher gpu" in down.text and "<main" in down.text  # the styled page, naming the teacher
    assert str(tmp_path) not in down.text and str(root) not in down.text
    assert len(server.requests) >= 2  # the prompt really went out (and was retried) before giving up


def test_the_visitors_mistakes_stay_4xx(tmp_path: Path, server: FakeOpenAIServer, acx: Acx) -> None:
    root = make_root(acx, tmp_path, server)
    app = create_app(Workspace.open(root))

    bad_form = get(app, "/review?status=bogus")
    assert bad_form.status_code == 400 and "there is no review status &#39;bogus&#39;" in bad_form.text
    bad_number = get(app, "/api/search?q=otters&k=many")
    assert bad_number.status_code == 400 and bad_number.json() == {"error": "k must be a whole number"}
    unknown = get(app, "/vault/chunks/no-such-chunk")
    assert unknown.status_code == 404 and "no chunk" in unknown.text.lower()
    for answer in (bad_form, unknown):
        assert str(tmp_path) not in answer.text

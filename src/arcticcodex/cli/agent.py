"""``arcticcodex ask`` and ``arcticcodex chat``: answers from the vault, with citations.

Answers quote documents and models write freely, so everything printed goes through
:mod:`.display`: control characters escaped, rich markup never interpreted.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.text import Text

from ..agent import Agent, AgentAnswer
from ..errors import ConfigError
from ..teachers.config import load_teachers
from ..vault import Vault
from . import CliState, pass_state
from .display import json_text, shown


def _agent(state: CliState, vault: Vault, model: str | None, k: int) -> Agent:
    config = None
    if model:
        workspace = state.workspace()
        configs, _ = load_teachers(workspace.config)
        config = next((c for c in configs if c.name == model), None)
        if config is None:
            known = ", ".join(c.name for c in configs) or "none configured"
            raise ConfigError(f"--model {model!r} is not a configured teacher (configured: {known})")
    return Agent(vault, model=config, k=k)


def _show(answer: AgentAnswer, console: Console) -> None:
    console.print(Text(shown(answer.text)), highlight=False)
    _show_citations(answer, console)


def _show_citations(answer: AgentAnswer, console: Console) -> None:
    for citation in answer.citations:
        line = (
            f"  [{citation.number}] {shown(citation.source)}  {shown(citation.chunk_id)}  "
            f"bytes {citation.start_byte}–{citation.end_byte}"
        )
        console.print(Text(line, style="dim"), highlight=False)
    for note in answer.notes:
        console.print(Text(f"  note: {shown(note)}", style="yellow"), highlight=False)


@click.command("ask")
@click.argument("question")
@click.option("--conversation", help="Continue this conversation (its id is printed with every answer).")
@click.option("--model", help="Answer with this configured teacher (default: offline, from evidence sentences).")
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True, help="Evidence chunks to use.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, citations and evidence as JSON.")
@pass_state
def ask(state: CliState, question: str, conversation: str | None, model: str | None, k: int, as_json: bool) -> None:
    """Answer QUESTION from the vault, citing the chunks it rests on.

    \b
    Example:
      arcticcodex ask "How does the manifest detect a deleted record?" --json
    """
    with Vault(state.workspace()) as vault:
        answer = _agent(state, vault, model, k).respond(question, conversation)
    if as_json:
        click.echo(json_text(answer.to_json()))
        return
    console = Console()
    _show(answer, console)
    console.print(Text(f"(conversation {shown(answer.conversation_id)})", style="dim"), highlight=False)


@click.command("chat")
@click.option("--conversation", help="Continue this conversation.")
@click.option("--model", help="Answer with this configured teacher (default: offline, from evidence sentences).")
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True, help="Evidence chunks to use.")
@pass_state
def chat(state: CliState, conversation: str | None, model: str | None, k: int) -> None:
    """Ask one question after another in one conversation (an empty line or Ctrl-D ends it).

    \b
    Example:
      arcticcodex chat --model deepseek
    """
    console = Console()
    with Vault(state.workspace()) as vault:
        agent = _agent(state, vault, model, k)
        while True:
            try:
                question = click.prompt("you", default="", show_default=False, prompt_suffix="> ")
            except (EOFError, click.Abort):
                break
            if not question.strip():
                break
            if agent.model is not None:  # a model's answer is shown as it is written, then with its citations
                answer = agent.respond(question, conversation, on_text=lambda piece: click.echo(shown(piece), nl=False))
                click.echo()
                _show_citations(answer, console)
            else:
                answer = agent.respond(question, conversation)
                _show(answer, console)
            conversation = answer.conversation_id
    if conversation:
        console.print(Text(f"(conversation {shown(conversation)})", style="dim"), highlight=False)

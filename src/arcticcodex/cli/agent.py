"""``arcticcodex ask`` and ``arcticcodex chat``: answers from the vault, with citations.

Answers quote documents and models write freely, so everything printed goes through
:mod:`.display`: control characters escaped, rich markup never interpreted.

``--tools`` lets the model call the agent's tools: vault search, arithmetic, and ``propose_fact``,
whose facts wait in the review queue (``arcticcodex review``) until a person approves them.  No
tool that writes files is offered here.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.text import Text

from ..agent import Agent, AgentAnswer, default_tools
from ..errors import ConfigError
from ..teachers.entries import load_teachers
from ..vault import Vault
from ..vault.proposals import ReviewQueue
from ..vault.search import Searcher
from . import CliState, pass_state
from .display import json_text, shown

tools_option = click.option(
    "--tools",
    "use_tools",
    is_flag=True,
    help="Let the model (--model) call tools: vault_search, calculate, and propose_fact (proposed facts wait "
    "in `arcticcodex review`).",
)


def _agent(state: CliState, vault: Vault, model: str | None, k: int, use_tools: bool = False) -> Agent:
    if use_tools and not model:
        raise click.UsageError("--tools needs --model TEACHER: the offline answerer quotes evidence and calls no tools")
    config = None
    if model:
        workspace = state.workspace()
        configs, _ = load_teachers(workspace.config)
        config = next((c for c in configs if c.name == model), None)
        if config is None:
            known = ", ".join(c.name for c in configs) or "none yet"
            raise ConfigError(
                f"--model {model!r} is not a configured teacher (configured: {known}); "
                f"add it with `arcticcodex teachers add {model} --preset deepseek|openai|vllm|ollama`, "
                "or leave out --model to answer offline from the evidence"
            )
    searcher = Searcher(vault)
    tools = default_tools(searcher=searcher, review=ReviewQueue(vault)) if use_tools else None
    return Agent(vault, model=config, k=k, searcher=searcher, tools=tools)


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
    for call in answer.tool_calls:
        outcome = f"error: {call.error}" if call.error else call.result or ""
        line = f"  tool {call.name}({json.dumps(call.arguments, ensure_ascii=False)}) → {outcome}"
        console.print(Text(shown(line), style="cyan"), highlight=False)
    for note in answer.notes:
        console.print(Text(f"  note: {shown(note)}", style="yellow"), highlight=False)


@click.command("ask")
@click.argument("question")
@click.option("--conversation", help="Continue this conversation (its id is printed with every answer).")
@click.option("--model", help="Answer with this configured teacher (default: offline, from evidence sentences).")
@click.option("-k", "k", type=click.IntRange(1, 20), default=5, show_default=True, help="Evidence chunks to use.")
@tools_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer, citations and evidence as JSON.")
@pass_state
def ask(
    state: CliState, question: str, conversation: str | None, model: str | None, k: int, use_tools: bool, as_json: bool
) -> None:
    """Answer QUESTION from the vault, citing the chunks it rests on.

    \b
    Example:
      arcticcodex ask "How does the manifest detect a deleted record?" --json
      arcticcodex ask "What do otters eat? Propose it as a fact." --model deepseek --tools
    """
    with Vault(state.workspace()) as vault:
        answer = _agent(state, vault, model, k, use_tools).respond_sync(question, conversation)
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
@tools_option
@pass_state
def chat(state: CliState, conversation: str | None, model: str | None, k: int, use_tools: bool) -> None:
    """Ask one question after another in one conversation (an empty line or Ctrl-D ends it).

    \b
    Example:
      arcticcodex chat --model deepseek
    """
    console = Console()
    with Vault(state.workspace()) as vault:
        agent = _agent(state, vault, model, k, use_tools)
        while True:
            try:
                question = click.prompt("you", default="", show_default=False, prompt_suffix="> ")
            except (EOFError, click.Abort):
                break
            if not question.strip():
                break
            if agent.model is not None and agent.tools is None:  # shown as it is written, then its citations
                answer = agent.respond_sync(
                    question, conversation, on_text=lambda piece: click.echo(shown(piece), nl=False)
                )
                click.echo()
                _show_citations(answer, console)
            else:
                answer = agent.respond_sync(question, conversation)
                _show(answer, console)
            conversation = answer.conversation_id
    if conversation:
        console.print(Text(f"(conversation {shown(conversation)})", style="dim"), highlight=False)

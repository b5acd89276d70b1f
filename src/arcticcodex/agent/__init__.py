"""The agent: answers from the vault with citations, in conversations, with sandboxed tools.

::

    agent.py        await Agent.respond(question, conversation_id) -> AgentAnswer (text, citations, evidence);
                    respond_sync from synchronous code
    drafting.py     the offline extractive drafter (evidence sentences only), also the runs' first draft
    tools.py        ToolRegistry: typed tools for a model's tool-calling API, checked, approval for writes
    sandbox.py      Sandbox: every path walked from the root by descriptor (no symlink out, no hard links), bounded
    calculator.py   calculate(): arithmetic on the syntax tree, every result bounded before it is computed
"""

from .agent import Agent, AgentAnswer, Citation
from .calculator import calculate
from .sandbox import Sandbox
from .tools import Tool, ToolRegistry, default_tools

__all__ = ["Agent", "AgentAnswer", "Citation", "Sandbox", "Tool", "ToolRegistry", "calculate", "default_tools"]

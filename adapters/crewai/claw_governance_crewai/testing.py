"""A scripted crewai ``BaseLLM`` for tests and offline examples: plays back fixed answers instead of calling a
model (no network, no API key). It imports crewai, so it is never imported by the adapter itself.

``ScriptedLLM(steps=[...], native=False)``: each step is either text (the ReAct path parses
``Action:`` / ``Action Input:`` / ``Final Answer:`` from it) or, with ``native=True``, a list of OpenAI-style
tool calls (crewai's native function-calling path) or a plain string (the final answer). Every call's
messages are kept in ``seen``, so a test can read what the model was shown (e.g. our block reason).
"""

from __future__ import annotations

import json
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import Field, PrivateAttr


def react_action(tool: str, args: dict[str, Any]) -> str:
    """A ReAct step that calls ``tool`` with ``args``."""
    return f"Thought: I should use {tool}.\nAction: {tool}\nAction Input: {json.dumps(args)}"


def react_final(text: str) -> str:
    """A ReAct step that finishes with ``text``."""
    return f"Thought: I now know the final answer.\nFinal Answer: {text}"


def native_call(tool: str, args: dict[str, Any], call_id: str = "call_1") -> list[dict[str, Any]]:
    """A native function-calling step that calls ``tool`` with ``args``."""
    return [{"id": call_id, "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}]


class ScriptedLLM(BaseLLM):
    """Plays back ``steps``; after the last one it keeps answering ``fallback`` (so a crew always ends)."""

    model: str = "scripted"
    steps: list[Any] = Field(default_factory=list)
    native: bool = False
    fallback: str = "done"
    _seen: list[list[dict[str, Any]]] = PrivateAttr(default_factory=list)
    _index: int = PrivateAttr(default=0)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        """Return the next scripted step (recording the messages the model was given)."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        self._seen.append([dict(m) for m in messages])
        if self._index < len(self.steps):
            step = self.steps[self._index]
            self._index += 1
            return step
        return self.fallback if self.native else react_final(self.fallback)

    def supports_function_calling(self) -> bool:
        """``True`` sends crewai down its native tool-calling path."""
        return self.native

    def supports_stop_words(self) -> bool:
        """The script never overruns a stop word."""
        return False

    def get_context_window_size(self) -> int:
        """Large enough that crewai never summarises."""
        return 100_000

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        """A rough count (a quarter of the characters), without crewai's "approximate count" warning."""
        text = messages if isinstance(messages, str) else "".join(str(m.get("content", "")) for m in messages)
        return (len(text) + 3) // 4

    @property
    def seen(self) -> list[list[dict[str, Any]]]:
        """The messages of every call, oldest first."""
        return self._seen

    def text_seen(self) -> str:
        """Every message content the model was shown, joined (for substring assertions)."""
        return "\n".join(str(m.get("content", "")) for call in self._seen for m in call)

"""Offline helpers for trying and testing governance: a scripted tool-calling chat model and a minimal agent loop.

``ScriptedChatModel`` is a real LangChain chat model (a ``BaseChatModel`` that supports ``bind_tools``) whose
replies are scripted: each turn returns the next scripted ``AIMessage`` (or calls the next function with the
messages so far). It records what it was shown, so a test can check which tools the model saw and what it
read back. ``run_tool_loop`` / ``arun_tool_loop`` are the classic tool-calling loop on langchain-core alone:
ask the model, run every tool call of its answer (``tool.invoke(tool_call)``), feed the ToolMessages back,
until the model answers without tool calls.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

Reply = AIMessage | Callable[[list[BaseMessage]], AIMessage]

_ids = itertools.count(1)


def tool_call(name: str, args: dict[str, Any] | None = None, call_id: str | None = None) -> dict[str, Any]:
    """A tool call for an ``AIMessage(tool_calls=[...])``; ids default to ``call_1``, ``call_2`` ..."""
    return {"name": name, "args": dict(args or {}), "id": call_id or f"call_{next(_ids)}", "type": "tool_call"}


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script, one reply per call; the last reply repeats when it runs out.

    ``replies`` are AIMessages (with ``tool_calls`` to call tools) or functions of the messages so far that
    return one. ``seen`` holds the messages of every call; ``bound_tools`` the OpenAI-format tool schemas
    given through ``bind_tools`` (exactly what a provider would send).
    """

    replies: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    _turn: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "claw-scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self.seen.append(list(messages))
            if not self.replies:
                raise ValueError("ScriptedChatModel has no replies")
            reply: Reply = self.replies[min(self._turn, len(self.replies) - 1)]
            self._turn += 1
        message = reply(list(messages)) if callable(reply) else reply
        return ChatResult(generations=[ChatGeneration(message=message.model_copy())])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Record the tools' OpenAI-format schemas (as a provider integration would send them)."""
        self.bound_tools = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=self.bound_tools, **kwargs)

    def tool_messages(self) -> list[ToolMessage]:
        """Every ToolMessage the model has been shown (last call's view, which includes all earlier ones)."""
        return [m for m in (self.seen[-1] if self.seen else []) if isinstance(m, ToolMessage)]


def run_tool_loop(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    prompt: str,
    config: RunnableConfig | None = None,
    max_turns: int = 10,
) -> list[BaseMessage]:
    """Run the tool-calling loop; returns the whole conversation. Tool calls of one answer run in order."""
    llm = model.bind_tools(tools)
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [HumanMessage(prompt)]
    for _ in range(max_turns):
        answer = llm.invoke(messages, config=config)
        messages.append(answer)
        if not isinstance(answer, AIMessage) or not answer.tool_calls:
            return messages
        for call in answer.tool_calls:
            messages.append(by_name[call["name"]].invoke(call, config=config))
    return messages


async def arun_tool_loop(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    prompt: str,
    config: RunnableConfig | None = None,
    max_turns: int = 10,
) -> list[BaseMessage]:
    """``run_tool_loop`` on the async path; the tool calls of one answer run concurrently."""
    llm = model.bind_tools(tools)
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [HumanMessage(prompt)]
    for _ in range(max_turns):
        answer = await llm.ainvoke(messages, config=config)
        messages.append(answer)
        if not isinstance(answer, AIMessage) or not answer.tool_calls:
            return messages
        results = await asyncio.gather(*(by_name[c["name"]].ainvoke(c, config=config) for c in answer.tool_calls))
        messages.extend(results)
    return messages


__all__ = ["ScriptedChatModel", "arun_tool_loop", "run_tool_loop", "tool_call"]

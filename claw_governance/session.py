"""Which session a tool call belongs to: what ``scope: session`` budgets (and, later, labels) are kept per.

The most specific id the call carries wins: ``metadata["session_id"]`` (set by the caller, and by the
OpenClaw bridge from OpenClaw's ``ctx.sessionId``), then ``metadata["job_id"]`` (a work contract), then the
framework's own conversation (``thread_id``: the LangGraph thread the LangChain callback handler sees in the
run's metadata; ``kickoff_id``, ``connection_id`` for adapters that set them). A tool run's own ``run_id`` is
not a session: it names one call. A call carrying none of them belongs to its process:
``process:<host>:<pid>``.
"""

from __future__ import annotations

import os
import socket

from claw_governance.model import ToolCall

SESSION_KEYS = ("session_id", "job_id", "thread_id", "kickoff_id", "connection_id")
_PROCESS = f"process:{socket.gethostname()}:{os.getpid()}"


def session_of(call: ToolCall) -> str:
    """The session id of ``call`` (see the module doc); never empty."""
    metadata = call.metadata
    if metadata:
        for key in SESSION_KEYS:
            value = metadata.get(key)
            if value is not None and str(value).strip():
                return f"{key.removesuffix('_id')}:{value}"
    pid = os.getpid()
    return _PROCESS if _PROCESS.endswith(f":{pid}") else f"process:{socket.gethostname()}:{pid}"  # after fork

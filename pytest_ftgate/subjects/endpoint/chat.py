"""One chat request's parameters and one reply's answer text, for every OpenAI-compatible server we talk to.

A case's tools go in the API's `tools`; the tool calls of the reply come back as text the `tool_call`
scorer reads (scoring.tools.format_tool_calls), after whatever the message says, so that scorers see
one string whichever engine answered.
"""

from __future__ import annotations

from typing import Any

from ...types import Request


def chat_params(request: Request, *, render_tools: bool = False) -> dict[str, Any]:
    """The request's decoding parameters and tools, with the case's tool_choice (the server enforces it). `render_tools`:
    without a tool_choice, the server renders the tools through the model's chat template and returns the model's text
    as it is (vLLM's tool_choice "none": vLLM without a tool parser refuses "auto"), as a local model does."""
    p = request.params
    params: dict[str, Any] = {"temperature": p.temperature, "max_tokens": p.max_new_tokens, "seed": p.seed}
    if not p.greedy:
        params["top_p"] = p.top_p
    if request.tools:
        params["tools"] = list(request.tools)
        if request.tool_choice is not None:
            params["tool_choice"] = request.tool_choice
        elif render_tools:
            params["tool_choice"] = "none"
    return params


def answer_text(message: Any) -> str:
    """The reply's text, with its tool calls (if any) written after it as the tool_call scorer reads them."""
    text = message.content or ""
    calls = getattr(message, "tool_calls", None) or []
    if not calls:
        return text
    from ...scoring.tools import format_tool_calls

    rendered = format_tool_calls([{"type": "function", "function": {"name": c.function.name,
                                                                     "arguments": c.function.arguments}}
                                  for c in calls])
    return f"{text}\n{rendered}" if text else rendered

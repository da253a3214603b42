"""Gemma's chat format.

Gemma (1, 2 and 3) has two roles, ``user`` and ``model``, each turn wrapped as::

    <start_of_turn>user
    {content}<end_of_turn>
    <start_of_turn>model
    {content}<end_of_turn>

There is no system role: as in Gemma 3's own template, a system message is prepended to the first user turn.
The tokenizer adds ``<bos>``; it is not part of the rendered text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shieldkit.errors import DataError

START, END = "<start_of_turn>", "<end_of_turn>"
ROLE_NAMES = {"user": "user", "assistant": "model", "model": "model"}  # OpenAI role -> Gemma role


def render_chat(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True) -> str:
    """Render ``[{"role": ..., "content": ...}, ...]`` as Gemma turns, ending with an open model turn."""
    return "".join(text for text, _ in chat_segments(messages, add_generation_prompt=add_generation_prompt))


def _turns(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Validated (gemma_role, content) turns, the system message folded into the first user turn."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise DataError("messages must be a non-empty list of {'role', 'content'} objects")
    system_parts: list[str] = []
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        role, content = _role_and_content(index, message)
        if role == "system":
            if turns:
                raise DataError(f"messages[{index}]: a system message must come before the conversation starts")
            system_parts.append(content)
            continue
        turns.append((ROLE_NAMES[role], content))
    if system_parts:
        if not turns or turns[0][0] != "user":
            turns.insert(0, ("user", ""))
        preamble = "\n\n".join(system_parts)
        turns[0] = ("user", f"{preamble}\n\n{turns[0][1]}" if turns[0][1] else preamble)
    return turns


def chat_segments(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True) -> list[tuple[str, bool]]:
    """The rendered chat as ``(text, is_control_token)`` pieces.

    Encoding content pieces with special-token parsing off means a message that contains the literal text
    ``<end_of_turn>`` cannot forge a turn boundary: only the pieces marked as control become control tokens.
    """
    return _segments(_turns(messages), add_generation_prompt)


def _segments(turns: list[tuple[str, str]], add_generation_prompt: bool) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, bool]] = []
    for role, content in turns:
        pieces += [(START, True), (f"{role}\n{content}", False), (END, True), ("\n", False)]
    if add_generation_prompt:
        pieces += [(START, True), ("model\n", False)]
    return pieces


def _role_and_content(index: int, message: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(message, Mapping):
        raise DataError(f"messages[{index}] must be an object with 'role' and 'content', got {type(message).__name__}")
    role = message.get("role")
    if role != "system" and role not in ROLE_NAMES:
        raise DataError(f"messages[{index}].role must be one of system, user, assistant, got {role!r}")
    content = message.get("content")
    if not isinstance(content, str):
        raise DataError(f"messages[{index}].content must be a string, got {type(content).__name__}")
    return role, content

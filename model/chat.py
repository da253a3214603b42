"""Chat messages as a prompt: Gemma's turn format, or a plain transcript for base models.

``turns`` (instruction-tuned Gemma 1, 2 and 3): two roles, ``user`` and ``model``, each turn wrapped as::

    <start_of_turn>user
    {content}<end_of_turn>
    <start_of_turn>model
    {content}<end_of_turn>

There is no system role: as in Gemma 3's own template, a system message is prepended to the first user turn.

``transcript`` (a base model, which never saw those control tokens in training, e.g. the embedded Gemma 3 270M):
a short instruction and three example exchanges, then the conversation as ``User: ...`` / ``Assistant: ...``
lines, ending with an open ``Assistant:``. A system message becomes a paragraph after the instruction.
Generation stops at the next turn label or a blank line (``TRANSCRIPT_STOPS``). The transcript has no control
tokens to protect: a message line that starts with a role label is indented two spaces so it cannot pass for a
turn (turns start at the line's first column).

The tokenizer adds ``<bos>``; it is not part of the rendered text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from shieldkit.errors import ConfigError, DataError

ChatFormat = Literal["turns", "transcript"]
START, END = "<start_of_turn>", "<end_of_turn>"
ROLE_NAMES = {"user": "user", "assistant": "model", "model": "model"}  # OpenAI role -> Gemma role

TRANSCRIPT_LABELS = {"user": "User", "model": "Assistant"}  # Gemma role -> transcript label
TRANSCRIPT_INSTRUCTION = (
    "A conversation between a User and a helpful, knowledgeable Assistant. "
    "The Assistant answers each question directly and correctly, in one or two sentences."
)
# Few-shot exchanges: everyday, none of them one of the benchmark's questions (bench/chat_questions.py).
TRANSCRIPT_EXAMPLES = (
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What should I bring to a picnic?",
     "A blanket, sandwiches, fruit, water, napkins and a bag for the rubbish."),
    ("Why do leaves change colour in autumn?",
     "As the days shorten, trees stop making green chlorophyll, so the yellow and orange pigments show through."),
)
TRANSCRIPT_STOPS = ("\nUser:", "\nAssistant:", "\n\n")  # the next turn, or the blank line that ends an answer
_LABEL_LINE = re.compile(r"^(?=[ \t]*(?:user|assistant|system)[ \t]*:)", re.IGNORECASE | re.MULTILINE)


def resolve_chat_format(requested: str, *, has_template: bool, source_kind: str) -> ChatFormat:
    """``auto``: turns for a checkpoint with a chat template of its own and for the tiny test model (random
    weights, no checkpoint), a transcript for a checkpoint without one (a base model)."""
    if requested == "auto":
        return "turns" if has_template or source_kind == "tiny" else "transcript"
    if requested not in ("turns", "transcript"):
        raise ConfigError(f"chat_format (SHIELDKIT_CHAT_FORMAT) must be auto, turns or transcript, got {requested!r}")
    return requested


def render_chat(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
                chat_format: ChatFormat = "turns") -> str:
    """Render ``[{"role": ..., "content": ...}, ...]`` as Gemma turns (or a transcript), ending with an open
    model turn."""
    segments = chat_segments(messages, add_generation_prompt=add_generation_prompt, chat_format=chat_format)
    return "".join(text for text, _ in segments)


def _validated(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, content) of each message, role as given (system, user, assistant, model); system ones first."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise DataError("messages must be a non-empty list of {'role', 'content'} objects")
    validated = [_role_and_content(index, message) for index, message in enumerate(messages)]
    roles = [role for role, _ in validated]
    first_turn = next((index for index, role in enumerate(roles) if role != "system"), len(roles))
    if "system" in roles[first_turn:]:
        index = roles.index("system", first_turn)
        raise DataError(f"messages[{index}]: a system message must come before the conversation starts")
    return validated


def _turns(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Validated (gemma_role, content) turns, the system message folded into the first user turn."""
    validated = _validated(messages)
    system_parts = [content for role, content in validated if role == "system"]
    turns = [(ROLE_NAMES[role], content) for role, content in validated if role != "system"]
    if system_parts:
        if not turns or turns[0][0] != "user":
            turns.insert(0, ("user", ""))
        preamble = "\n\n".join(system_parts)
        turns[0] = ("user", f"{preamble}\n\n{turns[0][1]}" if turns[0][1] else preamble)
    return turns


def chat_segments(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
                  chat_format: ChatFormat = "turns") -> list[tuple[str, bool]]:
    """The rendered chat as ``(text, is_control_token)`` pieces.

    Encoding content pieces with special-token parsing off means a message that contains the literal text
    ``<end_of_turn>`` cannot forge a turn boundary: only the pieces marked as control become control tokens.
    """
    if chat_format == "transcript":
        return [(_transcript(messages, add_generation_prompt)[0], False)]
    if chat_format != "turns":
        raise ConfigError(f"chat_format must be turns or transcript, got {chat_format!r}")
    return _segments(_turns(messages), add_generation_prompt)


def content_spans(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
                  chat_format: ChatFormat = "turns") -> list[tuple[int, int]]:
    """Character ranges of the messages' own text in ``render_chat``'s output (the rest is template: turn markers
    and role names, or the transcript's instruction, examples and labels), in the order they appear."""
    if chat_format == "transcript":
        return _transcript(messages, add_generation_prompt)[1]
    ranges, offset = [], 0
    for piece, control in chat_segments(messages, add_generation_prompt=add_generation_prompt, chat_format=chat_format):
        role, newline, content = piece.partition("\n")
        if not control and newline and content:
            ranges.append((offset + len(role) + 1, offset + len(piece)))
        offset += len(piece)
    return ranges


def _transcript(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> tuple[str, list[tuple[int, int]]]:
    """Instruction, system paragraphs, the example exchanges, then the conversation; a blank line after each
    Assistant line. Also the ranges of the system paragraphs and conversation lines' message text."""
    validated = _validated(messages)
    system = [_escape_labels(content) for role, content in validated if role == "system" and content.strip()]
    examples = [turn for question, answer in TRANSCRIPT_EXAMPLES for turn in (("user", question), ("model", answer))]
    conversation = [(ROLE_NAMES[role], _escape_labels(c)) for role, c in validated if role != "system"]
    text, spans = TRANSCRIPT_INSTRUCTION + "\n\n", []
    for paragraph in system:
        spans.append((len(text), len(text) + len(paragraph)))
        text += paragraph + "\n\n"
    for index, (role, content) in enumerate(examples + conversation):
        label = f"{TRANSCRIPT_LABELS[role]}: "
        if index >= len(examples) and content:
            spans.append((len(text) + len(label), len(text) + len(label) + len(content)))
        text += f"{label}{content}\n" + ("\n" if role == "model" else "")
    return (text + "Assistant:" if add_generation_prompt else text), spans


def _escape_labels(content: str) -> str:
    """Indent a message's lines that start with a role label, so they cannot read as a turn of their own."""
    return _LABEL_LINE.sub("  ", content.strip())


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

"""The upstream contract: where checked requests go and answers come from (the embedded Gemma or an HTTP server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class UpstreamRequest:
    model: str
    messages: list[dict[str, str]]  # checked (and redacted) {"role", "content"} messages
    max_tokens: int | None = None
    max_tokens_name: str = "max_tokens"  # how the client named it: max_completion_tokens goes upstream as that
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    include_usage: bool = False


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


@dataclass
class UpstreamReply:
    text: str
    finish_reason: str  # stop | length
    model: str
    usage: Usage | None = None


class UpstreamError(Exception):
    """The upstream failed. ``status`` is what the client gets (502, 504, or the upstream's own 4xx)."""

    def __init__(self, status: int, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class UpstreamStream:
    """Text pieces as they come; ``finish_reason`` and ``usage`` are set once the pieces are exhausted.

    Iteration raises :class:`UpstreamError` when the upstream fails mid-way. ``aclose`` stops generation.
    """

    pieces: AsyncIterator[str] | None = None  # set right after creation (the iterator fills in the fields below)
    finish_reason: str | None = None
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __aiter__(self) -> AsyncIterator[str]:
        if self.pieces is None:
            raise RuntimeError("the stream has no pieces iterator")
        return self.pieces.__aiter__()

    async def aclose(self) -> None:
        closer = getattr(self.pieces, "aclose", None)
        if closer is not None:
            await closer()


class Upstream(Protocol):
    name: str  # for logs and /readyz, e.g. "embedded gemma-3-270m" or the URL

    async def models(self) -> list[str]: ...

    async def complete(self, request: UpstreamRequest) -> UpstreamReply: ...

    async def open_stream(self, request: UpstreamRequest) -> UpstreamStream:
        """Start generating; raises UpstreamError if the upstream refuses before sending any text."""

    async def aclose(self) -> None: ...

"""Upstreams: the embedded Gemma (in-process) or any OpenAI-compatible server over HTTP."""

from shieldkit.guardrails.upstream.base import (
    Upstream,
    UpstreamError,
    UpstreamReply,
    UpstreamRequest,
    UpstreamStream,
    Usage,
)

__all__ = ["Upstream", "UpstreamError", "UpstreamReply", "UpstreamRequest", "UpstreamStream", "Usage"]
